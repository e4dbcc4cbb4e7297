"""Slot computation in local time: DST weeks, and properties that hold for any block."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.rules import (
    WEEKDAYS,
    BlockRule,
    RuleError,
    Slot,
    block_slots,
    compute_slots,
    find_slot,
    occurrences,
    rules_overlap,
)

LA = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")
FAR_PAST = datetime(2000, 1, 1, tzinfo=UTC)


def rule(**kw: object) -> BlockRule:
    base: dict[str, object] = {
        "id": 1,
        "worker_id": 1,
        "weekdays": ("TU",),
        "start_time": time(9),
        "end_time": time(12),
        "timezone": "America/Los_Angeles",
        "slot_minutes": 30,
        "buffer_minutes": 0,
        "mode": "booked",
        "starts_on": date(2026, 1, 1),
        "max_days_ahead": 730,
    }
    base.update(kw)
    return BlockRule(**base)  # type: ignore[arg-type]


def local(slots: list[Slot], tz: ZoneInfo) -> list[str]:
    return [f"{s.start.astimezone(tz):%H:%M%z}-{s.end.astimezone(tz):%H:%M%z}" for s in slots]


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        ("America/Los_Angeles", date(2026, 3, 3), date(2026, 3, 10)),  # spring forward 8 March
        ("America/Los_Angeles", date(2026, 10, 27), date(2026, 11, 3)),  # fall back 1 November
        ("Europe/London", date(2026, 3, 24), date(2026, 3, 31)),  # spring forward 29 March
        ("Europe/London", date(2026, 10, 20), date(2026, 10, 27)),  # fall back 25 October
    ],
)
def test_tuesday_nine_stays_nine_across_the_change(zone: str, before: date, after: date) -> None:
    r = rule(timezone=zone)
    tz = ZoneInfo(zone)
    slots = compute_slots([r], [], before, after, FAR_PAST)
    days = sorted({s.start.date() for s in slots})
    assert days == [before, after]
    for day in days:
        starts = [s.start.astimezone(tz) for s in slots if s.start.date() == day]
        assert [f"{t:%H:%M}" for t in starts] == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    offsets = {s.start.date(): s.start.utcoffset() for s in slots}
    assert offsets[before] != offsets[after]  # the same wall time is a different instant


def test_los_angeles_spring_forward_skips_the_missing_hour() -> None:
    r = rule(weekdays=("SU",), start_time=time(1), end_time=time(4))
    slots = compute_slots([r], [], date(2026, 3, 8), date(2026, 3, 8), FAR_PAST)
    # 02:00 and 02:30 do not exist on 8 March; 01:30 PST ends at 03:00 PDT.
    assert local(slots, LA) == [
        "01:00-0800-01:30-0800",
        "01:30-0800-03:00-0700",
        "03:00-0700-03:30-0700",
        "03:30-0700-04:00-0700",
    ]
    assert all(s.end.astimezone(UTC) - s.start.astimezone(UTC) == timedelta(minutes=30) for s in slots)


def test_los_angeles_fall_back_repeated_hour_has_no_overlap() -> None:
    r = rule(weekdays=("SU",), start_time=time(0, 30), end_time=time(3))
    slots = compute_slots([r], [], date(2026, 11, 1), date(2026, 11, 1), FAR_PAST)
    # 01:00 and 01:30 mean their first occurrence (PDT); 02:00 is after the change (PST).
    assert local(slots, LA) == [
        "00:30-0700-01:00-0700",
        "01:00-0700-01:30-0700",
        "01:30-0700-01:00-0800",
        "02:00-0800-02:30-0800",
        "02:30-0800-03:00-0800",
    ]
    utc = [(s.start.astimezone(UTC), s.end.astimezone(UTC)) for s in slots]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(utc))


def test_london_spring_forward_and_fall_back() -> None:
    r = rule(
        weekdays=("SU",), start_time=time(0), end_time=time(3), slot_minutes=60, timezone="Europe/London"
    )
    spring = compute_slots([r], [], date(2026, 3, 29), date(2026, 3, 29), FAR_PAST)
    assert local(spring, LONDON) == ["00:00+0000-02:00+0100", "02:00+0100-03:00+0100"]
    autumn = compute_slots([r], [], date(2026, 10, 25), date(2026, 10, 25), FAR_PAST)
    assert local(autumn, LONDON) == [
        "00:00+0100-01:00+0100",
        "01:00+0100-01:00+0000",
        "02:00+0000-03:00+0000",
    ]


def test_buffer_is_kept_where_the_clock_jumps() -> None:
    r = rule(weekdays=("SU",), start_time=time(1), end_time=time(5), slot_minutes=30, buffer_minutes=15)
    slots = compute_slots([r], [], date(2026, 3, 8), date(2026, 3, 8), FAR_PAST)
    utc = [(s.start.astimezone(UTC), s.end.astimezone(UTC)) for s in slots]
    assert all(b[0] - a[1] >= timedelta(minutes=15) for a, b in itertools.pairwise(utc))
    assert local(slots, LA)[:2] == ["01:00-0800-01:30-0800", "01:45-0800-03:15-0700"]


def test_exceptions_until_and_starts_on() -> None:
    r = rule(
        weekdays=("TU", "TH"),
        starts_on=date(2026, 3, 4),
        until=date(2026, 3, 19),
        exceptions=frozenset({date(2026, 3, 12)}),
    )
    days = sorted(
        {s.start.date() for s in compute_slots([r], [], date(2026, 3, 1), date(2026, 3, 31), FAR_PAST)}
    )
    assert days == [date(2026, 3, 5), date(2026, 3, 10), date(2026, 3, 17), date(2026, 3, 19)]


def test_notice_horizon_and_busy_make_slots_unavailable() -> None:
    r = rule(min_notice_minutes=120, max_days_ahead=7)
    now = datetime(2026, 3, 3, 8, 0, tzinfo=LA)  # Tuesday 08:00 local
    busy = [(datetime(2026, 3, 3, 11, 15, tzinfo=LA), datetime(2026, 3, 3, 11, 45, tzinfo=LA))]
    slots = compute_slots([r], busy, date(2026, 3, 3), date(2026, 3, 17), now)
    today = [s.available for s in slots if s.start.date() == date(2026, 3, 3)]
    # 09:00 and 09:30 are inside the notice; 11:00 and 11:30 overlap the busy 11:15-11:45.
    assert today == [False, False, True, True, False, False]
    assert all(s.available for s in slots if s.start.date() == date(2026, 3, 10))
    assert not any(s.available for s in slots if s.start.date() == date(2026, 3, 17))  # beyond 7 days
    assert compute_slots([r], [], date(2026, 3, 10), date(2026, 3, 10), now)[
        -1
    ].available  # 7th day: all of it


def test_walk_in_blocks_give_one_window_per_day_not_bookable() -> None:
    r = rule(mode="walk_in", weekdays=("TU", "WE"))
    slots = compute_slots([r], [], date(2026, 3, 2), date(2026, 3, 8), FAR_PAST)
    assert [(s.mode, s.available, f"{s.start:%a %H:%M}-{s.end:%H:%M}") for s in slots] == [
        ("walk_in", False, "Tue 09:00-12:00"),
        ("walk_in", False, "Wed 09:00-12:00"),
    ]
    assert find_slot([r], datetime(2026, 3, 3, 9, tzinfo=LA)) is None


def test_find_slot_matches_the_instant_not_the_notation() -> None:
    r = rule()
    found = find_slot([r], datetime.fromisoformat("2026-03-10T16:30:00+00:00"))
    assert found is not None and f"{found[1]:%H:%M}" == "09:30"
    assert find_slot([r], datetime.fromisoformat("2026-03-10T09:15:00-07:00")) is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "unknown time zone"),
        ({"end_time": time(8)}, "end_time must be after start_time"),
        ({"weekdays": ()}, "at least one day"),
        ({"weekdays": ("XX",)}, "unknown weekday"),
        ({"slot_minutes": 240}, "shorter than one slot"),
        ({"until": date(2025, 1, 1)}, "until must not be before"),
    ],
)
def test_bad_rules_are_refused(kw: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        rule(**kw)


def test_blocks_in_different_zones_overlap_by_instant() -> None:
    la = rule(weekdays=("TU",), start_time=time(9), end_time=time(12))
    ny = rule(id=2, weekdays=("TU",), start_time=time(13), end_time=time(14), timezone="America/New_York")
    later = rule(id=3, weekdays=("TU",), start_time=time(16), end_time=time(17), timezone="America/New_York")
    assert rules_overlap(la, ny)  # 13:00 New York is 10:00 Los Angeles
    assert not rules_overlap(la, later)


# --- properties ---------------------------------------------------------------------------

ZONES = [
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "UTC",
]


@st.composite
def rules(draw: st.DrawFn) -> BlockRule:
    start_min = draw(st.integers(0, 22 * 12)) * 5
    end_min = draw(st.integers(start_min // 5 + 1, 24 * 12 - 1)) * 5
    span = end_min - start_min
    slot = draw(st.integers(1, max(1, min(span, 240) // 5)).map(lambda n: n * 5))
    if slot > span:
        slot = span
    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
    starts_on = draw(st.dates(date(2026, 1, 1), date(2026, 12, 1)))
    until = draw(st.none() | st.dates(starts_on, date(2027, 3, 1)))
    exceptions = draw(st.frozensets(st.dates(date(2026, 1, 1), date(2027, 3, 1)), max_size=5))
    return BlockRule(
        id=1,
        worker_id=1,
        weekdays=tuple(days),
        start_time=time(start_min // 60, start_min % 60),
        end_time=time(end_min // 60, end_min % 60),
        timezone=draw(st.sampled_from(ZONES)),
        slot_minutes=max(slot, 5),
        buffer_minutes=draw(st.sampled_from([0, 5, 10, 15, 30])),
        mode="booked",
        starts_on=starts_on,
        until=until,
        min_notice_minutes=draw(st.integers(0, 3000)),
        max_days_ahead=draw(st.integers(1, 120)),
        exceptions=exceptions,
    )


def _valid(r: BlockRule) -> bool:
    return (
        r.end_time.hour * 60 + r.end_time.minute - r.start_time.hour * 60 - r.start_time.minute
        >= r.slot_minutes
    )


windows = st.dates(date(2026, 1, 1), date(2027, 2, 1)).map(lambda d: (d, d + timedelta(days=20)))
instants = st.datetimes(datetime(2025, 12, 1), datetime(2027, 2, 1), timezones=st.just(UTC))
busy_lists = st.lists(
    st.tuples(instants, st.integers(5, 240)).map(lambda t: (t[0], t[0] + timedelta(minutes=t[1]))),
    max_size=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(rules().filter(_valid), windows, instants, busy_lists)
def test_slots_hold_their_promises(
    r: BlockRule, window: tuple[date, date], now: datetime, busy: list[tuple[datetime, datetime]]
) -> None:
    first, last = window
    slots = compute_slots([r], busy, first, last, now)
    occ = [(s.astimezone(UTC), e.astimezone(UTC)) for s, e in occurrences(r, first - timedelta(days=1), last)]
    prev_end: datetime | None = None
    for slot in slots:
        start, end = slot.start.astimezone(UTC), slot.end.astimezone(UTC)
        # Exactly the slot length, on a held local date within the window.
        assert end - start == timedelta(minutes=r.slot_minutes)
        local_day = slot.start.astimezone(r.tz).date()
        assert first <= local_day <= last and r.occurs_on(local_day)
        # Always inside one occurrence of the block.
        assert any(o_start <= start and end <= o_end for o_start, o_end in occ)
        # Never overlapping the previous slot, and the buffer kept between slots of one day.
        if prev_end is not None:
            assert start >= prev_end
            prev_local = (prev_end - timedelta(minutes=r.slot_minutes)).astimezone(r.tz).date()
            if prev_local == local_day:
                assert start - prev_end >= timedelta(minutes=r.buffer_minutes)
        prev_end = end
        # Availability respects notice, horizon and existing bookings.
        if slot.available:
            assert start >= now + timedelta(minutes=r.min_notice_minutes)
            assert local_day <= now.astimezone(r.tz).date() + timedelta(days=r.max_days_ahead)
            assert not any(b_start < end and start < b_end for b_start, b_end in busy)
        else:
            too_soon = start < now + timedelta(minutes=r.min_notice_minutes)
            too_far = local_day > now.astimezone(r.tz).date() + timedelta(days=r.max_days_ahead)
            taken = any(b_start < end and start < b_end for b_start, b_end in busy)
            assert too_soon or too_far or taken


@settings(max_examples=200, deadline=None)
@given(rules().filter(_valid), windows)
def test_every_wall_clock_start_that_exists_is_offered(r: BlockRule, window: tuple[date, date]) -> None:
    """On days without a clock change, the slots are exactly the wall-clock grid of the block."""
    first, last = window
    got = {
        (s.start.astimezone(r.tz).date(), s.start.astimezone(r.tz).time())
        for s in compute_slots([r], [], first, last, FAR_PAST)
    }
    step = r.slot_minutes + r.buffer_minutes
    begin = r.start_time.hour * 60 + r.start_time.minute
    stop = r.end_time.hour * 60 + r.end_time.minute - r.slot_minutes
    day = first
    while day <= last:
        midnight = datetime.combine(day, time(0), r.tz)
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), r.tz)
        steady = midnight.utcoffset() == next_midnight.utcoffset()
        if r.occurs_on(day) and steady:
            want = {(day, time(m // 60, m % 60)) for m in range(begin, stop + 1, step)}
            assert {g for g in got if g[0] == day} == want
        day += timedelta(days=1)


def test_block_slots_is_what_compute_slots_offers() -> None:
    r = rule(weekdays=("MO", "TU", "WE", "TH", "FR"))
    raw = list(block_slots(r, date(2026, 3, 1), date(2026, 3, 14)))
    computed = compute_slots([r], [], date(2026, 3, 1), date(2026, 3, 14), FAR_PAST)
    assert [(s.start, s.end) for s in computed] == raw


def test_a_block_starting_in_the_skipped_hour_starts_just_after_it() -> None:
    """RFC 5545: a wall time in the gap is read with the offset from before the change."""
    r = rule(weekdays=("SU",), start_time=time(2, 30), end_time=time(5))
    ((start, end),) = occurrences(r, date(2026, 3, 8), date(2026, 3, 8))
    assert f"{start:%H:%M%z}-{end:%H:%M%z}" == "03:30-0700-05:00-0700"
    slots = compute_slots([r], [], date(2026, 3, 8), date(2026, 3, 8), FAR_PAST)
    # The wall-clock grid (02:30, 03:00, ...) keeps only starts within the block: 03:30 on.
    assert local(slots, LA)[:2] == ["03:30-0700-04:00-0700", "04:00-0700-04:30-0700"]
