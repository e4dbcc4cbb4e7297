"""Streaming transcription: cut each speaker's audio into utterances as it arrives, transcribe each at once.

The cutting runs on the event loop and is cheap: the energy of each 20 ms frame against an
adaptive noise floor, about 0.05% of a core per stream. It only has to find pauses; deciding what
is speech is left to the Silero VAD the engine runs on every utterance in its worker thread.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from transcription.audio import SAMPLE_RATE, SAMPLE_WIDTH, Audio, pcm_to_float
from transcription.engine import Engine
from transcription.results import Segment

log = logging.getLogger(__name__)

SegmentCallback = Callable[[Segment], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SegmenterOptions:
    """Where utterances are cut. Times in seconds, levels in dB below full scale."""

    frame: float = 0.02
    # A pause this long ends an utterance.
    min_silence: float = 0.6
    # A longer utterance is cut at its quietest point, which keeps Whisper's input short.
    max_utterance: float = 15.0
    pre_roll: float = 0.3
    post_roll: float = 0.3
    # Less voiced time than this (a click, a cough) is not worth a transcription.
    min_speech: float = 0.25
    # A frame is voiced when it is this far above the noise floor ...
    margin_db: float = 10.0
    # ... and above this absolute level.
    min_level_db: float = -50.0
    # The noise floor is this percentile of the frame levels over the last `floor_window` seconds.
    floor_percentile: float = 10.0
    floor_window: float = 5.0
    # A hole in the stream up to this long is filled with silence; a longer one (a rejoin) ends the part.
    max_gap: float = 0.5

    def __post_init__(self) -> None:
        if not 0.005 <= self.frame <= 0.1:
            raise ValueError("frame must be between 5 and 100 ms")
        if self.max_utterance < 4 * self.min_silence:
            raise ValueError("max_utterance must be well above min_silence")

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds / self.frame))


@dataclass(frozen=True, slots=True, eq=False)
class Utterance:
    """A stretch of one speaker's audio to transcribe, starting `start` seconds into the visit."""

    start: float
    audio: Audio

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.duration


def _level(pcm: bytes) -> float:
    """Return the level of a frame of s16le samples in dB below full scale."""
    samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // SAMPLE_WIDTH).astype(np.float64)
    power = float(samples.dot(samples)) / (len(samples) * 32768.0 * 32768.0) if len(samples) else 0.0
    return 10.0 * math.log10(power + 1e-10)


def _percentile(ordered: list[float], q: float) -> float:
    """Return the `q`th percentile of sorted values, interpolated as numpy's default does."""
    at = (len(ordered) - 1) * q / 100.0
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


@dataclass(slots=True)
class _Frame:
    pcm: bytes
    level: float
    voiced: bool


class Segmenter:
    """Cut one speaker's s16le PCM stream into utterances at pauses.

    Pure and synchronous: ``push`` takes audio with its offset in the visit and returns the
    utterances it completed; ``flush`` returns the one still open.
    """

    def __init__(self, options: SegmenterOptions | None = None) -> None:
        self.options = o = options or SegmenterOptions()
        self._frame_bytes = round(o.frame * SAMPLE_RATE) * SAMPLE_WIDTH
        self._min_silence = o.frames(o.min_silence)
        self._max_frames = o.frames(o.max_utterance)
        self._post_roll = o.frames(o.post_roll)
        self._min_voiced = o.frames(o.min_speech)
        self._levels: deque[float] = deque(maxlen=o.frames(o.floor_window))
        self._sorted: list[float] = []  # `_levels`, sorted
        self._floor: float | None = None
        self._since_floor = 0
        self._start_part(None)

    def _start_part(self, origin: float | None) -> None:
        self._origin = origin  # visit time of this part's first sample
        self._bytes = 0  # bytes of this part taken in, including `_pending`
        self._pending = bytearray()  # the start of a frame not complete yet
        self._next_frame = 0  # index in this part of the next complete frame
        self._ring: deque[_Frame] = deque(maxlen=self.options.frames(self.options.pre_roll))
        self._utt: list[_Frame] = []  # the open utterance, empty between utterances
        self._utt_first = 0  # frame index of its first frame
        self._last_voiced = -1  # index in `_utt`

    def _clock(self) -> float:
        """Return the visit time just after the last sample taken in."""
        assert self._origin is not None
        return self._origin + (self._bytes // SAMPLE_WIDTH) / SAMPLE_RATE

    def push(self, offset: float, pcm: bytes) -> list[Utterance]:
        """Take `pcm` that starts `offset` seconds into the visit; return the utterances it completed."""
        out: list[Utterance] = []
        if self._origin is None:
            self._start_part(offset)
        else:
            # The sample count keeps time; offsets only matter where the stream has a hole or overlap.
            gap = offset - self._clock()
            if gap > self.options.max_gap:
                out += self._end_part()
                self._start_part(offset)
            elif abs(gap) >= self.options.frame / 2:
                if len(self._pending) % SAMPLE_WIDTH:
                    del self._pending[-1]
                    self._bytes -= 1
                size = round(abs(gap) * SAMPLE_RATE) * SAMPLE_WIDTH
                # Fill a hole with silence; drop audio that overlaps what we already have.
                pcm = bytes(size) + pcm if gap > 0 else pcm[size:]
        self._bytes += len(pcm)
        size = self._frame_bytes
        if not self._pending and len(pcm) % size == 0:
            data = pcm  # the usual case: whole 20 ms frames, nothing left over
        else:
            self._pending += pcm
            whole = len(self._pending) // size * size
            data = bytes(self._pending[:whole])
            del self._pending[:whole]
        for i in range(0, len(data), size):
            chunk = data[i : i + size]
            if (utt := self._frame(chunk, _level(chunk))) is not None:
                out.append(utt)
        return out

    def flush(self) -> list[Utterance]:
        """Return the open utterance, if any, and start afresh."""
        out = self._end_part()
        self._start_part(None)
        return out

    def _end_part(self) -> list[Utterance]:
        utt = self._close() if self._utt else None
        return [utt] if utt is not None else []

    def _threshold(self, level: float) -> float:
        # A sorted copy of the window keeps the percentile cheap: this runs for every 20 ms frame.
        if len(self._levels) == self._levels.maxlen:
            del self._sorted[bisect.bisect_left(self._sorted, self._levels[0])]
        self._levels.append(level)
        bisect.insort(self._sorted, level)
        self._since_floor += 1
        if self._floor is None or self._since_floor >= 5:
            self._floor = _percentile(self._sorted, self.options.floor_percentile)
            self._since_floor = 0
        return max(self._floor + self.options.margin_db, self.options.min_level_db)

    def _frame(self, pcm: bytes, level: float) -> Utterance | None:
        index = self._next_frame
        self._next_frame += 1
        frame = _Frame(pcm, level, level > self._threshold(level))
        if not self._utt:
            if not frame.voiced:
                self._ring.append(frame)
                return None
            self._utt = [*self._ring, frame]
            self._utt_first = index - len(self._ring)
            self._ring.clear()
            self._last_voiced = len(self._utt) - 1
            return None
        self._utt.append(frame)
        if frame.voiced:
            self._last_voiced = len(self._utt) - 1
        elif len(self._utt) - 1 - self._last_voiced >= self._min_silence:
            return self._close()
        if len(self._utt) >= self._max_frames:
            return self._split()
        return None

    def _close(self) -> Utterance | None:
        """End the open utterance a little after its last voiced frame."""
        cut = min(len(self._utt), self._last_voiced + 1 + self._post_roll)
        utt = self._emit(cut)
        self._ring.extend(self._utt)  # the pause after it: pre-roll for the next one
        self._utt = []
        return utt

    def _split(self) -> Utterance | None:
        """Cut an overlong utterance at the quietest 100 ms of its second half; keep the rest open."""
        levels = np.array([f.level for f in self._utt])
        width = min(5, len(levels))
        smooth = np.convolve(levels, np.ones(width) / width, mode="valid")
        low = len(self._utt) // 2
        cut = low + int(np.argmin(smooth[low:])) + width // 2
        utt = self._emit(cut)
        voiced = [i for i, f in enumerate(self._utt) if f.voiced]
        self._last_voiced = voiced[-1] if voiced else -1
        return utt

    def _emit(self, cut: int) -> Utterance | None:
        """Take the first `cut` frames off the open utterance; return them unless too little was voiced."""
        head, self._utt = self._utt[:cut], self._utt[cut:]
        start = self._utt_first
        self._utt_first += cut
        if sum(f.voiced for f in head) < self._min_voiced:
            return None
        assert self._origin is not None
        at = self._origin + start * self._frame_bytes / SAMPLE_WIDTH / SAMPLE_RATE
        return Utterance(start=round(at, 3), audio=pcm_to_float(b"".join(f.pcm for f in head)))


@dataclass(frozen=True, slots=True, eq=False)
class _Speaker:
    segmenter: Segmenter
    queue: asyncio.Queue[Utterance | None]  # None: the speaker is finished
    task: asyncio.Task[None]


class StreamingTranscriber:
    """Transcribe a visit's speakers while they talk; deliver each segment as soon as it is ready.

    Each speaker's utterances are transcribed in order and their segments handed to `on_segment`
    in order; different speakers share the engine's pool.

    Args:
        engine: the process's engine.
        on_segment: awaited with each segment; an exception it raises is logged, not propagated.
        options: where utterances are cut.
        backlog_warning: log a warning when a speaker has this many utterances waiting.
    """

    def __init__(
        self,
        engine: Engine,
        on_segment: SegmentCallback,
        *,
        options: SegmenterOptions | None = None,
        backlog_warning: int = 4,
    ) -> None:
        self._engine = engine
        self._on_segment = on_segment
        self._options = options or SegmenterOptions()
        self._backlog_warning = backlog_warning
        self._speakers: dict[str, _Speaker] = {}
        self._closed = False

    async def feed(self, speaker: str, offset: float, pcm: bytes) -> None:
        """Take 16 kHz mono s16le audio of `speaker` that starts `offset` seconds into the visit."""
        if self._closed:
            raise RuntimeError("the transcriber is closed")
        state = self._speakers.get(speaker)
        if state is None:
            queue: asyncio.Queue[Utterance | None] = asyncio.Queue()
            task = asyncio.create_task(self._transcribe(speaker, queue), name=f"transcribe {speaker}")
            state = self._speakers[speaker] = _Speaker(Segmenter(self._options), queue, task)
        for utt in state.segmenter.push(offset, pcm):
            state.queue.put_nowait(utt)
            if state.queue.qsize() >= self._backlog_warning:
                log.warning(
                    "transcription is falling behind",
                    extra={"speaker": speaker, "waiting": state.queue.qsize()},
                )

    async def finish(self, speaker: str) -> None:
        """Transcribe what `speaker` said last and return once all their segments are delivered."""
        state = self._speakers.pop(speaker, None)
        if state is None:
            return
        for utt in state.segmenter.flush():
            state.queue.put_nowait(utt)
        state.queue.put_nowait(None)
        await asyncio.shield(state.task)

    async def close(self) -> None:
        """Finish every speaker and refuse more audio."""
        self._closed = True
        await asyncio.gather(*(self.finish(s) for s in list(self._speakers)))

    async def _transcribe(self, speaker: str, queue: asyncio.Queue[Utterance | None]) -> None:
        while (utt := await queue.get()) is not None:
            try:
                segments = await self._engine.transcribe(utt.audio, speaker=speaker, offset=utt.start)
            except Exception:
                log.exception("transcription failed", extra={"speaker": speaker, "at": utt.start})
                continue
            for segment in segments:
                try:
                    await self._on_segment(segment)
                except Exception:
                    log.exception("segment callback failed", extra={"speaker": speaker, "at": segment.start})
