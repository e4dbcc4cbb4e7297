"""The guards against Whisper's failures, on plain token lists."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from transcription.filters import Loop, find_repetition_loop, looks_silent, loop_free_indices


def words(text: str) -> list[str]:
    return text.split()


def kept(text: str) -> str:
    tokens = words(text)
    return " ".join(tokens[i] for i in loop_free_indices(tokens))


def test_a_long_run_of_one_word_is_a_loop() -> None:
    assert find_repetition_loop(words("no no no no no no no no")) == Loop(0, 8, 1)


def test_a_run_of_a_phrase_is_a_loop() -> None:
    loop = find_repetition_loop(words("I said thank you thank you thank you thank you thank you"))
    assert loop == Loop(2, 12, 2)
    assert loop is not None and loop.repeats == 5


def test_ordinary_repetition_is_not_a_loop() -> None:
    assert find_repetition_loop(words("no, no, no, I did not say that")) is None
    assert find_repetition_loop(words("very very good")) is None
    assert find_repetition_loop(words("we had a very very very good week")) is None


def test_comparison_ignores_case_and_punctuation() -> None:
    assert kept("No. No, no! NO no no, no") == ""


def test_a_segment_that_is_only_a_loop_is_dropped() -> None:
    assert kept("Thank you. Thank you. Thank you. Thank you. Thank you.") == ""
    assert kept("you you you you you you you you you you you") == ""


def test_speech_around_a_loop_is_kept_and_the_loop_cut_to_one() -> None:
    assert (
        kept("I went to the store and then no no no no no no no no no no")
        == "I went to the store and then no"
    )
    assert kept("so so so so so so we will meet on Tuesday") == "so we will meet on Tuesday"


def test_several_loops_in_one_segment_are_all_cut() -> None:
    text = "okay okay okay okay okay we will meet and then bye bye bye bye bye bye"
    assert kept(text) == "okay we will meet and then bye"


def test_speech_without_loops_is_untouched() -> None:
    text = "My landlord says we will be evicted next month, and I do not know where we will go."
    assert kept(text) == text


@given(st.lists(st.sampled_from(["no", "yes", "thank", "you", "the", "a"]), max_size=40))
def test_what_is_kept_is_an_ordered_subset_without_loops(tokens: list[str]) -> None:
    keep = loop_free_indices(tokens)
    assert keep == sorted(set(keep))
    assert all(0 <= i < len(tokens) for i in keep)
    assert find_repetition_loop([tokens[i] for i in keep]) is None


def test_silence_needs_both_a_high_no_speech_probability_and_low_confidence() -> None:
    limits = {"no_speech_threshold": 0.6, "log_prob_threshold": -1.0}
    assert looks_silent(0.9, -1.4, **limits)
    assert not looks_silent(0.9, -0.3, **limits)
    assert not looks_silent(0.1, -1.4, **limits)
