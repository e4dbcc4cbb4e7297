"""iCalendar output: a subscribable office-hours feed and per-booking e-mail invites.

Everything is built with the ``icalendar`` library. Local times are written with a
TZID and the calendar carries a VTIMEZONE for every TZID it uses (Outlook shows times
an hour off without one). Office-hour blocks are one recurring VEVENT each, so they
stay at the same wall-clock time across DST changes; where the RFC 5545 expansion of
that rule would differ from :func:`scheduler.rules.occurrences` (a block that touches
the hour skipped or repeated when clocks change) the feed carries an override
(RECURRENCE-ID) or an EXDATE, so every reader sees exactly the held occurrences.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from icalendar import (
    Calendar,
    Event,
    Timezone,
    TimezoneDaylight,
    TimezoneStandard,
    vCalAddress,
    vDuration,
    vRecur,
)

from scheduler.rules import WEEKDAYS, BlockRule, occurrences, zone

PRODID = "-//Lastmile//Lastmile//EN"
BLOCK_SUMMARIES: dict[str, str] = {
    "booked": "Office hours (booked slots)",
    "walk_in": "Office hours (walk-in)",
}
# How far past `now` an open-ended block is checked for DST overrides.
OVERRIDE_HORIZON = timedelta(days=2 * 366)
# Years of a zone's transitions a VTIMEZONE is derived from, after the latest date used.
VTIMEZONE_YEARS_AHEAD = 10
FEED_REFRESH = timedelta(hours=1)

InviteMethod = Literal["REQUEST", "CANCEL"]


@dataclass(frozen=True, slots=True)
class BookingEvent:
    """One booking as it appears in calendars."""

    uid: str
    sequence: int
    start: datetime
    end: datetime
    timezone: str
    cancelled: bool
    summary: str
    description: str
    url: str | None
    organizer_name: str
    organizer_email: str
    attendee_name: str | None
    attendee_email: str | None
    created: datetime
    updated: datetime

    def __post_init__(self) -> None:
        zone(self.timezone)
        for name in ("start", "end", "created", "updated"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} must be an aware datetime")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.sequence < 0:
            raise ValueError("sequence must not be negative")
        if not self.uid:
            raise ValueError("uid must not be empty")


def invite_method(booking: BookingEvent) -> InviteMethod:
    """Return the iTIP method (also the MIME ``method=``) of the booking's invite."""
    return "CANCEL" if booking.cancelled else "REQUEST"


def feed_calendar(
    name: str, rules: Sequence[BlockRule], bookings: Sequence[BookingEvent], now: datetime
) -> bytes:
    """Return a subscribable feed: one recurring VEVENT per office-hour block, one per booking."""
    now_utc = _utc(now)
    cal = _calendar(method=None)
    cal.add("x-wr-calname", name)
    cal.add("name", name)
    cal.add("refresh-interval", FEED_REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(FEED_REFRESH))
    dates: list[date] = [now_utc.date()]
    for rule in rules:
        for component in _block_components(rule, now_utc):
            cal.add_component(component)
            dates.append(_start_date(component))
    for booking in bookings:
        event = _booking_event(booking, stamp=_utc(booking.updated))
        cal.add_component(event)
        dates.append(booking.start.date())
    _add_timezones(cal, dates)
    data: bytes = cal.to_ical()
    return data


def invite_calendar(booking: BookingEvent, now: datetime) -> bytes:
    """Return an iTIP invite: METHOD:REQUEST for an active booking, METHOD:CANCEL for a cancelled one."""
    cal = _calendar(method=invite_method(booking))
    event = _booking_event(booking, stamp=_utc(now))
    organizer = vCalAddress(f"mailto:{booking.organizer_email}")
    organizer.params["CN"] = booking.organizer_name
    event.add("organizer", organizer)
    if booking.attendee_email:
        attendee = vCalAddress(f"mailto:{booking.attendee_email}")
        if booking.attendee_name:
            attendee.params["CN"] = booking.attendee_name
        attendee.params["CUTYPE"] = "INDIVIDUAL"
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "FALSE"
        event.add("attendee", attendee)
    cal.add_component(event)
    _add_timezones(cal, [booking.start.date(), _utc(now).date()])
    data: bytes = cal.to_ical()
    return data


def _calendar(method: str | None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method is not None:
        cal.add("method", method)
    return cal


def _booking_event(booking: BookingEvent, stamp: datetime) -> Event:
    tz = zone(booking.timezone)
    event = Event()
    event.add("uid", booking.uid)
    event.add("sequence", booking.sequence)
    event.add("dtstamp", stamp)
    event.add("created", _utc(booking.created))
    event.add("last-modified", _utc(booking.updated))
    event.add("dtstart", _in_zone(booking.start, tz))
    event.add("dtend", _in_zone(booking.end, tz))
    event.add("summary", booking.summary)
    if booking.description:
        event.add("description", booking.description)
    if booking.url:
        event.add("url", booking.url)
    event.add("status", "CANCELLED" if booking.cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if booking.cancelled else "OPAQUE")
    return event


def _block_components(rule: BlockRule, now: datetime) -> list[Event]:
    """Return the master VEVENT of `rule` and its overrides, or nothing if it is never held."""
    tz = rule.tz
    first_day = _first_held_day(rule)
    if first_day is None:
        return []
    nominal = datetime.combine(first_day, rule.end_time) - datetime.combine(first_day, rule.start_time)
    dtstart = datetime.combine(first_day, rule.start_time, tzinfo=tz)
    dtend = datetime.combine(first_day, rule.end_time, tzinfo=tz)
    uid = f"officehours-{rule.id}@lastmile"

    master = Event()
    master.add("uid", uid)
    master.add("dtstamp", now)
    master.add("summary", BLOCK_SUMMARIES[rule.mode])
    master.add("dtstart", dtstart)
    if _utc(dtend) - _utc(dtstart) == nominal:
        master.add("dtend", dtend)
    else:
        # The first day is a DST-change day: DTEND would give every instance its odd
        # length, so state the usual length and override the first day below.
        master.add("duration", nominal)
    recur: dict[str, object] = {"freq": "weekly", "byday": list(rule.weekdays), "wkst": "MO"}
    if rule.until is not None:
        recur["until"] = _end_of_day_utc(rule.until, tz)
    master.add("rrule", vRecur(recur))
    master.add("transp", "OPAQUE")
    master.add("status", "CONFIRMED")
    master.add("class", "PUBLIC")

    excluded = sorted(d for d in rule.exceptions if _in_pattern(rule, d, first_day))
    overrides: list[Event] = []
    last_checked = rule.until if rule.until is not None else now.astimezone(tz).date() + OVERRIDE_HORIZON
    for day in _dst_change_days(tz, first_day, last_checked):
        if not rule.occurs_on(day):
            continue
        held = list(occurrences(rule, day, day))
        expected_start = _utc(datetime.combine(day, rule.start_time, tzinfo=tz))
        if not held:
            excluded.append(day)
            continue
        start, end = held[0]
        # Readers disagree on wall times that are skipped or repeated (vobject misreads
        # them), so a day touching one always gets explicit times.
        plain = _unambiguous(day, rule.start_time, tz) and _unambiguous(day, rule.end_time, tz)
        if plain and (_utc(start), _utc(end)) == (expected_start, expected_start + nominal):
            continue
        override = Event()
        override.add("uid", uid)
        override.add("dtstamp", now)
        override.add("recurrence-id", datetime.combine(day, rule.start_time, tzinfo=tz))
        override.add("summary", BLOCK_SUMMARIES[rule.mode])
        override.add("dtstart", _in_zone(start, tz))
        override.add("dtend", _in_zone(end, tz))
        override.add("transp", "OPAQUE")
        override.add("status", "CONFIRMED")
        override.add("class", "PUBLIC")
        overrides.append(override)
    if excluded:
        master.add("exdate", [datetime.combine(d, rule.start_time, tzinfo=tz) for d in sorted(excluded)])
    return [master, *overrides]


def _first_held_day(rule: BlockRule) -> date | None:
    """Return the first local date the block is held, or None if there is none."""
    day = rule.starts_on
    # Within any 7 days past the exceptions every weekday comes round again.
    limit = max([rule.starts_on, *rule.exceptions]) + timedelta(days=7)
    if rule.until is not None:
        limit = min(limit, rule.until)
    while day <= limit:
        if rule.occurs_on(day) and next(occurrences(rule, day, day), None) is not None:
            return day
        day += timedelta(days=1)
    return None


def _in_pattern(rule: BlockRule, day: date, first_day: date) -> bool:
    """Return whether the RRULE of `rule` (from `first_day`) generates an instance on `day`."""
    if day < first_day or (rule.until is not None and day > rule.until):
        return False
    return day.weekday() in rule.weekday_numbers()


def _dst_change_days(tz: ZoneInfo, first: date, last: date) -> Iterable[date]:
    """Yield the local dates in `first`..`last` on or next to which the UTC offset changes."""
    day = first
    one = timedelta(days=1)
    before = tz.utcoffset(datetime.combine(day - one, time(12)))
    while day <= last:
        after = tz.utcoffset(datetime.combine(day + one, time(12)))
        if after != before:
            yield day
        before = tz.utcoffset(datetime.combine(day, time(12)))
        day += one


def _end_of_day_utc(day: date, tz: ZoneInfo) -> datetime:
    """Return the last second of local date `day`, in UTC (RFC 5545 UNTIL form)."""
    next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return _utc(next_midnight) - timedelta(seconds=1)


def _unambiguous(day: date, at: time, tz: ZoneInfo) -> bool:
    """Return whether wall time `at` on `day` exists exactly once in `tz`."""
    first = datetime.combine(day, at, tzinfo=tz)
    second = first.replace(fold=1)
    return first.utcoffset() == second.utcoffset()


def _in_zone(moment: datetime, tz: ZoneInfo) -> datetime:
    """Return `moment` as local time in `tz`, or in UTC if TZID wall time cannot name it.

    A wall time that occurs twice is read as its first occurrence (RFC 5545), so an
    instant in the repeated hour is written in UTC to stay exact.
    """
    local = moment.astimezone(tz).replace(microsecond=0)
    if _utc(local.replace(fold=0)) == _utc(local):
        return local.replace(fold=0)
    return _utc(local)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return moment.astimezone(UTC)


def _start_date(event: Event) -> date:
    start = event.decoded("dtstart")
    return start.date() if isinstance(start, datetime) else start


def _add_timezones(cal: Calendar, dates: Iterable[date]) -> None:
    """Add a VTIMEZONE, first in `cal`, for every TZID it uses."""
    known = list(dates)
    first_year, last_year = min(known).year - 1, max(known).year + VTIMEZONE_YEARS_AHEAD
    for tzid in sorted(cal.get_missing_tzids(), reverse=True):
        cal.subcomponents.insert(0, _vtimezone(tzid, first_year, last_year))


@dataclass(frozen=True, slots=True)
class _Transition:
    onset: datetime  # naive wall time just before the change (RFC 5545 VTIMEZONE DTSTART)
    offset_from: timedelta
    offset_to: timedelta
    name: str


# icalendar's own ``Timezone.from_tzid`` / ``add_missing_timezones`` write each
# observance as one DTSTART plus an RDATE list. Outlook ignores such VTIMEZONEs (and
# then shows times an hour off), vobject keeps only the first value of an RDATE list,
# and the DAYLIGHT onsets it writes are the wall time after the change, an hour late.
# So when every offset change over the years a calendar needs follows a yearly rule
# ("second Sunday of March at 02:00") the zone is written as Google and Outlook write
# it: one observance per rule, from 1970, with FREQ=YEARLY;BYMONTH=..;BYDAY=nSU.
# Zones with irregular changes fall back to the exact onsets, one RDATE per line.
def _vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    """Return a VTIMEZONE for `tzid` that is exact over `first_year`..`last_year`."""
    tz = zone(tzid)
    changes = _transitions(tzid, first_year, last_year)
    vtz = Timezone()
    vtz.add("tzid", tzid)
    if not changes:
        moment = datetime(first_year, 7, 1, tzinfo=tz)
        offset = moment.utcoffset() or timedelta(0)
        vtz.add_component(_observance(datetime(1970, 1, 1), offset, offset, moment.tzname() or tzid))
        return vtz
    groups: dict[tuple[timedelta, timedelta, str], list[datetime]] = {}
    for change in changes:
        groups.setdefault((change.offset_from, change.offset_to, change.name), []).append(change.onset)
    rules = {key: _yearly_rule(onsets, first_year, last_year) for key, onsets in groups.items()}
    if all(rule is not None for rule in rules.values()):
        for (offset_from, offset_to, name), rule in rules.items():
            assert rule is not None
            month, weekday, nth, at = rule
            onset = _nth_weekday(1970, month, weekday, nth, at)
            observance = _observance(onset, offset_from, offset_to, name)
            observance.add("rrule", vRecur(freq="YEARLY", bymonth=month, byday=f"{nth}{WEEKDAYS[weekday]}"))
            vtz.add_component(observance)
        return vtz
    start = datetime(first_year, 1, 1)
    before = start.replace(tzinfo=tz)
    offset = before.utcoffset() or timedelta(0)
    vtz.add_component(_observance(start, offset, offset, before.tzname() or tzid))
    for (offset_from, offset_to, name), onsets in groups.items():
        observance = _observance(onsets[0], offset_from, offset_to, name)
        for onset in onsets[1:]:
            observance.add("rdate", onset)
        vtz.add_component(observance)
    return vtz


def _observance(
    onset: datetime, offset_from: timedelta, offset_to: timedelta, name: str
) -> TimezoneStandard | TimezoneDaylight:
    observance = TimezoneDaylight() if offset_to > offset_from else TimezoneStandard()
    observance.add("dtstart", onset)
    observance.add("tzoffsetfrom", offset_from)
    observance.add("tzoffsetto", offset_to)
    observance.add("tzname", name)
    return observance


_YearlyRule = tuple[int, int, int, time]  # month, weekday (0 = Monday), nth (-1 = last), wall time


def _yearly_rule(onsets: list[datetime], first_year: int, last_year: int) -> _YearlyRule | None:
    """Return (month, weekday, nth, time) that gives exactly `onsets`, one a year, or None."""
    if sorted(o.year for o in onsets) != list(range(first_year, last_year + 1)):
        return None
    candidates: set[_YearlyRule] | None = None
    for onset in onsets:
        day = onset.date()
        found: set[_YearlyRule] = set()
        if day.day <= 28:
            found.add((day.month, day.weekday(), (day.day - 1) // 7 + 1, onset.time()))
        if (day + timedelta(days=7)).month != day.month:
            found.add((day.month, day.weekday(), -1, onset.time()))
        candidates = found if candidates is None else candidates & found
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[2])  # "last" (-1) when it fits, as zone rules say


def _nth_weekday(year: int, month: int, weekday: int, nth: int, at: time) -> datetime:
    """Return the `nth` (-1: last) `weekday` of `month` in `year`, at `at`."""
    if nth > 0:
        first = date(year, month, 1)
        day = first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    else:
        last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
        day = last - timedelta(days=(last.weekday() - weekday) % 7)
    return datetime.combine(day, at)


@lru_cache(maxsize=256)
def _transitions(tzid: str, first_year: int, last_year: int) -> tuple[_Transition, ...]:
    """Return every UTC-offset change of `tzid` in `first_year`..`last_year` (by local year)."""
    tz = zone(tzid)
    found: list[_Transition] = []
    moment = datetime(first_year - 1, 12, 30, tzinfo=UTC)
    stop = datetime(last_year + 1, 1, 2, tzinfo=UTC)
    step = timedelta(days=1)
    offset = moment.astimezone(tz).utcoffset()
    while moment < stop:
        later = moment + step
        new_offset = later.astimezone(tz).utcoffset()
        if new_offset != offset and offset is not None and new_offset is not None:
            low, high = int(moment.timestamp()), int(later.timestamp())  # old offset at low, new at high
            while high - low > 1:
                mid = (low + high) // 2
                if datetime.fromtimestamp(mid, tz).utcoffset() == offset:
                    low = mid
                else:
                    high = mid
            changed = datetime.fromtimestamp(high, UTC)
            onset = (changed + offset).replace(tzinfo=None)
            if first_year <= onset.year <= last_year:
                found.append(_Transition(onset, offset, new_offset, changed.astimezone(tz).tzname() or tzid))
        offset = new_offset
        moment = later
    return tuple(found)
