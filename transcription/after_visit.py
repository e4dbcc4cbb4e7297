"""After a visit: transcribe what live transcription missed, then draft the note and file it, once.

`AfterVisit.draft` runs when a visit ends (the visits package calls it) and, for visits that ended
while the process was down, from `catch_up` when the process starts. The note's unique key per
visit and the stored segments' unique key make a repeat harmless: nothing is filed twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlmodel import Session, select

from caserecord import notes, transcripts
from caserecord.db import Database
from caserecord.models import Booking, User, Visit, VisitParticipant
from transcription.audio import SAMPLE_RATE, read_audio
from transcription.engine import Engine
from transcription.note import Drafter, VisitContext
from transcription.results import Segment, Word

log = logging.getLogger(__name__)
GAP_SECONDS = 3.0  # audio no segment covers, shorter than this, is a pause, not missed speech


class RecordedPart(Protocol):
    """One uninterrupted piece of one speaker's recorded audio (the visits package's AudioPart)."""

    @property
    def speaker(self) -> str: ...
    @property
    def offset(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def path(self) -> Path: ...


PartsOf = Callable[[int], Sequence[RecordedPart]]  # blocking: it reads the audio store


def context_and_segments(s: Session, visit_id: int) -> tuple[VisitContext, list[Segment]]:
    """Read what the drafter needs of a visit: who, when, consent, and the stored transcript."""
    visit = s.get(Visit, visit_id)
    assert visit is not None
    worker = s.get(User, visit.worker_id)
    assert worker is not None
    booking = s.get(Booking, visit.booking_id) if visit.booking_id is not None else None
    people = list(s.exec(select(VisitParticipant).where(VisitParticipant.visit_id == visit_id)))
    client = next((p for p in people if p.kind == "client"), None)
    start = visit.started_at or (booking.start_at if booking is not None else visit.created_at)
    end = visit.ended_at or start
    present = tuple(dict.fromkeys(p.name for p in people if p.admitted_at is not None))
    context = VisitContext(
        visit_start=start,
        timezone=worker.timezone,
        worker_name=worker.name,
        client_name=client.name if client is not None else "",
        duration=max(end - start, timedelta(0)),
        consent=bool(visit.recording),
        present=present or (worker.name,),
    )
    segments = []
    for row, _ in transcripts.segments(s, visit_id):
        words = tuple(Word(a, b, w, p) for a, b, w, p in json.loads(row.words))
        segments.append(Segment(row.speaker, row.start_ms / 1000, row.end_ms / 1000, row.text, words))
    return context, segments


def covered_until(s: Session, visit_id: int) -> dict[str, float]:
    """Return, per speaker label, where their stored transcript ends (seconds into the visit)."""
    ends: dict[str, float] = {}
    for row, _ in transcripts.segments(s, visit_id):
        ends[row.speaker] = max(ends.get(row.speaker, 0.0), row.end_ms / 1000)
    return ends


class AfterVisit:
    """The work that follows a visit's end, on this process's engine and drafter."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        engine: Engine | None,
        drafter: Drafter,
        parts_of: PartsOf,
    ) -> None:
        self.db = db
        self.clock = clock
        self.engine = engine
        self.drafter = drafter
        self._parts_of = parts_of
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Draft, in the background, the notes of visits that ended while the process was down."""
        self._tasks.add(asyncio.create_task(self.catch_up(), name="draft missing notes"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def catch_up(self) -> None:
        """Draft the note of every ended visit that has none."""
        for visit_id in await self.db.read(notes.visits_without_note):
            try:
                await self.draft(visit_id)
            except Exception:
                log.exception("drafting after a restart failed", extra={"visit_id": visit_id})

    async def transcribe_missing(self, visit_id: int) -> int:
        """Transcribe audio on disk that no stored segment covers (the process stopped mid-visit).

        Returns how many segments were added.
        """
        if self.engine is None:
            return 0
        parts = await asyncio.to_thread(self._parts_of, visit_id)
        covered = await self.db.read(covered_until, visit_id)
        added = 0
        for part in parts:
            done = max(covered.get(part.speaker, 0.0), part.offset)
            if part.end - done < GAP_SECONDS:
                continue
            audio = await asyncio.to_thread(read_audio, part.path)
            start_sample = int((done - part.offset) * SAMPLE_RATE)
            segments = await self.engine.transcribe(audio[start_sample:], speaker=part.speaker, offset=done)
            for seg in segments:
                words = [(w.start, w.end, w.text, w.probability) for w in seg.words]
                row = await self.db.write(
                    transcripts.add_segment, visit_id, seg.speaker, seg.start, seg.end, seg.text, words
                )
                added += row is not None
            covered[part.speaker] = part.end
        if added:
            log.info(
                "transcribed audio left from before a restart",
                extra={"visit_id": visit_id, "segments": added},
            )
        return added

    async def draft(self, visit_id: int) -> None:
        """Draft and file the note of an ended visit (once: a second call files nothing)."""
        await self.transcribe_missing(visit_id)
        context, segments = await self.db.read(context_and_segments, visit_id)
        draft = await self.drafter.draft(context, segments)
        note = await self.db.write(
            notes.file_note, visit_id, self.drafter.name, draft.to_body(), self.clock()
        )
        if note is not None:
            log.info(
                "note drafted", extra={"visit_id": visit_id, "note_id": note.id, "segments": len(segments)}
            )
