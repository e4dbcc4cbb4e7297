"""Office hours as rules: the fields of a block (defined once), loading them, the slots they give.

Every function takes an open session; the caller runs it off the event loop (`Database.read` /
`Database.write`) and the transaction commits as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_serializer,
    field_validator,
)
from sqlmodel import Session, col, select

from caserecord.access import require_worker
from caserecord.audit import Actor
from caserecord.errors import Invalid, NotFound
from caserecord.models import BOOKING_ACTIVE, Booking, OfficeHourBlock, OfficeHourException, User
from scheduler.rules import BlockRule, Mode, RuleError, Slot, compute_slots, find_slot, zone

EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
MAX_RANGE_DAYS = 92
Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


class BlockSpec(BaseModel):
    """A block of office hours as a worker publishes it: the API body, the page form's result,
    the stored row and the rule are all made from these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekdays: Annotated[tuple[Weekday, ...], Field(min_length=1, max_length=7)]
    start_time: time = Field(description='Local wall-clock time, "09:00"')
    end_time: time
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    slot_minutes: Annotated[int, Field(ge=5, le=480)]
    buffer_minutes: Annotated[int, Field(ge=0, le=240)] = 0
    mode: Mode = "booked"
    starts_on: date
    until: date | None = None
    min_notice_minutes: Annotated[int, Field(ge=0, le=86400)] = 0
    max_days_ahead: Annotated[int, Field(ge=1, le=730)] = 60
    title: Annotated[str, StringConstraints(max_length=200)] = ""

    @classmethod
    def checked(cls, **fields: object) -> BlockSpec:
        """Return the spec of `fields`, or raise Invalid naming the first field that is wrong."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise Invalid(f"{where}: {first['msg'].removeprefix('Value error, ')}") from exc

    @field_validator("start_time", "end_time")
    @classmethod
    def _wall_clock(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("start_time and end_time are wall-clock times in `timezone`; give no offset")
        if value.second or value.microsecond:
            raise ValueError("start_time and end_time are whole minutes, e.g. 09:00")
        return value

    @field_serializer("start_time", "end_time")
    def _hh_mm(self, value: time) -> str:
        return value.strftime("%H:%M")

    def rule(self, block_id: int, worker_id: int, exceptions: Sequence[date] = ()) -> BlockRule:
        """Return the rule these fields make, or raise Invalid saying why they cannot hold."""
        try:
            fields = {name: value for name, value in self if name != "title"}  # values, not as serialised
            return BlockRule(id=block_id, worker_id=worker_id, exceptions=frozenset(exceptions), **fields)
        except RuleError as exc:
            raise Invalid(str(exc)) from exc

    @classmethod
    def of(cls, block: OfficeHourBlock) -> BlockSpec:
        """Return the fields of a stored block."""
        # As stored: what was valid when it was published is not checked as input again.
        fields = {name: getattr(block, name) for name in cls.model_fields}
        return cls.model_construct(**fields | {"weekdays": tuple(block.weekdays.split(","))})

    def row(self, worker_id: int) -> OfficeHourBlock:
        """Return a new stored block of these fields."""
        fields = self.model_dump(exclude={"weekdays", "start_time", "end_time"})
        return OfficeHourBlock(
            worker_id=worker_id,
            weekdays=",".join(self.weekdays),
            start_time=self.start_time,
            end_time=self.end_time,
            **fields | {"title": self.title.strip()[:200]},
        )


def to_zone(name: str) -> ZoneInfo:
    """Return the IANA zone `name`, or raise Invalid."""
    try:
        return zone(name)
    except RuleError as exc:
        raise Invalid(str(exc)) from exc


def check_date(d: date, what: str) -> None:
    """Raise Invalid unless `d` lies in the years the service plans for."""
    if not EARLIEST <= d <= LATEST:
        raise Invalid(f"{what} {d.isoformat()} is outside {EARLIEST.year}-{LATEST.year}")


def to_rule(block: OfficeHourBlock, exceptions: Sequence[date] = ()) -> BlockRule:
    """Turn a stored block (and its exception dates) into a BlockRule."""
    assert block.id is not None
    return BlockSpec.of(block).rule(block.id, block.worker_id, exceptions)


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


def get_block(s: Session, worker_id: int, block_id: int) -> OfficeHourBlock:
    """Return one of a worker's active blocks, or raise NotFound."""
    block = s.get(OfficeHourBlock, block_id)
    if block is None or block.worker_id != worker_id or block.deleted_at is not None:
        raise NotFound(f"no office-hour block {block_id} for worker {worker_id}")
    return block


def check_range(first: date, last: date) -> None:
    """Raise Invalid unless `first`..`last` is a sane, bounded range of dates."""
    check_date(first, "from")
    check_date(last, "to")
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


def free_slots(
    s: Session, worker_id: int, first: date, last: date, now: datetime, *, mode: Mode | None = None
) -> list[Slot]:
    """Return a worker's slots on local dates `first`..`last` (of one mode, if given), marked free or not."""
    rules = [r for r in load_rules(s, [worker_id]) if mode is None or r.mode == mode]
    lo = datetime.combine(first - timedelta(days=2), time(0), UTC)
    hi = datetime.combine(last + timedelta(days=2), time(0), UTC)
    busy = [(b.start_at, b.end_at) for b in busy_intervals(s, [worker_id], lo, hi)]
    return compute_slots(rules, busy, first, last, now)


def worker_slots(
    s: Session, actor: Actor, worker_id: int, first: date, last: date, now: datetime
) -> tuple[User, list[Slot]]:
    """Return a worker's slots on local dates `first`..`last`, marked available or not."""
    worker = require_worker(s, actor, worker_id)
    check_range(first, last)
    return worker, free_slots(s, worker_id, first, last, now)


def slot_at(
    s: Session, worker_id: int, start: datetime, now: datetime
) -> tuple[BlockRule, datetime, datetime]:
    """Return the bookable slot of the worker's office hours that starts at `start`, or raise Invalid."""
    if start.tzinfo is None:
        raise Invalid("start must carry a UTC offset, e.g. 2026-03-10T09:00:00-07:00")
    check_date(start.date(), "start")
    found = find_slot(load_rules(s, [worker_id]), start)
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
