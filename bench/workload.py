"""Realistic, seeded office hours and bookings for the slot benchmarks."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from scheduler.rules import BlockRule, Interval, compute_slots, zone


@dataclass(frozen=True, slots=True)
class Worker:
    """One caseworker's office hours and existing bookings (busy intervals, in UTC)."""

    worker_id: int
    timezone: str
    rules: tuple[BlockRule, ...]
    busy: tuple[Interval, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    """Workers and the local dates to compute their slots for, at one moment `now`."""

    name: str
    workers: tuple[Worker, ...]
    first: date
    last: date
    now: datetime


# (weekdays, start, end, slot, buffer, mode); combined so that no two blocks of a worker overlap.
_Template = tuple[tuple[str, ...], time, time, int, int, str]
MORNINGS: _Template = (("MO", "TU", "WE", "TH", "FR"), time(9), time(12), 30, 0, "booked")
TUE_THU_AFTERNOONS: _Template = (("TU", "TH"), time(13), time(16, 30), 45, 15, "booked")
MON_WED_FRI_AFTERNOONS: _Template = (("MO", "WE", "FR"), time(13, 30), time(17), 20, 10, "booked")
WALK_IN_WEDNESDAY: _Template = (("WE",), time(14), time(16), 30, 0, "walk_in")
SATURDAY_CLINIC: _Template = (("SA",), time(10), time(13), 60, 0, "booked")
COMBINATIONS: tuple[tuple[_Template, ...], ...] = (
    (MORNINGS, TUE_THU_AFTERNOONS),
    (MORNINGS, TUE_THU_AFTERNOONS, WALK_IN_WEDNESDAY),
    (MORNINGS, MON_WED_FRI_AFTERNOONS),
    (MORNINGS, MON_WED_FRI_AFTERNOONS, SATURDAY_CLINIC),
    (TUE_THU_AFTERNOONS, SATURDAY_CLINIC),
)
# A US/UK agency with a few staff further afield; Arizona keeps no DST.
ZONES: tuple[str, ...] = (
    "America/Los_Angeles",
    "America/Los_Angeles",
    "America/Denver",
    "America/Phoenix",
    "America/Chicago",
    "America/New_York",
    "America/New_York",
    "Europe/London",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Berlin",
    "Pacific/Honolulu",
)


def _rule(rule_id: int, worker_id: int, tz: str, tpl: _Template, **kw: Any) -> BlockRule:
    weekdays, start, end, slot, buffer, mode = tpl
    return BlockRule(
        id=rule_id,
        worker_id=worker_id,
        weekdays=weekdays,
        start_time=start,
        end_time=end,
        timezone=tz,
        slot_minutes=slot,
        buffer_minutes=buffer,
        mode="walk_in" if mode == "walk_in" else "booked",
        starts_on=date(2025, 9, 1),
        **kw,
    )


def _book(rng: random.Random, worker: Worker, first: date, last: date, now: datetime, count: int) -> Worker:
    """Return `worker` with `count` bookings: mostly whole slots, a few odd lengths (old block sizes)."""
    slots = [s for s in compute_slots(worker.rules, [], first, last, now) if s.mode == "booked"]
    chosen = sorted(rng.sample(slots, min(count, len(slots))), key=lambda s: s.start)
    busy: list[Interval] = []
    for i, s in enumerate(chosen):
        start, end = s.start.astimezone(UTC), s.end.astimezone(UTC)
        if i % 9 == 8:  # a booking made under earlier office hours: 15 minutes off, an hour long
            start, end = start + timedelta(minutes=15), start + timedelta(minutes=75)
        if not any(b0 < end and start < b1 for b0, b1 in busy):
            busy.append((start, end))
    return Worker(worker.worker_id, worker.timezone, worker.rules, tuple(busy))


def one_worker() -> Scenario:
    """A Los Angeles caseworker over 8 weeks spanning the March DST change: three blocks, ~40 bookings."""
    tz = "America/Los_Angeles"
    first, last = date(2026, 3, 2), date(2026, 4, 26)
    now = datetime(2026, 3, 2, 8, 0, tzinfo=zone(tz))
    rules = (
        _rule(
            1,
            1,
            tz,
            MORNINGS,
            min_notice_minutes=120,
            max_days_ahead=45,
            exceptions=frozenset({date(2026, 3, 16), date(2026, 3, 31), date(2026, 4, 10)}),
        ),
        _rule(
            2, 1, tz, TUE_THU_AFTERNOONS, min_notice_minutes=24 * 60, exceptions=frozenset({date(2026, 4, 2)})
        ),
        _rule(3, 1, tz, WALK_IN_WEDNESDAY),
    )
    rng = random.Random(20260302)
    worker = _book(rng, Worker(1, tz, rules, ()), first, last, now, 44)
    name = "1 worker, 8 weeks (Los Angeles, across the 8 March DST change)"
    return Scenario(name, (worker,), first, last, now)


def many_workers(name: str, first: date, count: int = 500, seed: int = 500) -> Scenario:
    """`count` workers over the 7 local dates from `first`, spread over ZONES, ~30% booked."""
    rng = random.Random(seed)
    last = first + timedelta(days=6)
    now = datetime.combine(first - timedelta(days=1), time(12), UTC)
    workers = []
    rule_id = 0
    for worker_id in range(1, count + 1):
        tz = ZONES[worker_id % len(ZONES)]
        rules = []
        for tpl in rng.choice(COMBINATIONS):
            rule_id += 1
            days_off = frozenset(
                first + timedelta(days=rng.randrange(7)) for _ in range(rng.choice((0, 0, 1, 2)))
            )
            rules.append(
                _rule(
                    rule_id,
                    worker_id,
                    tz,
                    tpl,
                    min_notice_minutes=rng.choice((0, 60, 24 * 60)),
                    exceptions=days_off,
                )
            )
        worker = Worker(worker_id, tz, tuple(rules), ())
        workers.append(_book(rng, worker, first, last, now, rng.randrange(4, 16)))
    return Scenario(name, tuple(workers), first, last, now)


def big_scenarios() -> list[Scenario]:
    """500 workers: an ordinary week, and the weeks North America and Europe change their clocks."""
    return [
        many_workers("500 workers, ordinary week (13-19 Apr 2026)", date(2026, 4, 13)),
        many_workers("500 workers, US spring-forward week (8-14 Mar 2026)", date(2026, 3, 8)),
        many_workers("500 workers, EU fall-back week (25-31 Oct 2026)", date(2026, 10, 25)),
    ]
