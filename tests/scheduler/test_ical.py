"""The iCalendar feed and invites, read back with two independent parsers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import vobject

from scheduler.ical import PRODID, BookingEvent, feed_calendar, invite_calendar, invite_method
from scheduler.rules import BlockRule, occurrences

LA = "America/Los_Angeles"
LONDON = "Europe/London"
NOW = datetime(2026, 2, 1, 12, tzinfo=UTC)

Span = tuple[datetime, datetime]


def make_rule(
    *,
    id: int = 1,
    weekdays: tuple[str, ...] = ("TU", "TH"),
    start: time = time(9),
    end: time = time(12),
    timezone: str = LA,
    starts_on: date = date(2026, 3, 1),
    until: date | None = date(2026, 3, 31),
    exceptions: frozenset[date] = frozenset(),
    mode: str = "booked",
) -> BlockRule:
    return BlockRule(
        id=id,
        worker_id=1,
        weekdays=weekdays,
        start_time=start,
        end_time=end,
        timezone=timezone,
        slot_minutes=30,
        buffer_minutes=0,
        mode="walk_in" if mode == "walk_in" else "booked",
        starts_on=starts_on,
        until=until,
        exceptions=exceptions,
    )


def make_booking(
    *,
    start: datetime = datetime(2026, 3, 10, 17, tzinfo=UTC),
    minutes: int = 30,
    timezone: str = LA,
    cancelled: bool = False,
    sequence: int = 0,
    attendee: bool = True,
    url: str | None = "https://lastmile.example/b/abc",
) -> BookingEvent:
    return BookingEvent(
        uid="booking-6f1c2a0e-0000-4000-8000-000000000001@lastmile",
        sequence=sequence,
        start=start,
        end=start + timedelta(minutes=minutes),
        timezone=timezone,
        cancelled=cancelled,
        summary="Office hours with Ana",
        description="Bring your letter; we will go through it, together.\nSecond line.",
        url=url,
        organizer_name="Ana Wörker, Case Team",
        organizer_email="ana@agency.example",
        attendee_name="Sam Client" if attendee else None,
        attendee_email="sam@client.example" if attendee else None,
        created=datetime(2026, 2, 1, 9, tzinfo=UTC),
        updated=datetime(2026, 2, 2, 9, tzinfo=UTC),
    )


def utc_spans(spans: Iterator[Span] | list[Span]) -> list[Span]:
    return sorted((s.astimezone(UTC), e.astimezone(UTC)) for s, e in spans)


def midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))


def parse(data: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(data)


def rie_spans(data: bytes, uid: str, first: date, last: date, tz: str) -> list[Span]:
    """Expand `uid` with recurring_ical_events over local dates first..last."""
    a = midnight(first, tz)
    b = midnight(last + timedelta(days=1), tz)
    out: list[Span] = []
    for event in recurring_ical_events.of(parse(data)).between(a, b):
        if str(event["UID"]) != uid:
            continue
        start, end = event["DTSTART"].dt, event["DTEND"].dt
        assert isinstance(start, datetime) and isinstance(end, datetime)
        assert start.tzinfo is not None and end.tzinfo is not None
        out.append((start, end))
    return utc_spans(out)


def vobject_starts(data: bytes, uid: str, first: date, last: date, tz: str) -> list[datetime]:
    """Expand `uid` with vobject's rruleset, applying RECURRENCE-ID overrides."""
    cal = read_vobject(data)
    masters = [ev for ev in cal.vevent_list if ev.uid.value == uid and not hasattr(ev, "recurrence_id")]
    assert len(masters) == 1
    overrides: dict[datetime, datetime] = {
        ev.recurrence_id.value.astimezone(UTC): ev.dtstart.value.astimezone(UTC)
        for ev in cal.vevent_list
        if ev.uid.value == uid and hasattr(ev, "recurrence_id")
    }
    a = midnight(first, tz)
    b = midnight(last + timedelta(days=1), tz)
    found = masters[0].getrruleset().between(a, b, inc=True)
    return sorted(overrides.get(s.astimezone(UTC), s.astimezone(UTC)) for s in found)


def read_vobject(data: bytes) -> Any:
    """Parse `data` with vobject, using the calendar's own VTIMEZONEs.

    vobject keeps a process-wide TZID map filled by the first VTIMEZONE (or pytz zone)
    it meets for a name; clear our names so each parse reads the VTIMEZONE we wrote.
    """
    tzid_map: dict[str, Any] = getattr(vobject.icalendar, "__tzidMap")
    for tzid in set(re.findall(r"TZID[:=]([^:;\r\n]+)", data.decode())) - {"UTC"}:
        tzid_map.pop(tzid, None)
    return vobject.readOne(data.decode())


def uid_of(rule: BlockRule) -> str:
    return f"officehours-{rule.id}@lastmile"


def components(data: bytes, name: str) -> list[Any]:
    return [c for c in parse(data).walk() if c.name == name]


# Blocks spanning each DST change of 2026 in both zones, with an exception and an until.
DST_CASES = [
    pytest.param(LA, date(2026, 3, 1), date(2026, 3, 19), date(2026, 3, 5), id="LA-spring-forward"),
    pytest.param(LA, date(2026, 10, 20), date(2026, 11, 12), date(2026, 11, 5), id="LA-fall-back"),
    pytest.param(LONDON, date(2026, 3, 17), date(2026, 4, 9), date(2026, 3, 26), id="London-spring-forward"),
    pytest.param(LONDON, date(2026, 10, 13), date(2026, 11, 5), date(2026, 10, 29), id="London-fall-back"),
]


@pytest.mark.parametrize(("tz", "starts_on", "until", "skipped"), DST_CASES)
def test_feed_expands_to_exactly_the_held_occurrences(
    tz: str, starts_on: date, until: date, skipped: date
) -> None:
    rule = make_rule(timezone=tz, starts_on=starts_on, until=until, exceptions=frozenset({skipped}))
    data = feed_calendar("Ana", [rule], [], NOW)
    first, last = starts_on - timedelta(days=10), until + timedelta(days=21)
    expected = utc_spans(occurrences(rule, first, last))

    assert len(expected) >= 5
    assert all(s.astimezone(ZoneInfo(tz)).date() != skipped for s, _ in expected)
    assert max(s for s, _ in expected).astimezone(ZoneInfo(tz)).date() <= until
    assert rie_spans(data, uid_of(rule), first, last, tz) == expected
    assert vobject_starts(data, uid_of(rule), first, last, tz) == [s for s, _ in expected]


@pytest.mark.parametrize(("tz", "starts_on", "until", "skipped"), DST_CASES)
def test_tuesday_nine_stays_nine_local_across_the_change(
    tz: str, starts_on: date, until: date, skipped: date
) -> None:
    rule = make_rule(weekdays=("TU",), timezone=tz, starts_on=starts_on, until=until)
    data = feed_calendar("Ana", [rule], [], NOW)
    spans = rie_spans(data, uid_of(rule), starts_on, until, tz)
    local = [(s.astimezone(ZoneInfo(tz)), e.astimezone(ZoneInfo(tz))) for s, e in spans]

    assert [(s.weekday(), s.time(), e.time()) for s, e in local] == [(1, time(9), time(12))] * len(local)
    offsets = {s.utcoffset() for s, _ in local}
    assert len(offsets) == 2, "the block should sit on both sides of the change"
    assert len({s.hour for s, _ in spans}) == 2, "so the UTC hour moves while the local hour does not"


def test_open_ended_block_matches_over_a_whole_year() -> None:
    rules = [
        make_rule(id=1, weekdays=("MO", "WE", "FR"), until=None, exceptions=frozenset({date(2026, 7, 3)})),
        make_rule(id=2, weekdays=("TH",), timezone=LONDON, start=time(13, 30), end=time(16), until=None),
    ]
    data = feed_calendar("Ana", rules, [], NOW)
    for rule in rules:
        first, last = date(2026, 1, 1), date(2026, 12, 31)
        expected = utc_spans(occurrences(rule, first, last))
        assert rie_spans(data, uid_of(rule), first, last, rule.timezone) == expected
        assert vobject_starts(data, uid_of(rule), first, last, rule.timezone) == [s for s, _ in expected]


@pytest.mark.parametrize(
    ("tz", "start", "end"),
    [
        pytest.param(LA, time(1), time(4), id="LA-spans-both-changes"),
        pytest.param(LA, time(2, 30), time(5), id="LA-starts-in-skipped-hour"),
        pytest.param(LA, time(1, 30), time(3), id="LA-starts-in-repeated-hour"),
        pytest.param(LONDON, time(0, 30), time(3), id="London-spans-both-changes"),
        pytest.param(LONDON, time(1), time(1, 30), id="London-block-inside-skipped-hour"),
    ],
)
def test_blocks_touching_the_changed_hour_still_match(tz: str, start: time, end: time) -> None:
    rule = make_rule(
        weekdays=("SU",), timezone=tz, start=start, end=end, starts_on=date(2026, 1, 4), until=None
    )
    data = feed_calendar("Ana", [rule], [], NOW)
    first, last = date(2026, 1, 1), date(2026, 12, 31)
    expected = utc_spans(occurrences(rule, first, last))

    assert rie_spans(data, uid_of(rule), first, last, tz) == expected
    assert vobject_starts(data, uid_of(rule), first, last, tz) == [s for s, _ in expected]


def test_block_starting_on_a_change_day_keeps_its_usual_length() -> None:
    rule = make_rule(weekdays=("SU",), start=time(1), end=time(4), starts_on=date(2026, 3, 8), until=None)
    data = feed_calendar("Ana", [rule], [], NOW)
    first, last = date(2026, 3, 1), date(2026, 4, 30)

    spans = rie_spans(data, uid_of(rule), first, last, LA)
    assert spans == utc_spans(occurrences(rule, first, last))
    assert [e - s for s, e in spans[1:]] == [timedelta(hours=3)] * (len(spans) - 1)


def test_until_is_utc_end_of_the_local_day_and_exdates_carry_the_zone() -> None:
    rule = make_rule(until=date(2026, 3, 31), exceptions=frozenset({date(2026, 3, 12), date(2026, 3, 14)}))
    data = feed_calendar("Ana", [rule], [], NOW)
    text = data.decode()

    assert re.search(r"^RRULE:FREQ=WEEKLY;UNTIL=20260401T065959Z;BYDAY=TU,TH", text, re.M)
    (event,) = components(data, "VEVENT")
    until = event["RRULE"]["UNTIL"][0]
    assert until.tzinfo is not None and until.utcoffset() == timedelta(0)
    # Only the exception on a held weekday is listed (14 March is a Saturday).
    assert re.findall(r"^EXDATE[^\r\n]*", text, re.M) == [f"EXDATE;TZID={LA}:20260312T090000"]
    assert event["DTSTART"].params["TZID"] == LA
    assert event.decoded("DTSTART") == datetime(2026, 3, 3, 9, tzinfo=ZoneInfo(LA))
    assert event.decoded("DTEND") == datetime(2026, 3, 3, 12, tzinfo=ZoneInfo(LA))


def test_first_weekday_that_is_an_exception_is_not_the_dtstart() -> None:
    rule = make_rule(exceptions=frozenset({date(2026, 3, 3)}))
    (event,) = components(feed_calendar("Ana", [rule], [], NOW), "VEVENT")
    assert event.decoded("DTSTART") == datetime(2026, 3, 5, 9, tzinfo=ZoneInfo(LA))
    assert "EXDATE" not in event


def test_block_that_is_never_held_is_omitted() -> None:
    never = make_rule(id=7, weekdays=("FR",), starts_on=date(2026, 3, 2), until=date(2026, 3, 5))
    all_cancelled = make_rule(
        id=8, weekdays=("MO",), starts_on=date(2026, 3, 2), until=date(2026, 3, 9),
        exceptions=frozenset({date(2026, 3, 2), date(2026, 3, 9)}),
    )  # fmt: skip
    held = make_rule(id=9)
    data = feed_calendar("Ana", [never, all_cancelled, held], [], NOW)

    assert [str(e["UID"]) for e in components(data, "VEVENT")] == [uid_of(held)]
    assert b"officehours-7@" not in data and b"officehours-8@" not in data


def test_feed_header_modes_and_crlf() -> None:
    rules = [make_rule(id=1), make_rule(id=2, mode="walk_in", weekdays=("WE",))]
    data = feed_calendar("Ana's office hours", rules, [], NOW)
    cal = parse(data)

    assert str(cal["PRODID"]) == PRODID == "-//Lastmile//Lastmile//EN"
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["X-WR-CALNAME"]) == "Ana's office hours"
    assert "METHOD" not in cal
    summaries = {str(e["UID"]): str(e["SUMMARY"]) for e in components(data, "VEVENT")}
    assert summaries == {
        "officehours-1@lastmile": "Office hours (booked slots)",
        "officehours-2@lastmile": "Office hours (walk-in)",
    }
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))


def test_every_tzid_has_its_vtimezone() -> None:
    rules = [make_rule(id=1, timezone=LA), make_rule(id=2, timezone=LONDON)]
    bookings = [
        replace(make_booking(timezone="Asia/Kolkata"), uid="booking-1@lastmile"),
        replace(make_booking(timezone=LONDON), uid="booking-2@lastmile"),
    ]
    data = feed_calendar("Ana", rules, bookings, NOW)
    cal = parse(data)

    used = set(re.findall(r";TZID=([^:;]+)", data.decode().replace("\r\n ", "")))
    assert used == {LA, LONDON, "Asia/Kolkata"}
    assert sorted(str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")) == sorted(used)
    assert cal.get_missing_tzids() == set()
    read_vobject(data)  # vobject accepts the VTIMEZONEs it is given


def test_bookings_in_the_feed() -> None:
    active = make_booking()
    cancelled = replace(active, uid="booking-2@lastmile", cancelled=True, sequence=3)
    data = feed_calendar("Ana", [], [active, cancelled], NOW)
    events = {str(e["UID"]): e for e in components(data, "VEVENT")}

    ev = events[active.uid]
    assert str(ev["STATUS"]) == "CONFIRMED"
    assert ev["SEQUENCE"] == 0
    assert ev["DTSTART"].params["TZID"] == LA
    assert ev.decoded("DTSTART") == active.start
    assert ev.decoded("DTSTART").astimezone(ZoneInfo(LA)).hour == 10
    assert ev.decoded("DTEND") == active.end
    assert str(ev["URL"]) == active.url
    assert str(ev["DESCRIPTION"]) == active.description
    assert str(ev["SUMMARY"]) == active.summary
    assert ev.decoded("DTSTAMP") == active.updated
    assert "ATTENDEE" not in ev and "METHOD" not in parse(data)

    ev = events["booking-2@lastmile"]
    assert str(ev["STATUS"]) == "CANCELLED"
    assert ev["SEQUENCE"] == 3

    (found,) = [
        e
        for e in recurring_ical_events.of(parse(data)).between(datetime(2026, 3, 10), datetime(2026, 3, 11))
        if str(e["UID"]) == active.uid
    ]
    assert found["DTSTART"].dt == active.start
    v: Any = read_vobject(data)
    assert {e.uid.value for e in v.vevent_list} == {active.uid, "booking-2@lastmile"}


def test_invite_request() -> None:
    booking = make_booking(sequence=2)
    data = invite_calendar(booking, NOW)
    cal = parse(data)

    assert invite_method(booking) == "REQUEST"
    assert str(cal["METHOD"]) == "REQUEST"
    (ev,) = cal.walk("VEVENT")
    assert str(ev["UID"]) == booking.uid
    assert ev["SEQUENCE"] == 2
    assert str(ev["STATUS"]) == "CONFIRMED"
    assert ev.decoded("DTSTAMP") == NOW
    assert ev.decoded("DTSTART") == booking.start
    assert ev.decoded("DTEND") == booking.end
    assert ev["DTSTART"].params["TZID"] == LA
    assert ev.decoded("CREATED") == booking.created
    assert ev.decoded("LAST-MODIFIED") == booking.updated
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == [LA]

    organizer = ev["ORGANIZER"]
    assert str(organizer) == "mailto:ana@agency.example"
    assert organizer.params["CN"] == "Ana Wörker, Case Team"
    attendee = ev["ATTENDEE"]
    assert str(attendee) == "mailto:sam@client.example"
    assert {k: attendee.params[k] for k in ("CN", "ROLE", "PARTSTAT", "RSVP")} == {
        "CN": "Sam Client",
        "ROLE": "REQ-PARTICIPANT",
        "PARTSTAT": "NEEDS-ACTION",
        "RSVP": "FALSE",
    }

    v: Any = read_vobject(data)
    assert v.method.value == "REQUEST"
    assert v.vevent.uid.value == booking.uid
    assert v.vevent.dtstart.value.astimezone(UTC) == booking.start
    assert v.vevent.organizer.params["CN"] == ["Ana Wörker, Case Team"]


def test_invite_cancel_keeps_uid_and_takes_the_higher_sequence() -> None:
    request = make_booking(sequence=1)
    cancel = make_booking(sequence=2, cancelled=True)
    sent = parse(invite_calendar(request, NOW)).walk("VEVENT")[0]
    data = invite_calendar(cancel, NOW + timedelta(hours=1))
    cal = parse(data)

    assert invite_method(cancel) == "CANCEL"
    assert str(cal["METHOD"]) == "CANCEL"
    (ev,) = cal.walk("VEVENT")
    assert str(ev["STATUS"]) == "CANCELLED"
    assert str(ev["UID"]) == str(sent["UID"])
    assert ev.decoded("SEQUENCE") == 2
    assert sent.decoded("SEQUENCE") == 1
    assert ev.decoded("DTSTART") == cancel.start
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == [LA]

    v: Any = read_vobject(data)
    assert v.method.value == "CANCEL"
    assert v.vevent.status.value == "CANCELLED"
    assert v.vevent.dtstart.value.astimezone(UTC) == cancel.start


def test_invite_without_attendee_or_url() -> None:
    data = invite_calendar(make_booking(attendee=False, url=None), NOW)
    (ev,) = parse(data).walk("VEVENT")
    assert "ATTENDEE" not in ev and "URL" not in ev
    assert "ORGANIZER" in ev


@pytest.mark.parametrize("fold", [0, 1])
def test_booking_in_the_repeated_hour_keeps_its_instant(fold: int) -> None:
    start = datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo(LA), fold=fold)
    booking = make_booking(start=start)
    data = invite_calendar(booking, NOW)
    (ev,) = parse(data).walk("VEVENT")

    assert ev.decoded("DTSTART").astimezone(UTC) == start.astimezone(UTC)
    assert ev.decoded("DTEND").astimezone(UTC) == booking.end.astimezone(UTC)
    v: Any = read_vobject(data)
    assert v.vevent.dtstart.value.astimezone(UTC) == start.astimezone(UTC)


def test_booking_event_rejects_bad_values() -> None:
    good = make_booking()
    with pytest.raises(ValueError, match="aware"):
        make_booking(start=datetime(2026, 3, 10, 9))
    with pytest.raises(ValueError, match="after start"):
        make_booking(minutes=0)
    with pytest.raises(ValueError, match="zone"):
        make_booking(timezone="Mars/Olympus")
    assert good.sequence == 0


def vtimezone_of(tz: str) -> tuple[bytes, Any]:
    """Return an invite for a booking in `tz` and its one VTIMEZONE component."""
    data = invite_calendar(make_booking(timezone=tz, start=datetime(2026, 6, 2, 12, tzinfo=UTC)), NOW)
    (vtz,) = parse(data).walk("VTIMEZONE")
    assert str(vtz["TZID"]) == tz
    return data, vtz


LA_RULES = (
    ("19700308T020000", "FREQ=YEARLY;BYDAY=2SU;BYMONTH=3"),
    ("19701101T020000", "FREQ=YEARLY;BYDAY=1SU;BYMONTH=11"),
)
LONDON_RULES = (
    ("19700329T010000", "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3"),
    ("19701025T020000", "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10"),
)


@pytest.mark.parametrize(("tz", "daylight", "standard"), [(LA, *LA_RULES), (LONDON, *LONDON_RULES)])
def test_vtimezone_uses_yearly_rules_like_outlook_and_google(
    tz: str, daylight: tuple[str, str], standard: tuple[str, str]
) -> None:
    data, vtz = vtimezone_of(tz)
    found = {
        sub.name: (sub["DTSTART"].to_ical().decode(), sub["RRULE"].to_ical().decode())
        for sub in vtz.subcomponents
    }
    assert found == {"DAYLIGHT": daylight, "STANDARD": standard}
    assert b"RDATE" not in data


def test_vtimezone_without_dst_is_one_fixed_observance() -> None:
    _, vtz = vtimezone_of("Asia/Kolkata")
    (only,) = vtz.subcomponents
    assert only.name == "STANDARD"
    assert only.decoded("TZOFFSETFROM") == only.decoded("TZOFFSETTO") == timedelta(hours=5, minutes=30)


@pytest.mark.parametrize(
    "tz", [LA, LONDON, "Australia/Sydney", "Asia/Kolkata", "Asia/Jerusalem", "America/Santiago"]
)
def test_vtimezone_offsets_match_zoneinfo_for_both_parsers(tz: str) -> None:
    data, vtz = vtimezone_of(tz)
    if tz in ("Asia/Jerusalem", "America/Santiago"):  # no "nth weekday" rule: exact onsets, one a line
        rdates = re.findall(r"^RDATE[^\r\n]*", data.decode(), re.M)
        assert rdates and all("," not in line for line in rdates)
    readers = {
        "icalendar": vtz.to_tz(lookup_tzid=False),
        "vobject": read_vobject(data).vtimezone.gettzinfo(),
    }
    real = ZoneInfo(tz)
    samples: list[datetime] = []
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    while moment < datetime(2028, 1, 1, tzinfo=UTC):  # every 7 hours, every minute near a change
        nxt = moment + timedelta(hours=1)
        if moment.astimezone(real).utcoffset() != nxt.astimezone(real).utcoffset():
            samples.extend(moment + timedelta(minutes=m) for m in range(-60, 120))
        elif moment.hour % 7 == 0:
            samples.append(moment)
        moment = nxt
    for name, reader in readers.items():
        wrong = [m for m in samples if m.astimezone(reader).utcoffset() != m.astimezone(real).utcoffset()]
        assert wrong == [], f"{name} misreads {tz} at {wrong[:3]}"
