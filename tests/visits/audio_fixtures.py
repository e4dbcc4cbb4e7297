"""Test audio: speech made with espeak-ng and sox, and small readers to check what the server wrote."""

from __future__ import annotations

import math
import struct
import subprocess
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

SPEECH = "The rent is due on Friday and I cannot pay it this month."


def make_speech_wav(
    path: Path,
    text: str = SPEECH,
    *,
    lead_silence: float = 0.5,
    tail_silence: float = 0.0,
    rate: int = 48_000,
    channels: int = 1,
) -> Path:
    """Speak `text` into a 16-bit WAV at `rate`, led by `lead_silence` seconds of silence."""
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, capture_output=True)
    sox = ["sox", str(raw), "-r", str(rate), "-c", str(channels), "-b", "16", str(path)]
    subprocess.run([*sox, "pad", str(lead_silence), str(tail_silence)], check=True, capture_output=True)
    raw.unlink()
    return path


def concat_wavs(out: Path, *parts: Path) -> Path:
    """Join WAVs of one format end to end with sox."""
    subprocess.run(["sox", *map(str, parts), str(out)], check=True, capture_output=True)
    return out


@dataclass(frozen=True)
class Pcm:
    """Decoded 16-bit PCM of a WAV (first channel only)."""

    rate: int
    channels: int
    samples: array[int]

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    def window(self, start: float, end: float) -> array[int]:
        return self.samples[int(start * self.rate) : int(end * self.rate)]

    def rms(self, start: float = 0.0, end: float | None = None) -> float:
        return rms(self.window(start, self.duration if end is None else end))

    def envelope(self, step: float = 0.05) -> list[float]:
        """RMS energy in consecutive windows of `step` seconds."""
        n = int(step * self.rate)
        return [rms(self.samples[i : i + n]) for i in range(0, len(self.samples) - n + 1, n)]


def read_wav(path: Path) -> Pcm:
    """Read a 16-bit PCM WAV with the stdlib reader, which trusts the header's sizes."""
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2, w.getsampwidth()
        channels = w.getnchannels()
        data = array("h", w.readframes(w.getnframes()))
        return Pcm(rate=w.getframerate(), channels=channels, samples=data[::channels])


def header_sizes(path: Path) -> tuple[int, int, int]:
    """Return (RIFF size, data size, file size) as they are on disk right now."""
    raw = path.read_bytes()
    riff, data = struct.unpack_from("<I", raw, 4)[0], struct.unpack_from("<I", raw, 40)[0]
    return int(riff), int(data), len(raw)


def rms(samples: array[int]) -> float:
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


def correlation(a: list[float], b: list[float]) -> float:
    """Pearson correlation of two series over their common length."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = math.sqrt(sum((x - ma) ** 2 for x in a))
    vb = math.sqrt(sum((y - mb) ** 2 for y in b))
    return cov / (va * vb) if va and vb else 0.0
