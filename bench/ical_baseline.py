"""The baseline: the same office hours expanded by an independent path.

Each worker's iCalendar feed (scheduler.ical.feed_calendar, made once beforehand, as
a subscriber would fetch it) is parsed by `icalendar`, its recurring office-hour
events are expanded by `recurring_ical_events` (RFC 5545 RRULE/EXDATE/RECURRENCE-ID
logic that shares no code with scheduler.rules), and each occurrence is cut into
slots naively: wall-clock steps of slot + buffer, a linear scan of the bookings.
The result must be the very same slots as compute_slots gives, which the bench checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import recurring_ical_events
from icalendar import Calendar

from bench.workload import Scenario, Worker
from scheduler.ical import feed_calendar
from scheduler.rules import BlockRule, Slot

# (block id, start UTC, end UTC, mode, available): what both paths must agree on.
SlotKey = tuple[int, datetime, datetime, str, bool]


@dataclass(frozen=True, slots=True)
class Feed:
    worker: Worker
    ics: bytes
    rules: dict[str, BlockRule]  # by the UID of the block's VEVENT


def feeds(scenario: Scenario) -> list[Feed]:
    """Return each worker's calendar feed (office hours only; the bookings come separately)."""
    out = []
    for w in scenario.workers:
        ics = feed_calendar(f"Worker {w.worker_id}", w.rules, [], scenario.now)
        out.append(Feed(w, ics, {f"officehours-{r.id}@lastmile": r for r in w.rules}))
    return out


def expand(feed: Feed, first: date, last: date, now: datetime) -> list[SlotKey]:
    """Return the worker's slots on the rules' local dates `first`..`last`, by way of the feed."""
    cal = Calendar.from_ical(feed.ics)
    # A day either side, then keep occurrences by their local date, as compute_slots does.
    events = recurring_ical_events.of(cal).between(first - timedelta(days=1), last + timedelta(days=2))
    busy = [(s.astimezone(UTC), e.astimezone(UTC)) for s, e in feed.worker.busy]
    now_utc = now.astimezone(UTC)
    out: list[SlotKey] = []
    for event in events:
        rule = feed.rules.get(str(event.get("UID")))
        if rule is None:
            continue
        start: datetime = event.decoded("DTSTART")
        end: datetime = event.decoded("DTEND")
        if not first <= start.date() <= last:
            continue
        if rule.mode == "walk_in":
            out.append((rule.id, start.astimezone(UTC), end.astimezone(UTC), "walk_in", False))
            continue
        earliest = now_utc + timedelta(minutes=rule.min_notice_minutes)
        latest_day = now.astimezone(start.tzinfo).date() + timedelta(days=rule.max_days_ahead)
        length = timedelta(minutes=rule.slot_minutes)
        step = length + timedelta(minutes=rule.buffer_minutes)
        at = start
        while at + length <= end:  # aware arithmetic in one zone: wall-clock steps
            s_utc, e_utc = at.astimezone(UTC), (at + length).astimezone(UTC)
            taken = any(b0 < e_utc and s_utc < b1 for b0, b1 in busy)
            ok = s_utc >= earliest and at.date() <= latest_day and not taken
            out.append((rule.id, s_utc, e_utc, "booked", ok))
            at += step
    out.sort(key=lambda k: (k[1], k[0]))
    return out


def keys(slots: list[Slot]) -> list[SlotKey]:
    """Return compute_slots' answer in the baseline's terms, in the same order."""
    out: list[SlotKey] = [
        (s.block_id, s.start.astimezone(UTC), s.end.astimezone(UTC), s.mode, s.available) for s in slots
    ]
    out.sort(key=lambda k: (k[1], k[0]))
    return out
