"""Bookings: a case's visit in one slot of a worker's office hours, made, moved and cancelled.

Every function takes an open session and the acting user; the caller runs it off the event
loop and the transaction commits as a whole. A booking creates its visit (join link, kiosk
code) and writes the messages it causes into the outbox in the same transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

import scheduler.outbox as outbox
from caserecord import audit
from caserecord.access import require_case, require_worker, require_worker_write, require_writable
from caserecord.audit import Actor
from caserecord.errors import Conflict, Invalid, NotFound
from caserecord.models import BOOKING_ACTIVE, BOOKING_CANCELLED, Booking, User, Visit
from caserecord.visit_status import CANCELLED, NO_SHOW, SCHEDULED
from caserecord.visit_status import move as move_visit
from scheduler.hours import slot_at


@dataclass(frozen=True, slots=True)
class JoinPolicy:
    """When a client's join link works: from `early` before the start to `grace` after the end.

    `reminders` says how long before the start the client is reminded.
    """

    early: timedelta = timedelta(minutes=15)
    grace: timedelta = timedelta(minutes=30)
    reminders: tuple[timedelta, ...] = outbox.DEFAULT_REMINDERS

    @property
    def outbox(self) -> outbox.OutboxPolicy:
        return outbox.OutboxPolicy(reminders=self.reminders)


def worker_zone(s: Session, worker_id: int) -> ZoneInfo:
    """Return the worker's time zone, in which their bookings are shown (UTC for one not found)."""
    user = s.get(User, worker_id)
    return ZoneInfo(user.timezone if user is not None else "UTC")


def _kiosk_code(s: Session) -> str:
    for _ in range(20):
        candidates = [f"{secrets.randbelow(10**6):06d}" for _ in range(5)]
        taken = set(s.exec(select(Visit.kiosk_code).where(col(Visit.kiosk_code).in_(candidates))))
        for code in candidates:
            if code not in taken:
                return code
    raise Conflict("no free kiosk code; try again")  # pragma: no cover - a million codes


def book(
    s: Session,
    actor: Actor,
    worker_id: int,
    case_id: int,
    start: datetime,
    now: datetime,
    join: JoinPolicy = JoinPolicy(),
) -> tuple[Booking, Visit]:
    """Book the slot at `start` for a case; the database refuses an overlapping booking (409)."""
    require_worker_write(s, actor, worker_id)
    case = require_case(s, actor, case_id)
    if case.status != "open":
        raise Invalid(f"case {case_id} is {case.status}")
    rule, slot_start, slot_end = slot_at(s, worker_id, start, now)
    assert actor.user_id is not None
    booking = Booking(
        uid=f"booking-{secrets.token_hex(16)}@lastmile",
        worker_id=worker_id,
        case_id=case_id,
        block_id=rule.id,
        start_at=slot_start,
        end_at=slot_end,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    s.add(booking)
    try:
        s.flush()
    except IntegrityError as exc:
        raise Conflict(f"the slot at {slot_start.isoformat()} is already taken") from exc
    visit = Visit(
        booking_id=booking.id,
        case_id=case_id,
        worker_id=worker_id,
        join_token=secrets.token_urlsafe(32),
        join_opens_at=slot_start - join.early,
        join_expires_at=slot_end + join.grace,
        kiosk_code=_kiosk_code(s),
        created_at=now,
    )
    s.add(visit)
    s.flush()
    outbox.on_booked(s, booking, now, join.outbox)
    audit.record(
        s,
        actor,
        "booking.create",
        "booking",
        booking.id,
        case_id=case_id,
        start=slot_start,
        visit_id=visit.id,
    )
    return booking, visit


def get_booking(s: Session, actor: Actor, booking_id: int) -> tuple[Booking, Visit | None]:
    """Return a booking in `actor`'s caseload, with its visit; the read is audited."""
    booking = s.get(Booking, booking_id)
    if booking is None:
        raise NotFound(f"no booking {booking_id}")
    require_case(s, actor, booking.case_id)
    visit = s.exec(select(Visit).where(Visit.booking_id == booking_id)).first()
    audit.record(s, actor, "booking.read", "booking", booking_id, case_id=booking.case_id)
    return booking, visit


def cancel_booking(s: Session, actor: Actor, booking: Booking, reason: str, now: datetime) -> None:
    """Cancel a booking the caller may change (checked already); its visit and messages follow."""
    booking.status = BOOKING_CANCELLED
    booking.cancelled_at = now
    booking.cancel_reason = reason[:500] or None
    booking.sequence += 1
    booking.updated_at = now
    s.add(booking)
    visit = s.exec(select(Visit).where(Visit.booking_id == booking.id)).first()
    if visit is not None and visit.status == SCHEDULED:
        move_visit(visit, CANCELLED)
        visit.kiosk_code = None
        s.add(visit)
    outbox.on_cancelled(s, booking, now)
    audit.record(s, actor, "booking.cancel", "booking", booking.id, case_id=booking.case_id, reason=reason)


def cancel(
    s: Session, actor: Actor, booking_id: int, reason: str, now: datetime
) -> tuple[Booking, Visit | None]:
    """Cancel a booking; its slot is free again at once."""
    booking = require_writable(s, actor, Booking, booking_id)
    if booking.status != BOOKING_ACTIVE:
        raise Conflict(f"booking {booking_id} is already {booking.status}")
    if booking.end_at <= now:
        raise Conflict(f"booking {booking_id} is over")
    cancel_booking(s, actor, booking, reason.strip(), now)
    s.flush()
    visit = s.exec(select(Visit).where(Visit.booking_id == booking_id)).first()
    return booking, visit


def reschedule(
    s: Session,
    actor: Actor,
    booking_id: int,
    start: datetime,
    now: datetime,
    join: JoinPolicy = JoinPolicy(),
) -> tuple[Booking, Visit | None]:
    """Move a booking to another slot of the same worker; same UID, higher SEQUENCE."""
    booking = require_writable(s, actor, Booking, booking_id)
    return move(s, actor, booking, start, now, join)


def move(
    s: Session,
    actor: Actor,
    booking: Booking,
    start: datetime,
    now: datetime,
    join: JoinPolicy = JoinPolicy(),
    *,
    missed: bool = False,
) -> tuple[Booking, Visit | None]:
    """Move a booking the caller may change (checked already) to another slot of its worker.

    `missed` moves a visit the client did not come to (a no-show), even when its time is over.
    """
    booking_id = booking.id
    if booking.status != BOOKING_ACTIVE:
        raise Conflict(f"booking {booking_id} is {booking.status}")
    if booking.end_at <= now and not missed:
        raise Conflict(f"booking {booking_id} is over")
    rule, slot_start, slot_end = slot_at(s, booking.worker_id, start, now)
    if slot_start == booking.start_at:
        raise Invalid("the booking is already at that time")
    before = booking.start_at
    booking.start_at, booking.end_at, booking.block_id = slot_start, slot_end, rule.id
    booking.sequence += 1
    booking.updated_at = now
    s.add(booking)
    try:
        s.flush()
    except IntegrityError as exc:
        raise Conflict(f"the slot at {slot_start.isoformat()} is already taken") from exc
    visit = s.exec(select(Visit).where(Visit.booking_id == booking_id)).first()
    if visit is not None:
        visit.join_opens_at = slot_start - join.early
        visit.join_expires_at = slot_end + join.grace
        if missed and visit.status == NO_SHOW:
            move_visit(visit, SCHEDULED)
        s.add(visit)
    outbox.on_rescheduled(s, booking, now, join.outbox)
    audit.record(
        s,
        actor,
        "booking.reschedule",
        "booking",
        booking_id,
        case_id=booking.case_id,
        before=before,
        after=slot_start,
    )
    return booking, visit


def worker_bookings(
    s: Session, actor: Actor, worker_id: int, lo: datetime, hi: datetime, *, include_cancelled: bool = False
) -> list[Booking]:
    """Return a worker's bookings starting in [lo, hi), for their calendar."""
    require_worker(s, actor, worker_id)
    q = select(Booking).where(
        Booking.worker_id == worker_id, col(Booking.start_at) >= lo, col(Booking.start_at) < hi
    )
    if not include_cancelled:
        q = q.where(Booking.status == BOOKING_ACTIVE)
    return list(s.exec(q.order_by(col(Booking.start_at))))
