"""Slot computation as scheduler/rules.py had it before its speed-up (commit fb0dd45).

Later changes of meaning are carried over (391e95b: no slot starts before a block that
opens after the skipped hour), so this copy and the real code must give the same slots.

Kept so that one bench run measures both versions on the same machine under the same
load (a before/after ratio, not numbers from two different days), and checks that the
faster code gives exactly the same slots, down to each datetime's offset and fold.
Only the slot loop is copied; rules, zones, the Slot type and the helper that places
a block's start and end (`_existing`) are the real ones, so semantics stay in step.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta

from scheduler.rules import BlockRule, Interval, Slot, _existing, local_datetime


def occurrences(rule: BlockRule, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    tz = rule.tz
    day = max(first, rule.starts_on)
    stop = last if rule.until is None else min(last, rule.until)
    while day <= stop:
        if rule.occurs_on(day):
            start = _existing(day, rule.start_time, tz)
            end = _existing(day, rule.end_time, tz)
            if start.astimezone(UTC) < end.astimezone(UTC):
                yield start, end
        day += timedelta(days=1)


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def block_slots(rule: BlockRule, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
    tz = rule.tz
    step = rule.slot_minutes + rule.buffer_minutes
    start_min = _minutes(rule.start_time)
    end_min = _minutes(rule.end_time)
    offsets = range(start_min, end_min - rule.slot_minutes + 1, step)
    length = timedelta(minutes=rule.slot_minutes)
    day = max(first, rule.starts_on)
    stop = last if rule.until is None else min(last, rule.until)
    gap = timedelta(minutes=rule.buffer_minutes)
    while day <= stop:
        if rule.occurs_on(day):
            block_end = _existing(day, rule.end_time, tz).astimezone(UTC)
            free_from = _existing(day, rule.start_time, tz).astimezone(UTC)  # from 391e95b
            for minute in offsets:
                start = local_datetime(day, time(minute // 60, minute % 60), tz)
                if start is None:
                    continue
                start_utc = start.astimezone(UTC)
                if start_utc < free_from:
                    continue
                end_utc = start_utc + length
                if end_utc <= block_end:
                    free_from = end_utc + gap
                    yield start, end_utc.astimezone(tz)
        day += timedelta(days=1)


class BusyIndex:
    def __init__(self, busy: Iterable[Interval]) -> None:
        spans = sorted((s.astimezone(UTC), e.astimezone(UTC)) for s, e in busy)
        self._starts = [s for s, _ in spans]
        self._max_end: list[datetime] = []
        top: datetime | None = None
        for _, end in spans:
            top = end if top is None or end > top else top
            self._max_end.append(top)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        i = bisect.bisect_left(self._starts, end)
        return i > 0 and self._max_end[i - 1] > start


def compute_slots(
    rules: Sequence[BlockRule],
    busy: Iterable[Interval],
    first: date,
    last: date,
    now: datetime,
) -> list[Slot]:
    index = BusyIndex(busy)
    now = now.astimezone(UTC)
    out: list[Slot] = []
    for rule in rules:
        if rule.mode == "walk_in":
            for start, end in occurrences(rule, first, last):
                out.append(Slot(rule.id, rule.worker_id, start, end, "walk_in", False))
            continue
        earliest = now + timedelta(minutes=rule.min_notice_minutes)
        latest = rule.last_bookable_day(now)
        for start, end in block_slots(rule, first, last):
            ok = earliest <= start and start.date() <= latest and not index.overlaps(start, end)
            out.append(Slot(rule.id, rule.worker_id, start, end, "booked", ok))
    out.sort(key=lambda s: s.start.astimezone(UTC))
    return out
