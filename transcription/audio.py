"""Audio in the one format the pipeline uses: 16 kHz mono, s16le on the wire, float32 for the model."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from faster_whisper import decode_audio
from numpy.typing import NDArray

SAMPLE_RATE = 16_000
SAMPLE_WIDTH = 2  # bytes per s16le sample

Audio = NDArray[np.float32]


def pcm_to_float(pcm: bytes) -> Audio:
    """Return s16le samples as float32 in [-1, 1)."""
    samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // SAMPLE_WIDTH)
    return samples.astype(np.float32) / 32768.0


def read_audio(path: str | Path) -> Audio:
    """Read a recording as 16 kHz mono float32.

    Our own WAVs (16 kHz mono s16le) are read directly; anything else is decoded and
    resampled by PyAV, which also copes with a WAV whose header was never finalised.
    """
    try:
        with wave.open(str(path), "rb") as w:
            fmt = (w.getframerate(), w.getnchannels(), w.getsampwidth())
            if fmt == (SAMPLE_RATE, 1, SAMPLE_WIDTH) and w.getnframes() > 0:
                return pcm_to_float(w.readframes(w.getnframes()))
    except (wave.Error, EOFError):
        pass
    audio: Audio = np.asarray(decode_audio(str(path), sampling_rate=SAMPLE_RATE), dtype=np.float32)
    return audio
