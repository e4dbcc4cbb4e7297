"""Guards against Whisper's known failures: text from silence, and repetition loops.

Pure functions over plain values, so they are tested without the model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_NOT_WORD = re.compile(r"[^\w']+")


@dataclass(frozen=True, slots=True)
class Loop:
    """A run of one word or phrase repeated back to back: tokens[start:end], `unit` tokens each."""

    start: int
    end: int
    unit: int

    @property
    def repeats(self) -> int:
        return (self.end - self.start) // self.unit


def normalize_token(text: str) -> str:
    """Return a word lower-cased without punctuation, for comparing repeats."""
    return _NOT_WORD.sub("", text.lower())


def find_repetition_loop(
    tokens: Sequence[str], *, max_unit: int = 4, min_repeats: int = 4, min_words: int = 5
) -> Loop | None:
    """Return the longest run of a phrase of up to `max_unit` tokens repeated back to back, or None.

    A run counts as a loop when the phrase occurs at least `min_repeats` times in a row and the
    run spans at least `min_words` tokens, so "no, no, no" as people say it is left alone.
    Tokens are compared as given; see :func:`normalize_token`.
    """
    best: Loop | None = None
    n = len(tokens)
    for unit in range(1, max_unit + 1):
        for start in range(n - unit * min_repeats + 1):
            phrase = tokens[start : start + unit]
            if not all(phrase):
                continue
            end = start + unit
            while end + unit <= n and tokens[end : end + unit] == phrase:
                end += unit
            run = Loop(start, end, unit)
            is_loop = run.repeats >= min_repeats and end - start >= min_words
            # A smaller unit wins ties: "no no no no no no" is one word six times.
            if is_loop and (best is None or end - start > best.end - best.start):
                best = run
    return best


def loop_free_indices(
    tokens: Sequence[str], *, max_unit: int = 4, min_repeats: int = 4, min_words: int = 5
) -> list[int]:
    """Return the indices of the tokens kept once each repetition loop is cut to one occurrence.

    Returns an empty list when the tokens were nothing but loops: such a segment is a
    hallucination, while text around a loop is usually real speech and is kept.
    """
    norm = [normalize_token(t) for t in tokens]
    keep = list(range(len(tokens)))
    remnants: set[int] = set()
    while True:
        loop = find_repetition_loop(
            [norm[i] for i in keep], max_unit=max_unit, min_repeats=min_repeats, min_words=min_words
        )
        if loop is None:
            break
        remnants.update(keep[loop.start : loop.start + loop.unit])
        keep = keep[: loop.start + loop.unit] + keep[loop.end :]
    if remnants and all(i in remnants for i in keep if norm[i]):
        return []
    return keep


def looks_silent(
    no_speech_prob: float, avg_logprob: float, *, no_speech_threshold: float, log_prob_threshold: float
) -> bool:
    """Return whether Whisper itself thinks a segment is silence it made words for."""
    return no_speech_prob > no_speech_threshold and avg_logprob < log_prob_threshold
