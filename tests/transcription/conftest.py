"""The real tiny.en engine, loaded once, and test audio generated once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.transcription.audio import Visit, make_visit, noise, silence, write_wav
from transcription import Engine, EngineOptions


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The bundled tiny.en, int8 on the CPU, as deployed."""
    engine = Engine(EngineOptions())
    engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def visit() -> Visit:
    """The scripted two-speaker visit, spoken by espeak-ng."""
    return make_visit()


@pytest.fixture(scope="session")
def visit_wavs(visit: Visit, audio_dir: Path) -> dict[str, Path]:
    """Each speaker's track of the visit as a WAV file, as the visits package stores them."""
    return {s: write_wav(audio_dir / f"{s.replace(':', '-')}.wav", pcm) for s, pcm in visit.tracks.items()}


@pytest.fixture(scope="session")
def no_speech() -> dict[str, bytes]:
    """A minute each of digital silence, steady noise at a modest level, and bursts of noise."""
    return {
        "silence": silence(60),
        "white noise": noise("whitenoise", 60, 0.05),
        "pink noise": noise("pinknoise", 60, 0.1),
        # Swells like speech, so the segmenter passes it on and the engine's guards must hold.
        "pink noise bursts": noise("pinknoise", 60, 0.3, "tremolo", "0.7", "100"),
    }
