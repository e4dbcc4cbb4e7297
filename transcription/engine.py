"""The Whisper engine: one faster-whisper model per process, run on a bounded pool of worker threads.

faster-whisper's ``transcribe()`` returns a lazy generator that does the decoding as it is
iterated, so every call here consumes it inside the worker thread; the event loop only awaits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from transcription.audio import SAMPLE_RATE, Audio, read_audio
from transcription.filters import looks_silent, loop_free_indices
from transcription.model import BUNDLED, WindowedWhisperModel, resolve_model
from transcription.results import Segment, Word

log = logging.getLogger(__name__)

T = TypeVar("T")

Device = Literal["cpu", "cuda"]
# Whisper decodes 30 s windows; a segment cannot carry more than this many tokens.
_MAX_TOKENS = 440


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How the Whisper model is loaded and how it decodes.

    Args:
        model: a faster-whisper model name ("base.en"), a Hugging Face repo id already in the
            local cache, or a directory holding a CTranslate2 Whisper model; empty means the
            bundled tiny.en.
        device: "cpu" or "cuda".
        compute_type: CTranslate2 compute type; empty means int8 on the CPU, float16 on CUDA.
        cpu_threads: threads per transcription; 0 picks from the machine's cores.
        workers: transcriptions run at once (the thread pool and the model's ``num_workers``);
            0 picks from the machine's cores.
        language: spoken language for multilingual models; empty detects it ("en" for .en models).
    """

    model: str = ""
    device: Device = "cpu"
    compute_type: str = ""
    cpu_threads: int = 0
    workers: int = 0
    language: str = ""
    beam_size: int = 1
    # The fallback re-decodes a failed window at a higher temperature; one retry bounds its cost.
    temperatures: tuple[float, ...] = (0.0, 0.4)
    best_of: int = 2
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4
    # Caps the tokens decoded per second of audio, so a looping window stops early.
    max_tokens_per_second: float = 10.0
    # Seconds of audio the encoder sees at least; 30 is Whisper's fixed window (see WindowedWhisperModel).
    min_window: float = 10.0
    vad_threshold: float = 0.5
    vad_min_speech_ms: int = 250
    repeat_max_unit: int = 4
    repeat_min_repeats: int = 4
    repeat_min_words: int = 5

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"whisper device must be 'cpu' or 'cuda', not {self.device!r}")
        if self.cpu_threads < 0:
            raise ValueError("whisper cpu_threads must be 0 (automatic) or more")
        if self.workers < 0:
            raise ValueError("whisper workers must be 0 (automatic) or more")
        if not 1.0 <= self.min_window <= 30.0:
            raise ValueError("whisper min_window must be between 1 and 30 seconds")
        if not self.temperatures:
            raise ValueError("whisper temperatures must name at least one temperature")

    def resolved_compute_type(self) -> str:
        return self.compute_type or ("int8" if self.device == "cpu" else "float16")

    def resolved_workers(self) -> int:
        # Two cores: one transcription at a time, leaving room for the event loop.
        return self.workers or max(1, min(4, (os.cpu_count() or 1) // 2))

    def resolved_cpu_threads(self) -> int:
        return self.cpu_threads or max(1, min(4, (os.cpu_count() or 1) // self.resolved_workers()))


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Work done since the engine started: audio seconds in, busy seconds spent, segments dropped."""

    calls: int
    audio_seconds: float
    busy_seconds: float
    segments: int
    dropped: int

    @property
    def real_time_factor(self) -> float:
        return self.busy_seconds / self.audio_seconds if self.audio_seconds else 0.0


@dataclass
class _Counters:
    calls: int = 0
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0
    segments: int = 0
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Engine:
    """One Whisper model and the thread pool that runs it, shared by every visit in the process."""

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self.workers = self.options.resolved_workers()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="whisper")
        self._load_lock = threading.Lock()
        self._model: WindowedWhisperModel | None = None
        self._counters = _Counters()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model if it is not loaded yet (blocking; safe from any thread)."""
        self._loaded_model()

    def _loaded_model(self) -> WindowedWhisperModel:
        with self._load_lock:
            if self._model is not None:
                return self._model
            o = self.options
            path = resolve_model(o.model)
            info = {
                "model": o.model or BUNDLED,
                "path": str(path),
                "device": o.device,
                "compute_type": o.resolved_compute_type(),
                "cpu_threads": o.resolved_cpu_threads(),
                "workers": self.workers,
            }
            log.info("loading whisper model", extra=info)
            began = time.perf_counter()
            model = WindowedWhisperModel(
                str(path),
                device=o.device,
                compute_type=o.resolved_compute_type(),
                cpu_threads=o.resolved_cpu_threads(),
                num_workers=self.workers,
                local_files_only=True,
                min_window=o.min_window,
            )
            self._model = model
            log.info("whisper model loaded", extra={**info, "seconds": round(time.perf_counter() - began, 3)})
            return model

    async def start(self) -> None:
        """Load the model on the pool, off the event loop."""
        await self._run(self.load)

    def close(self) -> None:
        """Wait for running transcriptions and stop the pool (blocking: close the transcribers first)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def stats(self) -> EngineStats:
        c = self._counters
        with c.lock:
            return EngineStats(c.calls, c.audio_seconds, c.busy_seconds, c.segments, c.dropped)

    async def transcribe(self, audio: Audio, *, speaker: str, offset: float = 0.0) -> list[Segment]:
        """Transcribe 16 kHz mono float32 audio that starts `offset` seconds into the visit."""
        call = functools.partial(self.transcribe_blocking, audio, speaker=speaker, offset=offset)
        return await self._run(call)

    async def transcribe_file(self, path: str | Path, *, speaker: str, offset: float = 0.0) -> list[Segment]:
        """Read and transcribe a whole recording on the pool."""

        def run() -> list[Segment]:
            return self.transcribe_blocking(read_audio(path), speaker=speaker, offset=offset)

        return await self._run(run)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def transcribe_blocking(self, audio: Audio, *, speaker: str, offset: float = 0.0) -> list[Segment]:
        """Transcribe in the calling thread, which must not be running an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("Whisper would block the event loop: use `await engine.transcribe(...)`")
        model = self._loaded_model()
        o = self.options
        duration = len(audio) / SAMPLE_RATE
        began = time.perf_counter()
        pieces, _info = model.transcribe(
            audio,
            language=o.language or None,
            beam_size=o.beam_size,
            best_of=o.best_of,
            temperature=list(o.temperatures),
            compression_ratio_threshold=o.compression_ratio_threshold,
            log_prob_threshold=o.log_prob_threshold,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=False,
            word_timestamps=True,
            vad_filter=True,
            vad_parameters={"threshold": o.vad_threshold, "min_speech_duration_ms": o.vad_min_speech_ms},
            max_new_tokens=min(_MAX_TOKENS, int(16 + o.max_tokens_per_second * min(duration, 30.0))),
        )
        kept: list[Segment] = []
        dropped = 0
        for piece in pieces:  # decoding happens here, in this worker thread
            segment = self._convert(piece, speaker, offset, duration)
            if segment is None:
                dropped += 1
            else:
                kept.append(segment)
        busy = time.perf_counter() - began
        c = self._counters
        with c.lock:
            c.calls += 1
            c.audio_seconds += duration
            c.busy_seconds += busy
            c.segments += len(kept)
            c.dropped += dropped
        return kept

    def _convert(self, piece: Any, speaker: str, offset: float, duration: float) -> Segment | None:
        """Return the faster-whisper segment in visit time, or None when a guard drops it."""
        raw = list(piece.words or ())
        tokens = [str(w.word) for w in raw] if raw else str(piece.text).split()
        reason, keep = self._guard(piece, tokens)
        if reason:
            log.debug(
                "dropped a segment",
                extra={"speaker": speaker, "reason": reason, "at": round(offset + float(piece.start), 3)},
            )
            return None
        end = offset + duration

        def at(t: float) -> float:
            return round(min(max(offset + float(t), offset), end), 3)

        kept_raw = [raw[i] for i in keep] if raw else []
        words = tuple(
            Word(at(w.start), at(w.end), str(w.word).strip(), round(float(w.probability), 3))
            for w in kept_raw
            if str(w.word).strip()
        )
        if len(keep) == len(tokens):
            text = str(piece.text).strip()
        elif raw:
            text = "".join(str(w.word) for w in kept_raw).strip()
        else:
            text = " ".join(tokens[i] for i in keep)
        if not text:
            return None
        start = words[0].start if words else at(piece.start)
        stop = words[-1].end if words else at(piece.end)
        return Segment(speaker=speaker, start=start, end=stop, text=text, words=words)

    def _guard(self, piece: Any, tokens: list[str]) -> tuple[str, list[int]]:
        """Return why the segment is dropped ("" to keep it) and the indices of the tokens kept."""
        o = self.options
        if looks_silent(
            piece.no_speech_prob,
            piece.avg_logprob,
            no_speech_threshold=o.no_speech_threshold,
            log_prob_threshold=o.log_prob_threshold,
        ):
            return "no speech", []
        if piece.compression_ratio > o.compression_ratio_threshold:
            # Every temperature failed; what is left is the most repetitive attempt.
            return "repetitive", []
        keep = loop_free_indices(
            tokens, max_unit=o.repeat_max_unit, min_repeats=o.repeat_min_repeats, min_words=o.repeat_min_words
        )
        return ("" if keep else "repetition loop"), keep


async def transcribe_file(
    engine: Engine, wav_path: str | Path, speaker: str, offset: float = 0.0
) -> list[Segment]:
    """Transcribe a whole recording in one pass: re-transcription, and the after-the-call baseline."""
    return await engine.transcribe_file(wav_path, speaker=speaker, offset=offset)
