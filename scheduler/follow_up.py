"""The follow-up visit a note suggests: the free slot nearest to when it was said, booked in one step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

import scheduler.bookings as bookings
import scheduler.hours as hours
from caserecord import notes
from caserecord.audit import Actor
from caserecord.errors import Conflict, Forbidden
from caserecord.models import Booking, Note, Visit
from caserecord.note_body import FollowUpBody
from scheduler.bookings import JoinPolicy, worker_zone
from scheduler.rules import Slot

LOOK_AHEAD = timedelta(days=13)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The note's follow-up: a slot to book (with the words it was said in), or the booking made."""

    suggested: Slot | None
    when_text: str | None
    booking: Booking | None
    visit: Visit | None
    zone: ZoneInfo


def suggest(s: Session, actor: Actor, worker_id: int, said: FollowUpBody, now: datetime) -> Slot | None:
    """The free slot of the worker's office hours nearest to the follow-up the visit mentioned.

    `said.start` is a date, or a time with its offset (the note body allows nothing else).
    """
    zone = worker_zone(s, worker_id)
    at = datetime.fromisoformat(said.start) if "T" in said.start else None
    day = at.astimezone(zone).date() if at is not None else date.fromisoformat(said.start)
    first = max(day, now.astimezone(zone).date())
    _, slots = hours.worker_slots(s, actor, worker_id, first, first + LOOK_AHEAD, now)
    free = [x for x in slots if x.available and x.mode == "booked"]
    if at is not None:
        return next((x for x in free if x.start >= at), None)
    return free[0] if free else None


def follow_up_of(s: Session, actor: Actor, note: Note, now: datetime) -> FollowUp:
    """Return the note's follow-up as its page and API show it."""
    zone = worker_zone(s, note.worker_id)
    booking = s.get(Booking, note.follow_up_booking_id) if note.follow_up_booking_id else None
    if booking is not None and booking.status == "booked":
        visit = s.exec(select(Visit).where(Visit.booking_id == booking.id)).first()
        return FollowUp(None, None, booking, visit, zone)
    said = notes.body_of(note).follow_up
    if said is None:
        return FollowUp(None, None, None, None, zone)
    return FollowUp(suggest(s, actor, note.worker_id, said, now), said.when_text, None, None, zone)


def book(
    s: Session, actor: Actor, note_id: int, start: datetime, now: datetime, join: JoinPolicy
) -> tuple[Booking, Visit]:
    """Book the follow-up visit for the note's case in one step; a note books one follow-up."""
    note = notes.read_note_by_id(s, actor, note_id)
    if actor.role == "worker" and actor.user_id != note.worker_id:
        raise Forbidden("only the visit's worker books its follow-up")
    if note.follow_up_booking_id is not None:
        old = s.get(Booking, note.follow_up_booking_id)
        if old is not None and old.status == "booked":
            raise Conflict(f"the follow-up is already booked (booking {old.id})")
    booking, visit = bookings.book(s, actor, note.worker_id, note.case_id, start, now, join)
    assert booking.id is not None
    notes.record_follow_up(s, actor, note_id, booking.id, now)
    return booking, visit
