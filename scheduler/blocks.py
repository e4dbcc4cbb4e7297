"""Office-hour blocks: publishing, withdrawing, and cancelling one date (with its bookings)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, select

from caserecord import audit
from caserecord.access import require_worker_write
from caserecord.audit import Actor
from caserecord.errors import Conflict, Invalid
from caserecord.models import BOOKING_ACTIVE, Booking, OfficeHourBlock, OfficeHourException
from scheduler.bookings import cancel_booking
from scheduler.hours import BlockSpec, check_date, get_block, load_rules, to_rule
from scheduler.rules import rules_overlap


def create_block(s: Session, actor: Actor, worker_id: int, spec: BlockSpec) -> OfficeHourBlock:
    """Publish a block of office hours; refuse one that overlaps the worker's others."""
    require_worker_write(s, actor, worker_id)
    check_date(spec.starts_on, "starts_on")
    if spec.until is not None:
        check_date(spec.until, "until")
    new_rule = spec.rule(0, worker_id)
    for other in load_rules(s, [worker_id]):
        if rules_overlap(new_rule, other):
            raise Conflict(f"these hours overlap office-hour block {other.id}")
    block = spec.row(worker_id)
    s.add(block)
    s.flush()
    audit.record(s, actor, "office_hours.create", "office_hour_block", block.id, worker_id=worker_id)
    return block


def delete_block(
    s: Session, actor: Actor, worker_id: int, block_id: int, now: datetime, *, cancel_bookings: bool = False
) -> list[Booking]:
    """Withdraw a block; its future bookings block this unless `cancel_bookings` cancels them."""
    require_worker_write(s, actor, worker_id)
    block = get_block(s, worker_id, block_id)
    future = list(
        s.exec(
            select(Booking).where(
                Booking.block_id == block_id, Booking.status == BOOKING_ACTIVE, col(Booking.end_at) > now
            )
        )
    )
    if future and not cancel_bookings:
        raise Conflict(
            f"block {block_id} has {len(future)} coming booking(s); cancel them first "
            "or pass cancel_bookings=true"
        )
    for booking in future:
        cancel_booking(s, actor, booking, "office hours withdrawn", now)
    block.deleted_at = now
    s.add(block)
    audit.record(s, actor, "office_hours.delete", "office_hour_block", block_id, cancelled=len(future))
    return future


def add_exception(
    s: Session, actor: Actor, worker_id: int, block_id: int, day: date, reason: str, now: datetime
) -> tuple[OfficeHourException, list[Booking]]:
    """Cancel one date of a block and every booking in it; return the exception and those bookings."""
    require_worker_write(s, actor, worker_id)
    check_date(day, "date")
    block = get_block(s, worker_id, block_id)
    rule = to_rule(block)
    if not rule.occurs_on(day):
        raise Invalid(f"block {block_id} is not held on {day.isoformat()}")
    exists = s.exec(
        select(OfficeHourException.id).where(
            OfficeHourException.block_id == block_id, OfficeHourException.day == day
        )
    ).first()
    if exists is not None:
        raise Conflict(f"{day.isoformat()} is already cancelled")
    assert actor.user_id is not None
    exc = OfficeHourException(
        block_id=block_id, day=day, reason=reason.strip()[:500], created_by=actor.user_id
    )
    s.add(exc)
    tz = rule.tz
    lo = datetime.combine(day, time(0), tz)
    hi = datetime.combine(day + timedelta(days=1), time(0), tz)
    hit = list(
        s.exec(
            select(Booking).where(
                Booking.block_id == block_id,
                Booking.status == BOOKING_ACTIVE,
                col(Booking.start_at) >= lo,
                col(Booking.start_at) < hi,
            )
        )
    )
    for booking in hit:
        why = f"office hours cancelled on {day.isoformat()}: {reason}".strip(": ")
        cancel_booking(s, actor, booking, why, now)
    s.flush()
    audit.record(
        s, actor, "office_hours.exception", "office_hour_block", block_id, day=day, cancelled=len(hit)
    )
    return exc, hit
