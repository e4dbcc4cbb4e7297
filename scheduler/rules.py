"""Office-hour rules and slot computation, in the worker's local time.

Pure functions over frozen dataclasses: no database, no clock. The web layer loads
rows from the case record, turns them into :class:`BlockRule` values and asks here.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from caserecord.zones import is_zone

WEEKDAYS: tuple[str, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
Mode = Literal["booked", "walk_in"]


class RuleError(ValueError):
    """An office-hour rule that cannot hold (bad zone, end before start, ...)."""


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """Return the IANA zone called `name`, or raise RuleError."""
    if not is_zone(name):
        raise RuleError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - guarded above
        raise RuleError(f"unknown time zone {name!r}") from exc


def local_datetime(day: date, at: time, tz: ZoneInfo) -> datetime | None:
    """Return `day` at wall-clock `at` in `tz`, or None when that time does not exist.

    A wall time that occurs twice (the hour repeated when clocks fall back) resolves to
    its first occurrence.
    """
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=tz, fold=0)
    round_trip = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if round_trip != naive:
        return None
    return aware


@dataclass(frozen=True, slots=True)
class BlockRule:
    """One recurring office-hour block of one worker."""

    id: int
    worker_id: int
    weekdays: tuple[str, ...]
    start_time: time
    end_time: time
    timezone: str
    slot_minutes: int
    buffer_minutes: int
    mode: Mode
    starts_on: date
    until: date | None = None
    min_notice_minutes: int = 0
    max_days_ahead: int = 60
    exceptions: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        check_rule(self)

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(d) for d in self.weekdays)

    def last_bookable_day(self, now: datetime) -> date:
        """Return the last local date a client may book on, `max_days_ahead` days from today."""
        return now.astimezone(self.tz).date() + timedelta(days=self.max_days_ahead)

    def occurs_on(self, day: date) -> bool:
        """Return whether the block is held on local date `day`."""
        if day < self.starts_on or (self.until is not None and day > self.until):
            return False
        return day.weekday() in self.weekday_numbers() and day not in self.exceptions


def check_rule(rule: BlockRule) -> None:
    """Raise RuleError naming the first thing wrong with `rule`."""
    zone(rule.timezone)
    if not rule.weekdays:
        raise RuleError("weekdays must name at least one day")
    for day in rule.weekdays:
        if day not in WEEKDAYS:
            raise RuleError(f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}")
    if len(set(rule.weekdays)) != len(rule.weekdays):
        raise RuleError("weekdays repeat a day")
    if rule.end_time <= rule.start_time:
        raise RuleError("end_time must be after start_time")
    if not 5 <= rule.slot_minutes <= 480:
        raise RuleError("slot_minutes must be between 5 and 480")
    if not 0 <= rule.buffer_minutes <= 240:
        raise RuleError("buffer_minutes must be between 0 and 240")
    if _minutes(rule.end_time) - _minutes(rule.start_time) < rule.slot_minutes:
        raise RuleError("the block is shorter than one slot")
    if rule.until is not None and rule.until < rule.starts_on:
        raise RuleError("until must not be before starts_on")
    if not 0 <= rule.min_notice_minutes <= 60 * 24 * 60:
        raise RuleError("min_notice_minutes must be between 0 and 86400")
    if not 1 <= rule.max_days_ahead <= 730:
        raise RuleError("max_days_ahead must be between 1 and 730")


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


@dataclass(frozen=True, slots=True)
class Slot:
    """One bookable (or walk-in) period; times are aware, in the block's zone."""

    block_id: int
    worker_id: int
    start: datetime
    end: datetime
    mode: Mode
    available: bool


def occurrences(rule: BlockRule, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    """Yield the block's (start, end) on each local date from `first` to `last` inclusive.

    A start that falls in a skipped hour moves to the first wall time that exists;
    the end is the wall-clock end time (or the first existing time after it).
    """
    tz = rule.tz
    for day in _held_days(rule, first, last):
        start = _existing(day, rule.start_time, tz)
        end = _existing(day, rule.end_time, tz)
        if start.astimezone(UTC) < end.astimezone(UTC):
            yield start, end


def _held_days(rule: BlockRule, first: date, last: date) -> Iterator[date]:
    """Yield the local dates from `first` to `last` on which the block is held (see `occurs_on`)."""
    weekdays = rule.weekday_numbers()
    exceptions = rule.exceptions
    one = timedelta(days=1)
    day = max(first, rule.starts_on)
    stop = last if rule.until is None else min(last, rule.until)
    while day <= stop:
        if day.weekday() in weekdays and day not in exceptions:
            yield day
        day += one


def _existing(day: date, at: time, tz: ZoneInfo) -> datetime:
    found = local_datetime(day, at, tz)
    if found is not None:
        return found
    # In a gap (PEP 495): fold=0 reads the wall time with the offset from before the
    # change, which lands as far past the gap as the time was into it (02:30 -> 03:30
    # when clocks spring forward at 02:00), as RFC 5545 says.
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(UTC).astimezone(tz)


def block_slots(rule: BlockRule, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    """Yield each slot's (start, end) of `rule` on local dates `first`..`last`.

    Slots start at wall-clock times (start, start + slot + buffer, ...) so a 09:00 block
    gives 09:00 on both sides of a DST change; a start that does not exist that day is
    skipped, as is one that would leave less than the buffer after the previous slot,
    and a slot must end by the block's wall-clock end.
    """
    for start, end, _, _ in _block_slots_utc(rule, first, last):
        yield start, end


def _block_slots_utc(
    rule: BlockRule, first: date, last: date
) -> Iterator[tuple[datetime, datetime, datetime, datetime]]:
    """Yield each slot of `rule` as `block_slots` does, with its start and end in UTC too.

    Callers compare the UTC values: within the single UTC tzinfo a comparison needs
    no offset look-ups, unlike one between aware datetimes of different zones.
    """
    tz = rule.tz
    step = rule.slot_minutes + rule.buffer_minutes
    start_min = _minutes(rule.start_time)
    end_min = _minutes(rule.end_time)
    wall_starts = [time(m // 60, m % 60) for m in range(start_min, end_min - rule.slot_minutes + 1, step)]
    length = timedelta(minutes=rule.slot_minutes)
    gap = timedelta(minutes=rule.buffer_minutes)
    combine = datetime.combine
    for day in _held_days(rule, first, last):
        # Compare in UTC: aware datetimes sharing one tzinfo compare by wall clock,
        # which is wrong in the hour that repeats when clocks fall back.
        block_end = _existing(day, rule.end_time, tz).astimezone(UTC)
        # A block whose start falls in the skipped hour opens just after it; no slot
        # may start before the block does.
        free_from = _existing(day, rule.start_time, tz).astimezone(UTC)
        for at in wall_starts:
            start = combine(day, at, tz)  # fold=0, the first of a repeated wall time
            start_utc = start.astimezone(UTC)
            # Here the wall-clock comparison is the point (as in local_datetime): a
            # start whose round trip through UTC lands elsewhere does not exist that day.
            if start_utc.astimezone(tz) != start:
                continue
            # Where clocks spring forward, wall-clock steps can come closer than the
            # slot plus its buffer: such a start is dropped, never squeezed in.
            if start_utc < free_from:
                continue
            end_utc = start_utc + length
            if end_utc <= block_end:
                free_from = end_utc + gap
                yield start, end_utc.astimezone(tz), start_utc, end_utc


Interval = tuple[datetime, datetime]


class BusyIndex:
    """Sorted busy intervals (bookings) of one worker for fast overlap queries."""

    def __init__(self, busy: Iterable[Interval]) -> None:
        spans = sorted((s.astimezone(UTC), e.astimezone(UTC)) for s, e in busy)
        self._starts = [s for s, _ in spans]
        self._spans = spans
        # Running maximum of ends lets one bisect answer "does anything overlap".
        self._max_end: list[datetime] = []
        top: datetime | None = None
        for _, end in spans:
            top = end if top is None or end > top else top
            self._max_end.append(top)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Return whether any busy interval overlaps [start, end)."""
        # In UTC like the stored spans, so bisect compares without offset look-ups.
        return self._overlaps_utc(start.astimezone(UTC), end.astimezone(UTC))

    def _overlaps_utc(self, start: datetime, end: datetime) -> bool:
        i = bisect.bisect_left(self._starts, end)  # intervals starting before `end`
        return i > 0 and self._max_end[i - 1] > start


def compute_slots(
    rules: Sequence[BlockRule],
    busy: Iterable[Interval],
    first: date,
    last: date,
    now: datetime,
) -> list[Slot]:
    """Return every slot of `rules` on local dates `first`..`last`, sorted by start.

    A slot is available when it is in a `booked` block, overlaps no busy interval,
    starts at least the rule's minimum notice after `now` and on a local date no more
    than `max_days_ahead` days after today's. A `walk_in` block gives one unavailable slot per
    occurrence (its whole window), since walk-ins queue rather than book.
    """
    index = busy if isinstance(busy, BusyIndex) else BusyIndex(busy)
    now = now.astimezone(UTC)
    out: list[Slot] = []
    keys: list[datetime] = []  # each slot's start in UTC, to sort by
    for rule in rules:
        if rule.mode == "walk_in":
            for start, end in occurrences(rule, first, last):
                out.append(Slot(rule.id, rule.worker_id, start, end, "walk_in", False))
                keys.append(start.astimezone(UTC))
            continue
        earliest = now + timedelta(minutes=rule.min_notice_minutes)
        latest = rule.last_bookable_day(now)
        overlaps = index._overlaps_utc
        for start, end, start_utc, end_utc in _block_slots_utc(rule, first, last):
            ok = earliest <= start_utc and start.date() <= latest and not overlaps(start_utc, end_utc)
            out.append(Slot(rule.id, rule.worker_id, start, end, "booked", ok))
            keys.append(start_utc)
    order = sorted(range(len(out)), key=keys.__getitem__)  # stable, as list.sort(key=...) was
    return [out[i] for i in order]


def find_slot(rules: Sequence[BlockRule], start: datetime) -> tuple[BlockRule, datetime, datetime] | None:
    """Return the booked-mode rule and slot that begins exactly at `start`, if any."""
    for rule in rules:
        if rule.mode != "booked":
            continue
        day = start.astimezone(rule.tz).date()
        for s, e in block_slots(rule, day, day):
            if s.astimezone(UTC) == start.astimezone(UTC):
                return rule, s, e
    return None


def rules_overlap(a: BlockRule, b: BlockRule, horizon_days: int = 400) -> bool:
    """Return whether two blocks of one worker are ever held at the same moment.

    Checked occurrence by occurrence over their common dates (capped at `horizon_days`
    from the later start), so blocks in different zones compare correctly.
    """
    first = max(a.starts_on, b.starts_on) - timedelta(days=1)
    ends = [d for d in (a.until, b.until) if d is not None]
    last = min([*ends, first + timedelta(days=horizon_days)]) + timedelta(days=1)
    if last < first:
        return False
    b_occ = list(occurrences(b, first, last))
    if not b_occ:
        return False
    idx = BusyIndex(b_occ)
    return any(idx.overlaps(s, e) for s, e in occurrences(a, first, last))
