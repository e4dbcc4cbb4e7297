"""The streaming segmenter on its own: where utterances are cut, whatever the chunking and the gaps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.transcription.audio import BYTES_PER_SECOND, SCRIPT, VOICES, Visit, chunks, silence, speak
from transcription.stream import Segmenter, SegmenterOptions, Utterance, _level, _percentile

PRE_ROLL = SegmenterOptions().pre_roll
POST_ROLL = SegmenterOptions().post_roll


def cut(
    pieces: list[tuple[float, bytes]] | bytes, options: SegmenterOptions | None = None
) -> list[Utterance]:
    """Push audio through a fresh segmenter (20 ms chunks for plain bytes) and flush it."""
    if isinstance(pieces, bytes):
        pieces = list(chunks(pieces))
    seg = Segmenter(options)
    out: list[Utterance] = []
    for offset, pcm in pieces:
        out += seg.push(offset, pcm)
    return out + seg.flush()


def by_bytes(pcm: bytes, size: int) -> list[tuple[float, bytes]]:
    return [(i / BYTES_PER_SECOND, pcm[i : i + size]) for i in range(0, len(pcm), size)]


def rms_db(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(audio.astype(np.float64) ** 2) + 1e-10))


def test_each_line_is_one_utterance_cut_in_the_pauses(visit: Visit) -> None:
    for speaker, track in visit.tracks.items():
        utterances = cut(track)
        lines = visit.lines_of(speaker)
        assert len(utterances) == len(lines)
        for utt, line in zip(utterances, lines, strict=True):
            assert line.start - PRE_ROLL - 0.02 <= utt.start <= line.start
            assert line.end <= utt.end <= line.end + POST_ROLL + 0.02


@pytest.mark.parametrize("size", [640, 320, 333, 1, 4000, BYTES_PER_SECOND])
def test_any_chunk_size_gives_the_same_utterances(visit: Visit, size: int) -> None:
    track = visit.tracks[next(iter(visit.tracks))]
    expected = cut(track)
    got = cut(by_bytes(track, size))
    assert [(u.start, len(u.audio)) for u in got] == [(u.start, len(u.audio)) for u in expected]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(got, expected, strict=True))


def test_long_speech_is_cut_at_quiet_moments_and_nothing_is_lost() -> None:
    # About 45 s of talk whose pauses are all shorter than the 0.6 s that ends an utterance.
    speech = b"".join(speak(text, VOICES[speaker]) + silence(0.15) for speaker, text in SCRIPT)
    utterances = cut(speech)
    options = SegmenterOptions()
    assert len(utterances) >= 3
    assert all(u.duration <= options.max_utterance for u in utterances)
    for before, after in itertools.pairwise(utterances):
        assert after.start == pytest.approx(before.end, abs=1e-3)  # split, not trimmed
        edge = np.concatenate([before.audio[-800:], after.audio[:800]])  # 100 ms around the cut
        assert rms_db(edge) < rms_db(pcm_of(speech)) - 10
    assert sum(u.duration for u in utterances) >= len(speech) / BYTES_PER_SECOND - 0.5


def pcm_of(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


def test_a_rejoin_later_in_the_visit_starts_a_new_part() -> None:
    first = speak("I will be right back.", "en-us")
    second = speak("Sorry, the connection dropped.", "en-us")
    pieces = list(chunks(first + silence(0.3), offset=2.0)) + list(chunks(second + silence(1), offset=30.0))
    utterances = cut(pieces)
    assert [u.start for u in utterances] == [2.0, 30.0]
    assert utterances[0].end <= 2.0 + len(first) / BYTES_PER_SECOND + 0.3 + 0.02


def test_a_short_hole_is_filled_with_silence() -> None:
    line = speak("Things have been hard since the baby was born.", "en-gb")
    pieces = list(chunks(silence(1) + line + silence(1)))
    del pieces[100:110]  # 200 ms lost in the middle of the line
    utterances = cut(pieces)
    assert len(utterances) == 1
    assert utterances[0].start == pytest.approx(1 - PRE_ROLL, abs=0.02)
    assert utterances[0].duration == pytest.approx(
        len(line) / BYTES_PER_SECOND + PRE_ROLL + POST_ROLL, abs=0.05
    )


def test_audio_sent_twice_is_taken_once() -> None:
    line = speak("Things have been hard since the baby was born.", "en-gb")
    pieces = list(chunks(silence(1) + line + silence(1)))
    pieces[80:80] = pieces[70:80]  # a resend of 200 ms already delivered
    assert [(u.start, len(u.audio)) for u in cut(pieces)] == [
        (u.start, len(u.audio)) for u in cut(silence(1) + line + silence(1))
    ]


def test_a_long_hole_in_the_middle_of_speech_ends_the_utterance() -> None:
    line = speak("Things have been hard since the baby was born, and I am very tired.", "en-gb")
    pieces = list(chunks(silence(1) + line + silence(1)))
    later = [(offset + 5.0, pcm) for offset, pcm in pieces[150:]]
    utterances = cut(pieces[:150] + later)
    assert len(utterances) == 2
    assert utterances[0].end <= 3.0 + 0.02
    assert utterances[1].start == pytest.approx(150 * 0.02 + 5.0, abs=0.02)


def test_silence_steady_noise_and_clicks_make_no_utterances(no_speech: dict[str, bytes]) -> None:
    for name in ("silence", "white noise", "pink noise"):
        assert cut(no_speech[name]) == [], name
    click = silence(2) + (np.full(160, 20000, dtype="<i2")).tobytes() + silence(2)
    assert cut(click) == []


def test_levels_and_the_noise_floor_match_numpy() -> None:
    rng = np.random.default_rng(4)
    for scale in (0, 3, 300, 30000):
        frame = (rng.standard_normal(320) * scale).clip(-32768, 32767).astype("<i2")
        assert _level(frame.tobytes()) == pytest.approx(rms_db(frame / 32768.0), abs=1e-4)
    for n in (1, 2, 7, 250):
        levels = rng.uniform(-90, 0, n)
        assert _percentile(sorted(levels), 10.0) == pytest.approx(np.percentile(levels, 10.0))


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="frame"):
        SegmenterOptions(frame=0.5)
    with pytest.raises(ValueError, match="max_utterance"):
        SegmenterOptions(max_utterance=1.0)
