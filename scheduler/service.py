"""Office hours, slots and bookings over the case record.

Every function takes an open session and the acting user; the caller runs it off the
event loop (`Database.read` / `Database.write`) and the transaction commits as a whole.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from caserecord import audit
from caserecord.access import require_case, require_worker, require_worker_write
from caserecord.audit import Actor
from caserecord.errors import Conflict, Invalid, NotFound
from caserecord.models import (
    BOOKING_ACTIVE,
    BOOKING_CANCELLED,
    Booking,
    OfficeHourBlock,
    OfficeHourException,
    User,
    Visit,
)
from caserecord.visit_status import CANCELLED, NO_SHOW, SCHEDULED
from caserecord.visit_status import move as move_visit
from scheduler import outbox
from scheduler.rules import (
    BlockRule,
    Mode,
    RuleError,
    Slot,
    compute_slots,
    find_slot,
    occurrences,
    rules_overlap,
    zone,
)

EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
MAX_RANGE_DAYS = 92


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """What a worker asks for when publishing office hours."""

    weekdays: tuple[str, ...]
    start_time: time
    end_time: time
    timezone: str
    slot_minutes: int
    mode: Mode
    starts_on: date
    buffer_minutes: int = 0
    until: date | None = None
    min_notice_minutes: int = 0
    max_days_ahead: int = 60
    title: str = ""


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


def to_zone(name: str) -> ZoneInfo:
    """Return the IANA zone `name`, or raise Invalid."""
    try:
        return zone(name)
    except RuleError as exc:
        raise Invalid(str(exc)) from exc


def _check_date(d: date, what: str) -> None:
    if not EARLIEST <= d <= LATEST:
        raise Invalid(f"{what} {d.isoformat()} is outside {EARLIEST.year}-{LATEST.year}")


def to_rule(block: OfficeHourBlock, exceptions: Sequence[date] = ()) -> BlockRule:
    """Turn a stored block (and its exception dates) into a BlockRule."""
    assert block.id is not None
    return BlockRule(
        id=block.id,
        worker_id=block.worker_id,
        weekdays=tuple(block.weekdays.split(",")),
        start_time=block.start_time,
        end_time=block.end_time,
        timezone=block.timezone,
        slot_minutes=block.slot_minutes,
        buffer_minutes=block.buffer_minutes,
        mode="walk_in" if block.mode == "walk_in" else "booked",
        starts_on=block.starts_on,
        until=block.until,
        min_notice_minutes=block.min_notice_minutes,
        max_days_ahead=block.max_days_ahead,
        exceptions=frozenset(exceptions),
    )


def active_blocks(s: Session, worker_ids: Sequence[int] | None = None) -> list[OfficeHourBlock]:
    """Return blocks not deleted, for some workers or all, oldest first."""
    q = select(OfficeHourBlock).where(col(OfficeHourBlock.deleted_at).is_(None))
    if worker_ids is not None:
        q = q.where(col(OfficeHourBlock.worker_id).in_(worker_ids))
    return list(s.exec(q.order_by(col(OfficeHourBlock.id))))


def load_rules(s: Session, worker_ids: Sequence[int] | None = None) -> list[BlockRule]:
    """Return the BlockRules of the given workers' active blocks, exceptions included."""
    blocks = active_blocks(s, worker_ids)
    if not blocks:
        return []
    ids = [b.id for b in blocks]
    by_block: dict[int, list[date]] = {}
    for exc in s.exec(select(OfficeHourException).where(col(OfficeHourException.block_id).in_(ids))):
        by_block.setdefault(exc.block_id, []).append(exc.day)
    return [to_rule(b, by_block.get(b.id or 0, ())) for b in blocks]


def create_block(s: Session, actor: Actor, worker_id: int, spec: BlockSpec) -> OfficeHourBlock:
    """Publish a block of office hours; refuse one that overlaps the worker's others."""
    require_worker_write(s, actor, worker_id)
    _check_date(spec.starts_on, "starts_on")
    if spec.until is not None:
        _check_date(spec.until, "until")
    if spec.mode not in ("booked", "walk_in"):
        raise Invalid("mode must be 'booked' or 'walk_in'")
    block = OfficeHourBlock(
        worker_id=worker_id,
        weekdays=",".join(spec.weekdays),
        start_time=spec.start_time,
        end_time=spec.end_time,
        timezone=spec.timezone,
        slot_minutes=spec.slot_minutes,
        buffer_minutes=spec.buffer_minutes,
        mode=spec.mode,
        starts_on=spec.starts_on,
        until=spec.until,
        min_notice_minutes=spec.min_notice_minutes,
        max_days_ahead=spec.max_days_ahead,
        title=spec.title.strip()[:200],
    )
    try:
        new_rule = BlockRule(
            id=0,
            worker_id=worker_id,
            weekdays=spec.weekdays,
            start_time=spec.start_time,
            end_time=spec.end_time,
            timezone=spec.timezone,
            slot_minutes=spec.slot_minutes,
            buffer_minutes=spec.buffer_minutes,
            mode=spec.mode,
            starts_on=spec.starts_on,
            until=spec.until,
            min_notice_minutes=spec.min_notice_minutes,
            max_days_ahead=spec.max_days_ahead,
        )
    except RuleError as exc:
        raise Invalid(str(exc)) from exc
    for other in load_rules(s, [worker_id]):
        if rules_overlap(new_rule, other):
            raise Conflict(f"these hours overlap office-hour block {other.id}")
    s.add(block)
    s.flush()
    audit.record(s, actor, "office_hours.create", "office_hour_block", block.id, worker_id=worker_id)
    return block


def list_blocks(
    s: Session, actor: Actor, worker_id: int
) -> list[tuple[OfficeHourBlock, list[OfficeHourException]]]:
    """Return a worker's active blocks with their exceptions."""
    require_worker(s, actor, worker_id)
    out = []
    for block in active_blocks(s, [worker_id]):
        excs = list(
            s.exec(
                select(OfficeHourException)
                .where(OfficeHourException.block_id == block.id)
                .order_by(col(OfficeHourException.day))
            )
        )
        out.append((block, excs))
    return out


def _get_block(s: Session, worker_id: int, block_id: int) -> OfficeHourBlock:
    block = s.get(OfficeHourBlock, block_id)
    if block is None or block.worker_id != worker_id or block.deleted_at is not None:
        raise NotFound(f"no office-hour block {block_id} for worker {worker_id}")
    return block


def delete_block(
    s: Session, actor: Actor, worker_id: int, block_id: int, now: datetime, *, cancel_bookings: bool = False
) -> list[Booking]:
    """Withdraw a block; its future bookings block this unless `cancel_bookings` cancels them."""
    require_worker_write(s, actor, worker_id)
    block = _get_block(s, worker_id, block_id)
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
        _cancel(s, actor, booking, now, "office hours withdrawn")
    block.deleted_at = now
    s.add(block)
    audit.record(s, actor, "office_hours.delete", "office_hour_block", block_id, cancelled=len(future))
    return future


def add_exception(
    s: Session, actor: Actor, worker_id: int, block_id: int, day: date, reason: str, now: datetime
) -> tuple[OfficeHourException, list[Booking]]:
    """Cancel one date of a block and every booking in it; return the exception and those bookings."""
    require_worker_write(s, actor, worker_id)
    _check_date(day, "date")
    block = _get_block(s, worker_id, block_id)
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
        _cancel(s, actor, booking, now, f"office hours cancelled on {day.isoformat()}: {reason}".strip(": "))
    s.flush()
    audit.record(
        s, actor, "office_hours.exception", "office_hour_block", block_id, day=day, cancelled=len(hit)
    )
    return exc, hit


def check_range(first: date, last: date) -> None:
    """Raise Invalid unless `first`..`last` is a sane, bounded range of dates."""
    _check_date(first, "from")
    _check_date(last, "to")
    if last < first:
        raise Invalid("to must not be before from")
    if (last - first).days > MAX_RANGE_DAYS:
        raise Invalid(f"ask for at most {MAX_RANGE_DAYS} days at once")


def busy_intervals(s: Session, worker_ids: Sequence[int], lo: datetime, hi: datetime) -> list[Booking]:
    """Return active bookings of `worker_ids` that overlap [lo, hi)."""
    return list(
        s.exec(
            select(Booking).where(
                col(Booking.worker_id).in_(worker_ids),
                Booking.status == BOOKING_ACTIVE,
                col(Booking.start_at) < hi,
                col(Booking.end_at) > lo,
            )
        )
    )


def worker_slots(
    s: Session, actor: Actor, worker_id: int, first: date, last: date, now: datetime
) -> tuple[User, list[Slot]]:
    """Return a worker's slots on local dates `first`..`last`, marked available or not."""
    worker = require_worker(s, actor, worker_id)
    check_range(first, last)
    rules = load_rules(s, [worker_id])
    lo = datetime.combine(first - timedelta(days=2), time(0), UTC)
    hi = datetime.combine(last + timedelta(days=2), time(0), UTC)
    busy = [(b.start_at, b.end_at) for b in busy_intervals(s, [worker_id], lo, hi)]
    return worker, compute_slots(rules, busy, first, last, now)


def _slot_for(
    s: Session, worker_id: int, start: datetime, now: datetime
) -> tuple[BlockRule, datetime, datetime]:
    if start.tzinfo is None:
        raise Invalid("start must carry a UTC offset, e.g. 2026-03-10T09:00:00-07:00")
    _check_date(start.date(), "start")
    rules = load_rules(s, [worker_id])
    found = find_slot(rules, start)
    if found is None:
        raise Invalid(f"{start.isoformat()} is not the start of a slot in worker {worker_id}'s office hours")
    rule, slot_start, slot_end = found
    if slot_start < now + timedelta(minutes=rule.min_notice_minutes):
        raise Invalid(
            f"{start.isoformat()} is too soon: book at least {rule.min_notice_minutes} minutes ahead"
        )
    if slot_start.date() > rule.last_bookable_day(now):
        raise Invalid(f"{start.isoformat()} is too far ahead: book at most {rule.max_days_ahead} days ahead")
    return rule, slot_start, slot_end


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
    rule, slot_start, slot_end = _slot_for(s, worker_id, start, now)
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


def _writable_booking(s: Session, actor: Actor, booking_id: int) -> Booking:
    booking = s.get(Booking, booking_id)
    if booking is None:
        raise NotFound(f"no booking {booking_id}")
    require_case(s, actor, booking.case_id)
    require_worker_write(s, actor, booking.worker_id)
    return booking


def _cancel(s: Session, actor: Actor, booking: Booking, now: datetime, reason: str) -> None:
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


def cancel_booking(s: Session, actor: Actor, booking: Booking, reason: str, now: datetime) -> None:
    """Cancel a booking the caller may change (checked already)."""
    _cancel(s, actor, booking, now, reason)


def cancel(
    s: Session, actor: Actor, booking_id: int, reason: str, now: datetime
) -> tuple[Booking, Visit | None]:
    """Cancel a booking; its slot is free again at once."""
    booking = _writable_booking(s, actor, booking_id)
    if booking.status != BOOKING_ACTIVE:
        raise Conflict(f"booking {booking_id} is already {booking.status}")
    if booking.end_at <= now:
        raise Conflict(f"booking {booking_id} is over")
    _cancel(s, actor, booking, now, reason.strip())
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
    booking = _writable_booking(s, actor, booking_id)
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
    rule, slot_start, slot_end = _slot_for(s, booking.worker_id, start, now)
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


def _open_windows(rules: Sequence[BlockRule], now: datetime) -> list[tuple[int, datetime, datetime]]:
    """Return (worker id, start, end) of each walk-in occurrence open at `now`."""
    found = []
    for rule in rules:
        if rule.mode != "walk_in":
            continue
        day = now.astimezone(rule.tz).date()
        for start, end in occurrences(rule, day - timedelta(days=1), day):
            if start.astimezone(UTC) <= now < end.astimezone(UTC):
                found.append((rule.worker_id, start, end))
    return found


def walk_in_window(s: Session, worker_id: int, now: datetime) -> tuple[datetime, datetime] | None:
    """Return the worker's walk-in hours open at `now` (start, end), if any; the longest-lasting wins."""
    windows = _open_windows(load_rules(s, [worker_id]), now)
    if not windows:
        return None
    _, start, end = max(windows, key=lambda w: w[2].astimezone(UTC))
    return start, end


CASELOAD_ROLES = ("worker", "supervisor")  # who can take a walk-in (a walk-in opens a case)


@dataclass(frozen=True, slots=True)
class OpenWalkIn:
    """A worker's walk-in hours open right now, as a public kiosk may show them."""

    worker_id: int
    worker_name: str
    start: datetime
    end: datetime  # in the block's own time zone


def open_walk_ins(s: Session, now: datetime) -> list[OpenWalkIn]:
    """Return the walk-in hours open at `now` across active workers, one per worker, by name."""
    q = select(OfficeHourBlock.worker_id).where(
        col(OfficeHourBlock.deleted_at).is_(None), OfficeHourBlock.mode == "walk_in"
    )
    worker_ids = sorted(set(s.exec(q)))
    if not worker_ids:
        return []
    latest: dict[int, tuple[datetime, datetime]] = {}
    for worker_id, start, end in _open_windows(load_rules(s, worker_ids), now):
        held = latest.get(worker_id)
        if held is None or end.astimezone(UTC) > held[1].astimezone(UTC):
            latest[worker_id] = (start, end)
    if not latest:
        return []
    users = s.exec(select(User).where(col(User.id).in_(latest)))
    out = [
        OpenWalkIn(u.id, u.name, *latest[u.id])
        for u in users
        if u.id is not None and u.active and u.role in CASELOAD_ROLES
    ]
    return sorted(out, key=lambda w: (w.worker_name.casefold(), w.worker_id))


def next_walk_in(s: Session, worker_id: int, now: datetime) -> datetime | None:
    """Return when the worker's walk-in hours next open (within four weeks), if ever."""
    found: list[datetime] = []
    for rule in load_rules(s, [worker_id]):
        if rule.mode != "walk_in":
            continue
        day = now.astimezone(rule.tz).date()
        found += [
            st for st, _ in occurrences(rule, day, day + timedelta(days=28)) if st.astimezone(UTC) > now
        ]
    return min(found, key=lambda d: d.astimezone(UTC)) if found else None
