"""What transcription produces: segments of one speaker with word timings, in visit time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; times are seconds from the visit start."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    """One transcribed stretch of one speaker; times are seconds from the visit start."""

    speaker: str
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
