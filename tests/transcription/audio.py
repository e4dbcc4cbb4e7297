"""Test audio made with espeak-ng and sox: a scripted two-speaker visit, silence and noise.

Everything is 16 kHz mono s16le, the format the visits package feeds the transcriber.
"""

from __future__ import annotations

import re
import subprocess
import wave
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
BYTES_PER_SECOND = SAMPLE_RATE * 2
WORKER = "worker:12"
CLIENT = "client:7"
VOICES: Mapping[str, str] = {WORKER: "en-us", CLIENT: "en-gb+f3"}

# A home visit: a follow-up date and one risk sentence, alternating speakers.
SCRIPT: tuple[tuple[str, str], ...] = (
    (WORKER, "Good morning, this is Maria from family services. Thank you for making time to talk today."),
    (CLIENT, "Good morning. Things have been hard since the baby was born, and I am very tired."),
    (WORKER, "I understand. How are the children doing at school this term?"),
    (CLIENT, "They are doing well at school. But my landlord says we will be evicted next month."),
    (WORKER, "That sounds very stressful. I will call the housing office about your rent this week."),
    (CLIENT, "Thank you. I can bring the letter from the landlord to our next meeting."),
    (WORKER, "Let us meet again next Tuesday at ten, and please bring the letter with you."),
    (CLIENT, "Yes, that works for me. See you on Tuesday. Goodbye."),
)


@dataclass(frozen=True, slots=True)
class Line:
    """One scripted line, placed `start` to `end` seconds into the visit."""

    speaker: str
    text: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Visit:
    """A scripted visit: each speaker's track has their lines and silence while the other talks."""

    lines: tuple[Line, ...]
    tracks: Mapping[str, bytes] = field(repr=False)
    duration: float

    def lines_of(self, speaker: str) -> list[Line]:
        return [line for line in self.lines if line.speaker == speaker]


def speak(text: str, voice: str, rate: int = 155) -> bytes:
    """Return `text` spoken by espeak-ng as 16 kHz mono s16le, without espeak's silence around it."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", text], check=True, capture_output=True
    ).stdout
    pcm = np.frombuffer(_sox(["-t", "wav", "-"], wav), dtype="<i2")
    loud = np.flatnonzero(np.abs(pcm) > 300)
    return pcm[loud[0] : loud[-1] + 1].tobytes()


def noise(kind: str, seconds: float, volume: float, *effects: str) -> bytes:
    """Return `seconds` of sox's `kind` noise ("whitenoise", "pinknoise", ...) scaled by `volume`."""
    return _sox(["-n"], b"", ["synth", str(seconds), kind, "vol", str(volume), *effects])


def silence(seconds: float) -> bytes:
    return bytes(round(seconds * SAMPLE_RATE) * 2)


def _sox(source: list[str], data: bytes, effects: Sequence[str] = ()) -> bytes:
    target = ["-t", "raw", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer", "-"]
    return subprocess.run(
        ["sox", *source, *target, *effects], input=data, check=True, capture_output=True
    ).stdout


def make_visit(
    script: Sequence[tuple[str, str]] = SCRIPT,
    voices: Mapping[str, str] = VOICES,
    lead: float = 1.0,
    gap: float = 0.8,
    tail: float = 1.5,
) -> Visit:
    """Lay each line on its speaker's track after the previous line and a pause of `gap` seconds."""
    spoken = [(speaker, text, speak(text, voices[speaker])) for speaker, text in script]
    lines: list[Line] = []
    at = lead
    for speaker, text, pcm in spoken:
        end = at + len(pcm) / BYTES_PER_SECOND
        lines.append(Line(speaker, text, round(at, 3), round(end, 3)))
        at = end + gap
    duration = at - gap + tail
    size = round(duration * SAMPLE_RATE) * 2
    tracks = {speaker: bytearray(size) for speaker in voices}
    for line, (_, _, pcm) in zip(lines, spoken, strict=True):
        begin = round(line.start * SAMPLE_RATE) * 2
        tracks[line.speaker][begin : begin + len(pcm)] = pcm
    return Visit(tuple(lines), {s: bytes(t) for s, t in tracks.items()}, round(duration, 3))


def chunks(pcm: bytes, seconds: float = 0.02, offset: float = 0.0) -> Iterator[tuple[float, bytes]]:
    """Yield (offset, chunk) pieces of `pcm` as a 20 ms uplink would deliver them."""
    size = round(seconds * SAMPLE_RATE) * 2
    for i in range(0, len(pcm), size):
        yield offset + i / BYTES_PER_SECOND, pcm[i : i + size]


def write_wav(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    return path


_ONES = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """Return 0 to 999 as espeak says them ("ten", "forty two", "one hundred and five")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))


def normalize(text: str) -> str:
    """Lower-case, spell out numbers, strip punctuation: the form word error rates are taken on."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"\b(\d{1,2}):00\b", r"\1", text)
    text = re.sub(r"\d+", lambda m: number_words(int(m.group())) if len(m.group()) <= 3 else m.group(), text)
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(text.split())
