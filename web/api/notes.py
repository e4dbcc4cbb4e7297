"""Visit notes: read the draft, edit it, sign it, review it, its history, addenda and follow-up."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session

from caserecord import note_lists, notes
from caserecord.audit import Actor
from caserecord.models import Note
from caserecord.note_body import (
    ActionItemBody,
    FollowUpBody,
    HeaderBody,
    NoteBody,
    NoteEdit,
    QuoteBody,
    RiskFlagBody,
    SummaryBody,
)
from caserecord.note_lists import AddendumOut, HistoryOut, NoteRowOut
from scheduler import follow_up
from scheduler.bookings import worker_zone
from scheduler.follow_up import FollowUp
from scheduler.links import Links
from web.api.common import REVIEWERS, STAFF, WRITERS, BookingOut, In, SlotOut, booking_out, slot_out
from web.routing import Call, Routes, json_response

routes = Routes("notes")


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


class NotePatch(In, NoteEdit):
    version: Annotated[int, Field(ge=1, le=2**31 - 1, description="The version you edited (from GET)")]

    def edit(self) -> NoteEdit:
        """Return the sections this patch changes (those it names)."""
        return NoteEdit.model_validate({k: getattr(self, k) for k in self.model_fields_set - {"version"}})


class ReviewIn(In):
    comment: Annotated[str, StringConstraints(max_length=2000)] = ""


class NotesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["draft", "signed", "approved", "returned", "all"] = "all"


class AddendumIn(In):
    text: Annotated[str, StringConstraints(min_length=1, max_length=notes.MAX_ADDENDUM)]


class FollowUpOut(BaseModel):
    suggested: SlotOut | None
    when_text: str | None
    booking: BookingOut | None


class FollowUpIn(In):
    start: datetime = Field(description="The suggested slot's start (from GET .../follow-up)")


def note_out(note: Note, addenda: list[AddendumOut] | None = None) -> NoteOut:
    body = notes.body_of(note)
    # The note's own drafter (the one that ran) wins over the body's.
    shared = (NoteOut.model_fields.keys() & NoteBody.model_fields.keys()) - {"drafter"}
    shown = {name: getattr(body, name) for name in shared}
    sections = {name: getattr(body, name) for name in SectionsOut.model_fields}
    deleted = json.loads(note.audio_deleted) if note.audio_deleted else []
    return NoteOut.model_validate(
        note.model_dump() | shown | {"sections": sections, "audio_deleted": deleted, "addenda": addenda or []}
    )


def follow_up_out(found: FollowUp, links: Links) -> FollowUpOut:
    if found.booking is not None:
        return FollowUpOut(
            suggested=None, when_text=None, booking=booking_out(found.booking, found.visit, found.zone, links)
        )
    suggested = slot_out(found.suggested) if found.suggested is not None else None
    return FollowUpOut(suggested=suggested, when_text=found.when_text, booking=None)


@routes.get("/api/visits/{visit_id}/note", STAFF, NoteOut)
async def get_note(call: Call[None, None]) -> web.StreamResponse:
    """The visit's note (drafted when the visit ends)."""

    def run(s: Session) -> NoteOut:
        note = notes.read_note(s, call.actor, call.path["visit_id"])
        return note_out(note, note_lists.addenda(s, note.id or 0))

    return json_response(await call.svc.db.write(run))


@routes.patch("/api/notes/{note_id}", WRITERS, NoteOut, errors=(409,))
async def patch_note(call: Call[NotePatch, None]) -> web.StreamResponse:
    """Edit a draft note's sections."""
    edit = call.body.edit()
    note = await call.svc.db.write(
        notes.update_note, call.actor, call.path["note_id"], edit, call.body.version, call.svc.clock()
    )
    if "risk_flags" in edit.sections():
        await call.svc.feeds.team(note.worker_id, "risk")
    return json_response(note_out(note))


@routes.post("/api/notes/{note_id}/sign", WRITERS, NoteOut, errors=(409,))
async def sign_note(call: Call[None, None]) -> web.StreamResponse:
    """Sign a note (no edits in place afterwards)."""
    return json_response(note_out(await call.svc.visits.sign_note(call.actor, call.path["note_id"])))


async def _review(call: Call[ReviewIn, None], approve: bool) -> web.StreamResponse:
    note_id, comment = call.path["note_id"], call.body.comment
    note = await call.svc.db.write(notes.review_note, call.actor, note_id, approve, comment, call.svc.clock())
    return json_response(note_out(note))


@routes.post("/api/notes/{note_id}/approve", REVIEWERS, NoteOut, errors=(409,))
async def approve_note(call: Call[ReviewIn, None]) -> web.StreamResponse:
    """Approve a signed note."""
    return await _review(call, True)


@routes.post("/api/notes/{note_id}/return", REVIEWERS, NoteOut, errors=(409,))
async def return_note(call: Call[ReviewIn, None]) -> web.StreamResponse:
    """Return a signed note to the worker with a comment."""
    return await _review(call, False)


@routes.get("/api/notes", STAFF, NoteRowOut, many=True)
async def list_notes(call: Call[None, NotesQuery]) -> web.StreamResponse:
    """The notes of the caller's caseload (a supervisor: the team's), newest first."""
    status = call.query.status
    statuses = notes.NOTE_STATUSES if status == "all" else (status,)
    return json_response(await call.svc.db.write(note_lists.note_rows, call.actor, statuses, 200))


def _history(s: Session, actor: Actor, note_id: int) -> HistoryOut:
    return note_lists.history(s, notes.read_note_by_id(s, actor, note_id).id or 0)


@routes.get("/api/notes/{note_id}/history", STAFF, HistoryOut)
async def get_history(call: Call[None, None]) -> web.StreamResponse:
    """Every saved version of a note and its addenda."""
    return json_response(await call.svc.db.write(_history, call.actor, call.path["note_id"]))


@routes.post("/api/notes/{note_id}/addenda", STAFF, AddendumOut, status=201, errors=(409,))
async def add_addendum(call: Call[AddendumIn, None]) -> web.StreamResponse:
    """Add an addendum to a signed note (the signed text is never edited)."""

    def run(s: Session) -> AddendumOut:
        added = notes.add_addendum(s, call.actor, call.path["note_id"], call.body.text, call.svc.clock())
        return next(a for a in note_lists.addenda(s, added.note_id) if a.id == added.id)

    return json_response(await call.svc.db.write(run), 201)


@routes.get("/api/notes/{note_id}/follow-up", STAFF, FollowUpOut)
async def get_follow_up(call: Call[None, None]) -> web.StreamResponse:
    """The follow-up visit suggested by the note: a free slot to book, or the booking made."""

    def run(s: Session) -> FollowUpOut:
        note = notes.read_note_by_id(s, call.actor, call.path["note_id"])
        return follow_up_out(follow_up.follow_up_of(s, call.actor, note, call.svc.clock()), call.svc.links)

    return json_response(await call.svc.db.write(run))


@routes.post("/api/notes/{note_id}/follow-up", WRITERS, BookingOut, status=201, errors=(409,))
async def post_follow_up(call: Call[FollowUpIn, None]) -> web.StreamResponse:
    """Book the suggested follow-up visit (one click)."""
    svc = call.svc

    def run(s: Session) -> BookingOut:
        booking, visit = follow_up.book(
            s, call.actor, call.path["note_id"], call.body.start, svc.clock(), svc.join_policy
        )
        return booking_out(booking, visit, worker_zone(s, booking.worker_id), svc.links)

    return json_response(await svc.db.write(run), 201)
