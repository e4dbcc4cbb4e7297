"""Streaming a visit through the real engine, 20 ms at a time, as the visits package will."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import jiwer
import pytest

from tests.transcription.audio import CLIENT, WORKER, Line, Visit, chunks, normalize
from transcription import Engine, Segment, StreamingTranscriber

TOLERANCE = 0.5  # seconds between where a line was placed and where its segments say it is


class Collector:
    """An `on_segment` callback that keeps what it is given."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.arrived = asyncio.Event()

    async def __call__(self, segment: Segment) -> None:
        self.segments.append(segment)
        self.arrived.set()

    def of(self, speaker: str) -> list[Segment]:
        return [s for s in self.segments if s.speaker == speaker]

    def text(self, speaker: str) -> str:
        return " ".join(normalize(s.text) for s in self.of(speaker))


async def stream(
    transcriber: StreamingTranscriber,
    tracks: Mapping[str, bytes],
    holes: Mapping[str, tuple[float, float]] = {},
    offset: float = 0.0,
) -> None:
    """Feed every track in 20 ms chunks, interleaved as they would arrive; skip each speaker's hole."""
    feeds = {}
    for speaker, pcm in tracks.items():
        start, end = holes.get(speaker, (-1.0, -1.0))
        feeds[speaker] = [(at, piece) for at, piece in chunks(pcm, offset=offset) if not start <= at < end]
    for i in range(max(len(f) for f in feeds.values())):
        for speaker, feed in feeds.items():
            if i < len(feed):
                await transcriber.feed(speaker, *feed[i])
        if i % 10 == 0:
            await asyncio.sleep(0)  # let delivered segments through, as a live loop would


def line_of(segment: Segment, lines: list[Line]) -> Line | None:
    """Return the line the segment lies within, give or take TOLERANCE."""
    for line in lines:
        if line.start - TOLERANCE <= segment.start and segment.end <= line.end + TOLERANCE:
            return line
    return None


async def test_a_two_speaker_visit_streams_to_an_accurate_timeline(engine: Engine, visit: Visit) -> None:
    got = Collector()
    transcriber = StreamingTranscriber(engine, got)
    # The client's connection drops while the worker talks; the rejoin carries on later in the visit.
    worker_line = visit.lines_of(WORKER)[2]
    await stream(transcriber, visit.tracks, holes={CLIENT: (worker_line.start, worker_line.end)})
    await transcriber.close()

    for speaker in (WORKER, CLIENT):
        lines = visit.lines_of(speaker)
        segments = got.of(speaker)
        reference = " ".join(normalize(line.text) for line in lines)
        error = jiwer.wer(reference, got.text(speaker))
        assert error < 0.15, (speaker, error, got.text(speaker))
        assert [s.start for s in segments] == sorted(s.start for s in segments)  # delivered in order
        for segment in segments:
            assert line_of(segment, lines) is not None, (speaker, segment)
        for line in lines:
            mine = [s for s in segments if line_of(s, [line]) is line]
            assert mine, (speaker, line)
            assert mine[0].start == pytest.approx(line.start, abs=TOLERANCE)
            assert mine[-1].end == pytest.approx(line.end, abs=TOLERANCE)
            for segment in mine:
                assert all(segment.start <= w.start <= w.end <= segment.end for w in segment.words)
    assert "evicted next month" in got.text(CLIENT)
    assert "next tuesday at ten" in got.text(WORKER)


async def test_segments_arrive_while_the_visit_runs(engine: Engine, visit: Visit) -> None:
    got = Collector()
    transcriber = StreamingTranscriber(engine, got)
    first = visit.lines_of(WORKER)[0]
    # The first line and one second of the pause after it; nobody has hung up.
    upto = round((first.end + 1.0) * 16000) * 2
    await stream(transcriber, {WORKER: visit.tracks[WORKER][:upto]})
    await asyncio.wait_for(got.arrived.wait(), timeout=30)
    assert "family services" in got.text(WORKER)
    assert got.segments[0].start == pytest.approx(first.start, abs=TOLERANCE)
    await transcriber.close()


async def test_finish_transcribes_what_was_said_last(engine: Engine, visit: Visit) -> None:
    got = Collector()
    transcriber = StreamingTranscriber(engine, got)
    last = visit.lines_of(CLIENT)[-1]
    # From just before the client's last line to the moment they stop talking, when the call ends.
    begin, end = round((last.start - 1.0) * 16000) * 2, round(last.end * 16000) * 2
    await stream(transcriber, {CLIENT: visit.tracks[CLIENT][begin:end]}, offset=last.start - 1.0)
    await asyncio.sleep(0.2)
    assert not got.segments  # no pause yet, so no utterance has ended
    await transcriber.finish(CLIENT)
    assert "see you on tuesday" in got.text(CLIENT)
    assert got.segments[0].start == pytest.approx(last.start, abs=TOLERANCE)
    assert got.segments[-1].end == pytest.approx(last.end, abs=TOLERANCE)
    await transcriber.finish(CLIENT)  # nothing left: a no-op
    await transcriber.finish("client:404")
    await transcriber.close()


async def test_silence_and_noise_stream_to_no_text(engine: Engine, no_speech: dict[str, bytes]) -> None:
    got = Collector()
    transcriber = StreamingTranscriber(engine, got)
    calls = engine.stats().calls
    await stream(transcriber, {f"client:{name}": pcm for name, pcm in no_speech.items()})
    await transcriber.close()
    assert got.segments == []
    assert engine.stats().calls > calls  # the noise bursts reached Whisper, and its guards held


async def test_a_failing_callback_does_not_stop_the_stream(
    engine: Engine, visit: Visit, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: list[Segment] = []

    async def flaky(segment: Segment) -> None:
        if not delivered:
            delivered.append(segment)
            raise RuntimeError("database is locked")
        delivered.append(segment)

    transcriber = StreamingTranscriber(engine, flaky)
    upto = round((visit.lines_of(WORKER)[1].end + 1.0) * 16000) * 2
    with caplog.at_level(logging.ERROR, logger="transcription.stream"):
        await stream(transcriber, {WORKER: visit.tracks[WORKER][:upto]})
        await transcriber.close()
    assert len(delivered) >= 2
    assert "segment callback failed" in caplog.text


async def test_a_closed_transcriber_takes_no_more_audio(engine: Engine) -> None:
    transcriber = StreamingTranscriber(engine, Collector())
    await transcriber.feed(WORKER, 0.0, bytes(640))
    await transcriber.close()
    with pytest.raises(RuntimeError, match="closed"):
        await transcriber.feed(WORKER, 0.02, bytes(640))
