"""Visit notes on the web: drafted once when a visit ends, then edited, signed and reviewed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints
from sqlmodel import Session, select

from caserecord import notes, transcripts
from caserecord.audit import Actor
from caserecord.errors import Conflict, Forbidden
from caserecord.models import Booking, Note, User, Visit, VisitParticipant
from caserecord.note_body import (
    ActionItemBody,
    FollowUpBody,
    HeaderBody,
    NoteEdit,
    QuoteBody,
    RiskFlagBody,
    SummaryBody,
)
from scheduler import bookings, hours
from scheduler.rules import Slot
from transcription import SAMPLE_RATE, Drafter, Segment, VisitContext, Word, read_audio
from visits import lifecycle
from web import schemas as S
from web.api import api, booking_out, slot_out, zone_of
from web.live import client_names, notify_team, user_names
from web.routing import Call, json_response
from web.runtime import RUNTIME, Runtime

log = logging.getLogger(__name__)
DRAFTER = web.AppKey("drafter", Drafter)
_TASKS = web.AppKey("note_tasks", set[asyncio.Task[None]])


def _context_and_segments(s: Session, visit_id: int) -> tuple[VisitContext, list[Segment]]:
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


GAP_SECONDS = 3.0


def _covered_until(s: Session, visit_id: int) -> dict[str, float]:
    """Return, per speaker label, where their stored transcript ends (seconds into the visit)."""
    ends: dict[str, float] = {}
    for row, _ in transcripts.segments(s, visit_id):
        ends[row.speaker] = max(ends.get(row.speaker, 0.0), row.end_ms / 1000)
    return ends


async def transcribe_what_is_missing(app: web.Application, visit_id: int) -> int:
    """Transcribe audio on disk that no stored segment covers (the process stopped mid-visit).

    Returns how many segments were added. The stored segments' unique key makes a repeat harmless.
    """
    from web.visits import VISITS  # visits installs the audio store and the engine

    services = app[VISITS]
    engine = services.engine
    if engine is None:
        return 0
    rt = app[RUNTIME]
    parts = await asyncio.to_thread(services.store.parts, visit_id)
    covered = await rt.db.read(_covered_until, visit_id)
    added = 0
    for part in parts:
        done = max(covered.get(part.speaker, 0.0), part.offset)
        if part.end - done < GAP_SECONDS:
            continue
        audio = await asyncio.to_thread(read_audio, part.path)
        start_sample = int((done - part.offset) * SAMPLE_RATE)
        segments = await engine.transcribe(audio[start_sample:], speaker=part.speaker, offset=done)
        for seg in segments:
            words = [(w.start, w.end, w.text, w.probability) for w in seg.words]
            row = await rt.db.write(
                transcripts.add_segment, visit_id, seg.speaker, seg.start, seg.end, seg.text, words
            )
            added += row is not None
        covered[part.speaker] = part.end
    if added:
        log.info(
            "transcribed audio left from before a restart", extra={"visit_id": visit_id, "segments": added}
        )
    return added


async def draft_visit_note(app: web.Application, visit_id: int) -> None:
    """Draft and file the note of an ended visit (once: a second call files nothing)."""
    rt = app[RUNTIME]
    await transcribe_what_is_missing(app, visit_id)
    context, segments = await rt.db.read(_context_and_segments, visit_id)
    drafter = app[DRAFTER]
    draft = await drafter.draft(context, segments)
    note = await rt.db.write(notes.file_note, visit_id, drafter.name, draft.to_body(), rt.clock())
    if note is not None:
        log.info("note drafted", extra={"visit_id": visit_id, "note_id": note.id, "segments": len(segments)})


def _delete_audio(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    gone = []
    for path in sorted(folder.iterdir()):
        if path.suffix in (".wav", ".json"):
            path.unlink(missing_ok=True)
            gone.append(path.name)
    with contextlib.suppress(OSError):
        folder.rmdir()
    return gone


async def enforce_retention(app: web.Application) -> int:
    """Delete the audio of signed notes past the agency's retention; return how many visits."""
    rt = app[RUNTIME]
    keep = timedelta(days=rt.settings.audio_retention_days)
    now = rt.clock()
    due = await rt.db.read(notes.audio_due, now, keep)
    for note in due:
        assert note.id is not None
        files = await asyncio.to_thread(_delete_audio, rt.settings.data_dir / "audio" / str(note.visit_id))
        await rt.db.write(notes.record_audio_deleted, note.id, files, now)
        log.info("audio deleted", extra={"visit_id": note.visit_id, "note_id": note.id, "files": len(files)})
    return len(due)


def notes_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: choose the drafter; draft notes of visits that ended before a restart."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[DRAFTER] = app[RUNTIME].settings.drafter()
        tasks: set[asyncio.Task[None]] = set()
        app[_TASKS] = tasks

        async def catch_up() -> None:
            rt = app[RUNTIME]
            # Visits the server was holding when it stopped: end those whose time has passed.
            for visit_id in await rt.db.write(lifecycle.end_stale, rt.clock()):
                log.info("visit ended after a restart", extra={"visit_id": visit_id})
            # Calls cut off within their time: if nobody comes back, they end as any call all left.
            from web.visits import VISITS

            for visit_id in await rt.db.read(lifecycle.calls_in_progress):
                app[VISITS].hub.watch(visit_id)
            for visit_id in await rt.db.read(notes.visits_without_note):
                try:
                    await draft_visit_note(app, visit_id)
                except Exception:
                    log.exception("drafting after a restart failed", extra={"visit_id": visit_id})

        async def retention_daily() -> None:
            while True:
                try:
                    await enforce_retention(app)
                except Exception:
                    log.exception("enforcing audio retention failed")
                await asyncio.sleep(24 * 3600)

        tasks.add(asyncio.create_task(catch_up(), name="draft missing notes"))
        tasks.add(asyncio.create_task(retention_daily(), name="audio retention"))
        yield
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return ctx(app)


class AddendumOut(BaseModel):
    id: int
    author_id: int
    author: str
    text: str
    created_at: datetime


class RevisionOut(BaseModel):
    version: int
    author_id: int | None
    author: str
    sections: list[str]
    created_at: datetime
    body: dict[str, Any]


class HistoryOut(BaseModel):
    revisions: list[RevisionOut]
    addenda: list[AddendumOut]


class SectionsOut(BaseModel):
    client_words: list[QuoteBody]
    follow_up: FollowUpBody | None
    observations: str | None
    analysis: str | None
    remarks: list[str]


class NoteOut(BaseModel):
    id: int
    visit_id: int
    case_id: int
    status: str
    version: int
    generated: bool
    drafter: str
    header: HeaderBody
    summary: SummaryBody
    sections: SectionsOut
    action_items: list[ActionItemBody]
    risk_flags: list[RiskFlagBody]
    transcript: list[QuoteBody]
    signed_at: datetime | None
    reviewed_at: datetime | None
    review_comment: str | None
    audio_deleted_at: datetime | None = None
    audio_deleted: list[str] = []
    addenda: list[AddendumOut] = []
    follow_up_booking_id: int | None = None


def _note_by_id(s: Session, note_id: int) -> Note:
    note = s.get(Note, note_id)
    assert note is not None
    return note


def addenda_out(s: Session, note_id: int) -> list[AddendumOut]:
    rows = notes.addenda(s, note_id)
    names = user_names(s, {a.author_id for a in rows})
    return [
        AddendumOut(
            id=a.id or 0,
            author_id=a.author_id,
            author=names.get(a.author_id, ""),
            text=a.text,
            created_at=a.created_at,
        )
        for a in rows
    ]


def history_out(s: Session, note_id: int) -> HistoryOut:
    rows = notes.revisions(s, note_id)
    names = user_names(s, {r.author_id for r in rows if r.author_id is not None})
    return HistoryOut(
        revisions=[
            RevisionOut(
                version=r.version,
                author_id=r.author_id,
                author=names.get(r.author_id, "") if r.author_id is not None else "drafter",
                sections=json.loads(r.sections),
                created_at=r.created_at,
                body=json.loads(r.body),
            )
            for r in rows
        ],
        addenda=addenda_out(s, note_id),
    )


def note_out(note: Note, addenda: list[AddendumOut] | None = None) -> NoteOut:
    body = notes.body_of(note)
    assert note.id is not None
    return NoteOut(
        addenda=addenda or [],
        follow_up_booking_id=note.follow_up_booking_id,
        id=note.id,
        visit_id=note.visit_id,
        case_id=note.case_id,
        status=note.status,
        version=note.version,
        generated=body.generated,
        drafter=note.drafter,
        header=body.header,
        summary=body.summary,
        sections=SectionsOut(
            client_words=body.client_words,
            follow_up=body.follow_up,
            observations=body.observations,
            analysis=body.analysis,
            remarks=body.remarks,
        ),
        action_items=body.action_items,
        risk_flags=body.risk_flags,
        transcript=body.transcript,
        signed_at=note.signed_at,
        reviewed_at=note.reviewed_at,
        review_comment=note.review_comment,
        audio_deleted_at=note.audio_deleted_at,
        audio_deleted=json.loads(note.audio_deleted) if note.audio_deleted else [],
    )


class NotePatch(S.In, NoteEdit):
    version: Annotated[int, Field(ge=1, le=2**31 - 1, description="The version you edited (from GET)")]

    def edit(self) -> NoteEdit:
        """Return the sections this patch changes (those it names)."""
        return NoteEdit.model_validate({k: getattr(self, k) for k in self.model_fields_set - {"version"}})


class ReviewIn(S.In):
    comment: Annotated[str, StringConstraints(max_length=2000)] = ""


STAFF = ("admin", "supervisor", "worker")


@api.add(
    "GET",
    "/api/visits/{visit_id}/note",
    summary="The visit's note (drafted when the visit ends)",
    roles=STAFF,
    response=NoteOut,
    tag="notes",
)
async def get_note(call: Call) -> web.StreamResponse:
    def run(s: Session) -> NoteOut:
        note = notes.read_note(s, call.actor, call.path["visit_id"])
        return note_out(note, addenda_out(s, note.id or 0))

    return json_response(await call.rt.db.write(run))


@api.add(
    "PATCH",
    "/api/notes/{note_id}",
    summary="Edit a draft note's sections",
    roles=("admin", "worker"),
    body=NotePatch,
    response=NoteOut,
    errors=(409,),
    tag="notes",
)
async def patch_note(call: Call) -> web.StreamResponse:
    body: NotePatch = call.body
    edit = body.edit()
    note = await call.rt.db.write(
        notes.update_note, call.actor, call.path["note_id"], edit, body.version, call.rt.clock()
    )
    if "risk_flags" in edit.sections():
        await notify_team(call.request.app, note.worker_id, "risk")
    return json_response(note_out(note))


@api.add(
    "POST",
    "/api/notes/{note_id}/sign",
    summary="Sign a note (no edits in place afterwards)",
    roles=("admin", "worker"),
    response=NoteOut,
    errors=(409,),
    tag="notes",
)
async def sign_note(call: Call) -> web.StreamResponse:
    note = await call.rt.db.write(notes.sign_note, call.actor, call.path["note_id"], call.rt.clock())
    if call.rt.settings.audio_retention_days == 0:
        await enforce_retention(call.request.app)  # audio goes when the note is signed
        note = await call.rt.db.read(_note_by_id, note.id or 0)
    return json_response(note_out(note))


@api.add(
    "POST",
    "/api/notes/{note_id}/approve",
    summary="Approve a signed note",
    roles=("admin", "supervisor"),
    body=ReviewIn,
    response=NoteOut,
    errors=(409,),
    tag="notes",
)
async def approve_note(call: Call) -> web.StreamResponse:
    note = await call.rt.db.write(
        notes.review_note, call.actor, call.path["note_id"], True, call.body.comment, call.rt.clock()
    )
    return json_response(note_out(note))


@api.add(
    "POST",
    "/api/notes/{note_id}/return",
    summary="Return a signed note to the worker with a comment",
    roles=("admin", "supervisor"),
    body=ReviewIn,
    response=NoteOut,
    errors=(409,),
    tag="notes",
)
async def return_note(call: Call) -> web.StreamResponse:
    note = await call.rt.db.write(
        notes.review_note, call.actor, call.path["note_id"], False, call.body.comment, call.rt.clock()
    )
    return json_response(note_out(note))


class NoteRowOut(BaseModel):
    id: int
    visit_id: int
    case_id: int
    worker_id: int
    worker_name: str
    client_name: str
    status: str
    date: str
    confirmed_flags: list[str]
    confirmed_labels: list[str]
    signed_at: datetime | None
    reviewed_at: datetime | None


def note_rows(s: Session, actor: Actor, statuses: tuple[str, ...], limit: int) -> list[NoteRowOut]:
    """The notes in `actor`'s caseload with one of `statuses`, newest first, as list rows (audited)."""
    found = notes.list_notes(s, actor, statuses, limit)
    clients = client_names(s, {n.case_id for n in found})
    workers = user_names(s, {n.worker_id for n in found})
    rows = []
    for n in found:
        body = notes.body_of(n)
        confirmed = body.confirmed_flags()
        rows.append(
            NoteRowOut(
                id=n.id or 0,
                visit_id=n.visit_id,
                case_id=n.case_id,
                worker_id=n.worker_id,
                worker_name=workers.get(n.worker_id, ""),
                client_name=clients.get(n.case_id, ""),
                status=n.status,
                date=body.header.date,
                confirmed_flags=[f.category for f in confirmed],
                confirmed_labels=[f.label or f.category for f in confirmed],
                signed_at=n.signed_at,
                reviewed_at=n.reviewed_at,
            )
        )
    return rows


class NotesQuery(BaseModel):
    model_config = {"extra": "forbid"}
    status: Literal["draft", "signed", "approved", "returned", "all"] = "all"


@api.add(
    "GET",
    "/api/notes",
    summary="The notes of the caller's caseload (a supervisor: the team's), newest first",
    roles=STAFF,
    query=NotesQuery,
    response=NoteRowOut,
    many=True,
    tag="notes",
)
async def list_notes(call: Call) -> web.StreamResponse:
    status = call.query.status
    statuses = notes.NOTE_STATUSES if status == "all" else (status,)

    def run(s: Session) -> list[NoteRowOut]:
        return note_rows(s, call.actor, statuses, limit=200)

    return json_response(await call.rt.db.write(run))


@api.add(
    "GET",
    "/api/notes/{note_id}/history",
    summary="Every saved version of a note and its addenda",
    roles=STAFF,
    response=HistoryOut,
    tag="notes",
)
async def get_history(call: Call) -> web.StreamResponse:
    def run(s: Session) -> HistoryOut:
        note = notes.read_note_by_id(s, call.actor, call.path["note_id"])
        return history_out(s, note.id or 0)

    return json_response(await call.rt.db.write(run))


class AddendumIn(S.In):
    text: Annotated[str, StringConstraints(min_length=1, max_length=notes.MAX_ADDENDUM)]


@api.add(
    "POST",
    "/api/notes/{note_id}/addenda",
    summary="Add an addendum to a signed note (the signed text is never edited)",
    roles=STAFF,
    body=AddendumIn,
    response=AddendumOut,
    status=201,
    errors=(409,),
    tag="notes",
)
async def add_addendum(call: Call) -> web.StreamResponse:
    def run(s: Session) -> AddendumOut:
        added = notes.add_addendum(s, call.actor, call.path["note_id"], call.body.text, call.rt.clock())
        return next(a for a in addenda_out(s, added.note_id) if a.id == added.id)

    return json_response(await call.rt.db.write(run), 201)


def suggest_follow_up(s: Session, actor: Actor, note: Note, now: datetime) -> Slot | None:
    """The free slot of the worker's office hours nearest to the follow-up the visit mentioned."""
    follow_up = notes.body_of(note).follow_up
    if follow_up is None:
        return None
    raw = follow_up.start
    worker = s.get(User, note.worker_id)
    zone = ZoneInfo(worker.timezone if worker is not None else "UTC")
    try:
        at: datetime | None = datetime.fromisoformat(raw) if "T" in raw else None
        day = at.astimezone(zone).date() if at is not None and at.tzinfo else date.fromisoformat(raw[:10])
    except ValueError:
        return None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=zone)
    first = max(day, now.astimezone(zone).date())
    _, slots = hours.worker_slots(s, actor, note.worker_id, first, first + timedelta(days=13), now)
    free = [x for x in slots if x.available and x.mode == "booked"]
    if at is not None:
        return next((x for x in free if x.start >= at), None)
    return free[0] if free else None


class FollowUpOut(BaseModel):
    suggested: S.SlotOut | None
    when_text: str | None
    booking: S.BookingOut | None


def follow_up_view(s: Session, actor: Actor, note: Note, rt: Runtime) -> FollowUpOut:
    booking = s.get(Booking, note.follow_up_booking_id) if note.follow_up_booking_id else None
    if booking is not None and booking.status == "booked":
        visit = s.exec(select(Visit).where(Visit.booking_id == booking.id)).first()
        zone = zone_of(s, note.worker_id)
        return FollowUpOut(suggested=None, when_text=None, booking=booking_out(booking, visit, zone, rt))
    follow_up = notes.body_of(note).follow_up
    slot = suggest_follow_up(s, actor, note, rt.clock())
    return FollowUpOut(
        suggested=slot_out(slot) if slot is not None else None,
        when_text=follow_up.when_text if follow_up else None,
        booking=None,
    )


@api.add(
    "GET",
    "/api/notes/{note_id}/follow-up",
    summary="The follow-up visit suggested by the note: a free slot to book, or the booking made",
    roles=STAFF,
    response=FollowUpOut,
    tag="notes",
)
async def get_follow_up(call: Call) -> web.StreamResponse:
    def run(s: Session) -> FollowUpOut:
        note = notes.read_note_by_id(s, call.actor, call.path["note_id"])
        return follow_up_view(s, call.actor, note, call.rt)

    return json_response(await call.rt.db.write(run))


class FollowUpIn(S.In):
    start: datetime = Field(description="The suggested slot's start (from GET .../follow-up)")


def book_follow_up(s: Session, actor: Actor, note_id: int, start: datetime, rt: Runtime) -> S.BookingOut:
    """Book the follow-up visit for the note's case in one step; a note books one follow-up."""
    note = notes.read_note_by_id(s, actor, note_id)
    if actor.role == "worker" and actor.user_id != note.worker_id:
        raise Forbidden("only the visit's worker books its follow-up")
    if note.follow_up_booking_id is not None:
        old = s.get(Booking, note.follow_up_booking_id)
        if old is not None and old.status == "booked":
            raise Conflict(f"the follow-up is already booked (booking {old.id})")
    now = rt.clock()
    booking, visit = bookings.book(s, actor, note.worker_id, note.case_id, start, now, rt.join_policy)
    assert booking.id is not None
    notes.record_follow_up(s, actor, note_id, booking.id, now)
    zone = zone_of(s, note.worker_id)
    return booking_out(booking, visit, zone, rt)


@api.add(
    "POST",
    "/api/notes/{note_id}/follow-up",
    summary="Book the suggested follow-up visit (one click)",
    roles=("admin", "worker"),
    body=FollowUpIn,
    response=S.BookingOut,
    status=201,
    errors=(409,),
    tag="notes",
)
async def post_follow_up(call: Call) -> web.StreamResponse:
    out = await call.rt.db.write(book_follow_up, call.actor, call.path["note_id"], call.body.start, call.rt)
    return json_response(out, 201)


def install_notes(app: web.Application) -> None:
    """Start the drafter (and its catch-up after a restart)."""
    app.cleanup_ctx.append(notes_ctx)
