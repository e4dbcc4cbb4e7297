"""The audio store: valid WAVs while they grow, sidecars, part numbers across restarts, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.visits.audio_fixtures import header_sizes, read_wav
from visits.audio import SAMPLE_RATE, AudioStore

STARTED = datetime(2026, 3, 2, 17, 0, 5, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AudioStore]:
    s = AudioStore(tmp_path / "audio")
    yield s
    s.close()


def tone(seconds: float, amplitude: int = 8000) -> bytes:
    """A square wave at 400 Hz: loud enough to tell from silence."""
    n = int(seconds * SAMPLE_RATE)
    return array("h", (amplitude if (i // 20) % 2 else -amplitude for i in range(n))).tobytes()


async def test_part_is_a_valid_wav_at_every_flush_and_is_listed(store: AudioStore) -> None:
    writer = await store.open_part(7, 3, "client", offset=12.5, started_at=STARTED)
    path = writer.part.path
    assert path == store.root / "7" / "3-1.wav"
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar == {
        "visit_id": 7,
        "participant_id": 3,
        "speaker": "client",
        "part": 1,
        "offset": 12.5,
        "started_at": "2026-03-02T17:00:05+00:00",
        "sample_rate": 16000,
        "samples": 0,
        "filled_samples": 0,
        "finished": False,
        "wav": "3-1.wav",
    }
    assert read_wav(path).duration == 0

    for _ in range(6):  # 1.2 s in 20 ms chunks: two flushes of 0.5 s
        for _ in range(10):
            await writer.write(tone(0.02))
        riff, data, size = header_sizes(path)
        assert riff == data + 36 and size == 44 + data, "the header must match the file after each flush"
    assert read_wav(path).duration == 1.0
    await writer.write_silence(SAMPLE_RATE // 4)

    listed = store.parts(7)
    assert [(p.part, p.samples, p.finished) for p in listed] == [(1, 16000, False)], "from the header"

    part = await writer.close()
    assert part.samples == int(1.45 * SAMPLE_RATE) and part.filled_samples == SAMPLE_RATE // 4
    assert part.finished and part.end == 12.5 + 1.45
    pcm = read_wav(path)
    assert (pcm.rate, pcm.channels, pcm.duration) == (16000, 1, 1.45)
    assert pcm.rms(0, 1.2) > 7000 and pcm.rms(1.2, 1.45) == 0
    assert store.parts(7) == [part]
    assert json.loads(part.sidecar.read_text())["finished"] is True
    assert store.parts(8) == []


async def test_parts_are_numbered_per_participant_and_across_a_restart(tmp_path: Path) -> None:
    first = AudioStore(tmp_path)
    try:
        for participant in (3, 3, 4):
            w = await first.open_part(
                7, participant, "worker" if participant == 4 else "client", offset=1.0, started_at=STARTED
            )
            await w.write(tone(0.1))
            await w.close()
    finally:
        first.close()
    restarted = AudioStore(tmp_path)
    try:
        assert [(p.participant_id, p.part) for p in restarted.parts(7)] == [(3, 1), (3, 2), (4, 1)]
        w = await restarted.open_part(7, 3, "client", offset=9.0, started_at=STARTED)
        assert w.part.path.name == "3-3.wav"
        await w.close()
        assert [p.part for p in restarted.parts(7) if p.participant_id == 3] == [1, 2, 3]
    finally:
        restarted.close()


KILLED_WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from visits.audio import AudioStore

    async def main() -> None:
        store = AudioStore(Path(sys.argv[1]), flush_seconds=0.1)
        writer = await store.open_part(9, 1, "client", offset=3.0, started_at=datetime.now(UTC))
        chunk = (b"\\x00\\x10" * 320)
        for i in range(1, 10_000):
            await writer.write(chunk)
            if i == 100:  # 2 s written, 1.9 s at least flushed: tell the test, keep writing
                print(writer.samples, flush=True)
            await asyncio.sleep(0.001)

    asyncio.run(main())
    """
)


def test_kill_9_leaves_a_valid_wav_with_what_was_flushed(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    ) as proc:
        try:
            assert proc.stdout is not None
            written = int(proc.stdout.readline())
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    path = tmp_path / "9" / "1-1.wav"
    riff, data, size = header_sizes(path)
    assert riff == data + 36 and 44 + data <= size
    pcm = read_wav(path)
    assert pcm.rate == 16000 and len(pcm.samples) >= written - 0.1 * SAMPLE_RATE
    assert set(pcm.samples) == {0x1000}, "every sample the header claims was written"
    after_crash = AudioStore(tmp_path)
    try:
        (part,) = after_crash.parts(9)
    finally:
        after_crash.close()
    assert not part.finished and part.samples == len(pcm.samples) and part.offset == 3.0
