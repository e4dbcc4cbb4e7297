"""Dates and times as said in a visit, resolved against the visit's start in the worker's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transcription.audio import number_words
from transcription.dates import WEEKDAYS, find_whens, resolve_when

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
# Monday 2 March 2026, 9:30 in New York.
MONDAY = datetime(2026, 3, 2, 9, 30, tzinfo=NEW_YORK)

ZONES = st.sampled_from(
    [ZoneInfo(z) for z in ("America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "UTC")]
)
MOMENTS = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


def local_date(start: datetime, zone: ZoneInfo) -> date:
    return start.astimezone(zone).date()


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("today", date(2026, 3, 2)),
        ("tomorrow", date(2026, 3, 3)),
        ("the day after tomorrow", date(2026, 3, 4)),
        ("next Tuesday", date(2026, 3, 10)),
        ("next Monday", date(2026, 3, 9)),
        ("on Friday", date(2026, 3, 6)),
        ("see you Monday", date(2026, 3, 9)),
        ("by the 15th", date(2026, 3, 15)),
        ("on the first", date(2026, 4, 1)),
        ("the 2nd", date(2026, 3, 2)),
        ("in two weeks", date(2026, 3, 16)),
        ("in 10 days", date(2026, 3, 12)),
        ("in a couple of days", date(2026, 3, 4)),
        ("three weeks from now", date(2026, 3, 23)),
        ("in a month", date(2026, 4, 2)),
        ("next week", date(2026, 3, 9)),
        ("this week", date(2026, 3, 6)),
        ("by the end of the month", date(2026, 3, 31)),
        ("by the end of next month", date(2026, 4, 30)),
        ("on the third of April", date(2026, 4, 3)),
        ("April 3rd", date(2026, 4, 3)),
        ("on January 5", date(2027, 1, 5)),
        ("last Friday", date(2026, 2, 27)),
    ],
)
def test_relative_dates(said: str, expected: date) -> None:
    assert resolve_when(f"Let's do it {said}, okay.", MONDAY, NEW_YORK) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("next Tuesday at ten", datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)),
        ("at ten thirty on Thursday", datetime(2026, 3, 5, 10, 30, tzinfo=NEW_YORK)),
        ("tomorrow at 2 pm", datetime(2026, 3, 3, 14, 0, tzinfo=NEW_YORK)),
        ("tomorrow at two", datetime(2026, 3, 3, 14, 0, tzinfo=NEW_YORK)),
        ("Friday at 9am", datetime(2026, 3, 6, 9, 0, tzinfo=NEW_YORK)),
        ("ten o'clock next Wednesday", datetime(2026, 3, 11, 10, 0, tzinfo=NEW_YORK)),
        ("tomorrow at half past nine", datetime(2026, 3, 3, 9, 30, tzinfo=NEW_YORK)),
        ("the day after tomorrow at noon", datetime(2026, 3, 4, 12, 0, tzinfo=NEW_YORK)),
        ("at 10:45", datetime(2026, 3, 2, 10, 45, tzinfo=NEW_YORK)),
        # As Whisper writes it, with no comma before the next clause.
        ("next Tuesday at 10 and please bring the letter", datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)),
        # Already past at the visit's start: tomorrow.
        ("at nine", datetime(2026, 3, 3, 9, 0, tzinfo=NEW_YORK)),
        ("March 20th at 3pm", datetime(2026, 3, 20, 15, 0, tzinfo=NEW_YORK)),
    ],
)
def test_dates_with_times(said: str, expected: datetime) -> None:
    value = resolve_when(f"Right, {said}.", MONDAY, NEW_YORK)
    assert isinstance(value, datetime)
    assert value == expected
    assert value.tzinfo == NEW_YORK
    assert value.replace(tzinfo=None) == expected.replace(tzinfo=None)


@pytest.mark.parametrize(
    "said",
    [
        "At one point I cried all night.",
        "I have two kids at home.",
        "She goes to the clinic on Mondays.",
        "The first thing I did was call my sister.",
        "We were there at three or four shops.",
        "Nothing planned.",
    ],
)
def test_no_date_where_none_was_said(said: str) -> None:
    assert find_whens(said, MONDAY, NEW_YORK) == []


def test_the_phrase_and_its_place_are_kept() -> None:
    text = "Let us meet again next Tuesday at ten, and please bring the letter with you."
    [when] = find_whens(text, MONDAY, NEW_YORK)
    assert when.text == "next Tuesday at ten"
    assert text[when.start : when.end] == when.text
    assert when.has_time


def test_a_visit_late_at_night_utc_is_dated_in_the_workers_zone() -> None:
    # 02:00 UTC on Tuesday is still Monday evening in New York: "tomorrow" is Tuesday there.
    start = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    assert resolve_when("tomorrow", start, NEW_YORK) == date(2026, 3, 3)
    assert resolve_when("tomorrow", start, LONDON) == date(2026, 3, 4)


def test_across_the_spring_dst_change_ten_is_ten_local() -> None:
    # Friday 6 March 2026; New York springs forward on Sunday 8 March.
    start = datetime(2026, 3, 6, 15, 0, tzinfo=NEW_YORK)
    value = resolve_when("next Tuesday at ten", start, NEW_YORK)
    assert value == datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)
    assert isinstance(value, datetime)
    assert value.utcoffset() == timedelta(hours=-4)
    assert start.utcoffset() == timedelta(hours=-5)


def test_a_time_in_the_dst_gap_moves_past_it() -> None:
    start = datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK)
    value = resolve_when("tomorrow at 2:30 am", start, NEW_YORK)
    assert isinstance(value, datetime)
    assert value.astimezone(UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_naive_visit_start_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        find_whens("tomorrow", datetime(2026, 3, 2, 9, 30), NEW_YORK)


@settings(max_examples=300, deadline=None)
@given(start=MOMENTS, zone=ZONES, weekday=st.integers(0, 6), capital=st.booleans())
def test_next_weekday_is_that_weekday_one_to_thirteen_days_ahead(
    start: datetime, zone: ZoneInfo, weekday: int, capital: bool
) -> None:
    name = WEEKDAYS[weekday].capitalize() if capital else WEEKDAYS[weekday]
    value = resolve_when(f"see you next {name}", start, zone)
    assert isinstance(value, date) and not isinstance(value, datetime)
    assert value.weekday() == weekday
    assert 1 <= (value - local_date(start, zone)).days <= 13


@settings(max_examples=300, deadline=None)
@given(start=MOMENTS, zone=ZONES, weekday=st.integers(0, 6))
def test_on_weekday_is_that_weekday_within_a_week(start: datetime, zone: ZoneInfo, weekday: int) -> None:
    value = resolve_when(f"I'll drop it off on {WEEKDAYS[weekday]}", start, zone)
    assert isinstance(value, date)
    assert value.weekday() == weekday
    assert 1 <= (value - local_date(start, zone)).days <= 7


@settings(max_examples=300, deadline=None)
@given(
    start=MOMENTS,
    zone=ZONES,
    n=st.integers(1, 29),
    unit=st.sampled_from(["day", "week"]),
    spelled=st.booleans(),
)
def test_in_n_days_or_weeks_adds_exactly(
    start: datetime, zone: ZoneInfo, n: int, unit: str, spelled: bool
) -> None:
    count = number_words(n) if spelled else str(n)
    plural = "s" if n > 1 else ""
    value = resolve_when(f"in {count} {unit}{plural}", start, zone)
    days = n * (7 if unit == "week" else 1)
    assert value == local_date(start, zone) + timedelta(days=days)


@settings(max_examples=300, deadline=None)
@given(
    start=MOMENTS,
    zone=ZONES,
    weekday=st.integers(0, 6),
    hour=st.integers(7, 12),
    minute=st.sampled_from([0, 15, 30, 45]),
)
def test_weekday_at_a_time_is_that_wall_time_in_the_zone(
    start: datetime, zone: ZoneInfo, weekday: int, hour: int, minute: int
) -> None:
    value = resolve_when(f"next {WEEKDAYS[weekday]} at {hour}:{minute:02d}", start, zone)
    assert isinstance(value, datetime)
    assert value.tzinfo == zone
    # Wall-clock time survives any DST change between the visit and then (no gap at these hours).
    assert value.time() == time(hour, minute)
    assert value.weekday() == weekday
    assert value > start


@settings(max_examples=300, deadline=None)
@given(start=MOMENTS, zone=ZONES, day=st.integers(1, 31))
def test_the_nth_is_the_next_such_day_on_or_after_the_visit(
    start: datetime, zone: ZoneInfo, day: int
) -> None:
    suffix = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}.get(day, "th")
    value = resolve_when(f"by the {day}{suffix}", start, zone)
    today = local_date(start, zone)
    assert isinstance(value, date)
    assert value.day == day
    assert 0 <= (value - today).days <= 62
    # No earlier date on or after today has that day of the month.
    probe = today
    while probe < value:
        assert probe.day != day
        probe += timedelta(days=1)


@settings(max_examples=200, deadline=None)
@given(start=MOMENTS, zone=ZONES)
def test_end_of_the_month_is_the_last_day_of_this_month(start: datetime, zone: ZoneInfo) -> None:
    value = resolve_when("before the end of the month", start, zone)
    today = local_date(start, zone)
    assert isinstance(value, date)
    assert (value.year, value.month) == (today.year, today.month)
    assert (value + timedelta(days=1)).day == 1


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80), start=MOMENTS, zone=ZONES)
def test_any_text_gives_spans_of_itself(text: str, start: datetime, zone: ZoneInfo) -> None:
    for when in find_whens(text, start, zone):
        assert text[when.start : when.end] == when.text
