"""The per-speaker audio store: 16 kHz mono 16-bit WAV parts that stay valid while they grow.

Layout: `<root>/<visit_id>/<participant_id>-<part>.wav` plus a JSON sidecar of the same name.
Every flush appends the buffered PCM and then rewrites the 44-byte header in one `pwrite`, so the
header never claims more data than the file holds: a process killed at any moment (even `kill -9`)
leaves a valid WAV with everything flushed up to then (flushes go straight to the kernel; only a
part's end is fsynced, so a power cut can lose what the OS had not yet written back). All file work
runs on one writer thread per store, which keeps each file's writes in order and the event loop free
of disk waits; the loop itself only appends each 20 ms frame (640 bytes) to a buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
SAMPLE_WIDTH = 2
HEADER_BYTES = 44
P = ParamSpec("P")
T = TypeVar("T")

_PART_NAME = re.compile(r"^(\d+)-(\d+)\.(?:wav|json)$")
_SILENCE_CHUNK = bytes(SAMPLE_RATE * SAMPLE_WIDTH)


def wav_header(data_bytes: int) -> bytes:
    """Return the 44-byte header of a 16 kHz mono s16 WAV holding `data_bytes` of PCM."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        SAMPLE_RATE,
        SAMPLE_RATE * SAMPLE_WIDTH,
        SAMPLE_WIDTH,
        8 * SAMPLE_WIDTH,
        b"data",
        data_bytes,
    )


def wav_data_bytes(path: Path) -> int:
    """Return how many PCM bytes the header of a store-written WAV declares (0 if unreadable)."""
    try:
        with path.open("rb") as f:
            header = f.read(HEADER_BYTES)
    except OSError:
        return 0
    if len(header) < HEADER_BYTES or header[:4] != b"RIFF" or header[36:40] != b"data":
        return 0
    (size,) = struct.unpack_from("<I", header, 40)
    return int(size)


@dataclass(frozen=True)
class AudioPart:
    """One uninterrupted piece of one speaker's audio in a visit."""

    visit_id: int
    participant_id: int
    speaker: str
    part: int
    offset: float
    """Seconds from the visit's start to the part's first sample."""
    started_at: datetime
    samples: int
    filled_samples: int
    """Of `samples`, how many are silence written for packets that never arrived."""
    finished: bool
    path: Path

    @property
    def duration(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def end(self) -> float:
        """Seconds from the visit's start to the part's last sample."""
        return self.offset + self.duration

    @property
    def sidecar(self) -> Path:
        return self.path.with_suffix(".json")

    def to_json(self) -> dict[str, Any]:
        return {
            "visit_id": self.visit_id,
            "participant_id": self.participant_id,
            "speaker": self.speaker,
            "part": self.part,
            "offset": self.offset,
            "started_at": self.started_at.isoformat(),
            "sample_rate": SAMPLE_RATE,
            "samples": self.samples,
            "filled_samples": self.filled_samples,
            "finished": self.finished,
            "wav": self.path.name,
        }

    @classmethod
    def from_sidecar(cls, sidecar: Path) -> AudioPart:
        """Read a part back from its sidecar; an unfinished part's length comes from its WAV header."""
        data = json.loads(sidecar.read_text())
        path = sidecar.with_name(str(data["wav"]))
        finished = bool(data["finished"])
        samples = int(data["samples"]) if finished else wav_data_bytes(path) // SAMPLE_WIDTH
        return cls(
            visit_id=int(data["visit_id"]),
            participant_id=int(data["participant_id"]),
            speaker=str(data["speaker"]),
            part=int(data["part"]),
            offset=float(data["offset"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            samples=samples,
            filled_samples=int(data.get("filled_samples", 0)),
            finished=finished,
            path=path,
        )


def _write_sidecar(part: AudioPart) -> None:
    tmp = part.sidecar.with_suffix(".json.tmp")
    with tmp.open("w") as f:
        json.dump(part.to_json(), f, indent=2)
        f.flush()
        os.fsync(f.fileno())  # rare (part start and end): worth surviving a power cut too
    os.replace(tmp, part.sidecar)


class _WavFile:
    """An open WAV being appended to; touched only on the store's writer thread."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self.data_bytes = 0
        self._pwrite_all(wav_header(0), 0)

    def append(self, pcm: bytes) -> None:
        self._pwrite_all(pcm, HEADER_BYTES + self.data_bytes)
        self.data_bytes += len(pcm)
        # Data first, header second: the header never claims bytes the file does not hold.
        self._pwrite_all(wav_header(self.data_bytes), 0)

    def close(self) -> None:
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)

    def _pwrite_all(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, offset)
            view = view[n:]
            offset += n


class PartWriter:
    """Appends one part's PCM, flushing to disk every `flush_seconds` of audio."""

    def __init__(self, store: AudioStore, part: AudioPart, wav: _WavFile) -> None:
        self._store = store
        self._part = part
        self._wav = wav
        self._pending = bytearray()
        self._samples = 0
        self._filled = 0
        self._closed = False

    @property
    def part(self) -> AudioPart:
        """The part as it stands, counting samples not flushed yet."""
        return replace(self._part, samples=self._samples, filled_samples=self._filled)

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def offset(self) -> float:
        return self._part.offset

    async def write(self, pcm: bytes) -> None:
        """Append 16 kHz mono s16 PCM."""
        if self._closed:
            raise RuntimeError(f"part {self._part.path.name} is closed")
        if len(pcm) % SAMPLE_WIDTH:
            raise ValueError("PCM must hold whole 16-bit samples")
        self._pending += pcm
        self._samples += len(pcm) // SAMPLE_WIDTH
        if len(self._pending) >= self._store.flush_bytes:
            await self.flush()

    async def write_silence(self, samples: int) -> None:
        """Append `samples` of silence standing in for audio that never arrived."""
        samples = max(0, samples)
        self._filled += samples
        while samples > 0:
            n = min(samples, SAMPLE_RATE)
            await self.write(_SILENCE_CHUNK[: n * SAMPLE_WIDTH])
            samples -= n

    async def flush(self) -> None:
        """Put everything written so far on disk (in the kernel: it survives the process)."""
        if not self._pending:
            return
        chunk = bytes(self._pending)
        self._pending.clear()
        # The file state changes only inside the job, so a cancelled await still leaves it right.
        await self._store.run(self._wav.append, chunk)

    async def close(self) -> AudioPart:
        """Flush, close the file and mark the part finished in its sidecar."""
        if self._closed:
            return self._part
        self._closed = True
        chunk = bytes(self._pending)
        self._pending.clear()
        self._part = replace(self.part, finished=True)
        await self._store.run(self._finish, chunk, self._part)
        return self._part

    def _finish(self, chunk: bytes, part: AudioPart) -> None:
        try:
            if chunk:
                self._wav.append(chunk)
        finally:
            self._wav.close()
            _write_sidecar(part)


class AudioStore:
    """Writes and lists the audio parts of visits under `root`."""

    def __init__(self, root: Path, *, flush_seconds: float = 0.5) -> None:
        self.root = root
        self.flush_bytes = max(SAMPLE_WIDTH, int(flush_seconds * SAMPLE_RATE) * SAMPLE_WIDTH)
        # One thread: writes to one file stay in order, and 40 uplinks flush only ~80 times a second.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audio-store")

    def visit_dir(self, visit_id: int) -> Path:
        return self.root / str(int(visit_id))

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` on the store's writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def open_part(
        self, visit_id: int, participant_id: int, speaker: str, *, offset: float, started_at: datetime
    ) -> PartWriter:
        """Start the participant's next part (numbered after any already on disk) and write its sidecar."""
        part, wav = await self.run(
            self._create, int(visit_id), int(participant_id), speaker, offset, started_at
        )
        log.info(
            "audio part started",
            extra={"visit_id": visit_id, "participant_id": participant_id, "part": part.part},
        )
        return PartWriter(self, part, wav)

    def _create(
        self, visit_id: int, participant_id: int, speaker: str, offset: float, started_at: datetime
    ) -> tuple[AudioPart, _WavFile]:
        folder = self.visit_dir(visit_id)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Number from what is on disk, so a restarted process carries on after the parts it finds.
        number = max((n for p, n in _part_numbers(folder) if p == participant_id), default=0) + 1
        while True:
            path = folder / f"{participant_id}-{number}.wav"
            try:
                wav = _WavFile(path)
            except FileExistsError:
                number += 1  # created by another process since we looked
                continue
            break
        part = AudioPart(
            visit_id=visit_id,
            participant_id=participant_id,
            speaker=speaker,
            part=number,
            offset=offset,
            started_at=started_at,
            samples=0,
            filled_samples=0,
            finished=False,
            path=path,
        )
        _write_sidecar(part)
        return part, wav

    def parts(self, visit_id: int) -> list[AudioPart]:
        """List a visit's parts from the sidecars on disk, by participant and part (blocking: small reads)."""
        folder = self.visit_dir(visit_id)
        found: list[AudioPart] = []
        for sidecar in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if not _PART_NAME.match(sidecar.name):
                continue
            try:
                found.append(AudioPart.from_sidecar(sidecar))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("unreadable audio sidecar", extra={"path": str(sidecar), "error": str(exc)})
        return sorted(found, key=lambda p: (p.participant_id, p.part))

    def part_file(self, visit_id: int, participant_id: int, part: int) -> Path:
        """Return where one part's WAV is (or was)."""
        return self.visit_dir(visit_id) / f"{int(participant_id)}-{int(part)}.wav"

    def delete_visit(self, visit_id: int) -> list[str]:
        """Delete every part of a visit (WAVs and sidecars); return the names deleted (blocking)."""
        folder = self.visit_dir(visit_id)
        if not folder.is_dir():
            return []
        gone = []
        for path in sorted(folder.iterdir()):
            if _PART_NAME.match(path.name):
                path.unlink(missing_ok=True)
                gone.append(path.name)
        with contextlib.suppress(OSError):
            folder.rmdir()
        return gone

    def close(self) -> None:
        """Wait for pending writes and stop the writer thread."""
        self._executor.shutdown(wait=True)


def _part_numbers(folder: Path) -> list[tuple[int, int]]:
    numbers = []
    for entry in folder.iterdir():
        m = _PART_NAME.match(entry.name)
        if m:
            numbers.append((int(m.group(1)), int(m.group(2))))
    return numbers
