"""The worker's calendar as their page shows it: the coming weeks, day by day, slot by slot.

A read model over office hours, bookings and their visits: each slot is free, booked (with the
client's name and the visit's kiosk code), walk-in, or not bookable with the reason why; the
weeks say where the clocks change. Nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

import scheduler.bookings as bookings
import scheduler.hours as hours
from caserecord.access import REVIEWERS, require_role, require_worker, visible_staff
from caserecord.audit import Actor
from caserecord.models import Booking, Case, Client, OfficeHourBlock, OfficeHourException, User, Visit
from scheduler.rules import Slot


def day_label(day: date) -> str:
    """Return a date as people say it: "Tuesday 3 March"."""
    return f"{day:%A} {day.day} {day:%B}"


@dataclass
class SlotRow:
    """One line of a day in the calendar: a free, booked, not bookable or walk-in period."""

    state: str  # "free", "booked", "closed" or "walk_in"
    start: datetime
    end: datetime
    label: str  # the state in words, so the calendar never relies on colour
    note: str = ""
    booking_id: int | None = None
    case_id: int | None = None
    who: str = ""
    kiosk_code: str | None = None
    visit_id: int | None = None
    visit_status: str = ""

    @property
    def time(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"

    @property
    def iso(self) -> str:
        return self.start.isoformat()


@dataclass
class DayView:
    """One local date of the worker's calendar."""

    day: date
    rows: list[SlotRow]
    in_range: bool
    clock_change: str = ""

    @property
    def label(self) -> str:
        return day_label(self.day)

    @property
    def anchor(self) -> str:
        return f"day-{self.day.isoformat()}"

    def count(self, state: str) -> int:
        return sum(1 for r in self.rows if r.state == state)

    @property
    def summary(self) -> str:
        """Say what the day holds in a few words: "1 booked, 5 free"."""
        if not self.in_range:
            return "past"
        if not self.rows:
            return "no office hours"
        parts = [f"{self.count('booked')} booked"] if self.count("booked") else []
        if self.count("free"):
            parts.append(f"{self.count('free')} free")
        if self.count("walk_in"):
            parts.append("walk-in")
        return ", ".join(parts) or "nothing bookable"


@dataclass
class WeekView:
    """Monday to Sunday, for the week-at-a-glance and the day lists."""

    label: str
    days: list[DayView]

    @property
    def active_days(self) -> list[DayView]:
        return [d for d in self.days if d.in_range and d.rows]

    @property
    def id(self) -> str:
        return f"week-{self.days[0].day.isoformat()}"


def zone_label(moment: datetime) -> str:
    """Return a zone's abbreviation and offset at `moment`: "PST, UTC−8" or "UTC+5:30"."""
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "−" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    utc = "UTC" if minutes == 0 else f"UTC{sign}{hours}" + (f":{mins:02d}" if mins else "")
    abbr = moment.tzname() or ""
    return utc if not abbr or abbr[0] in "+-" or abbr == "UTC" else f"{abbr}, {utc}"


def _not_bookable_reason(slot: Slot, block: OfficeHourBlock | None, now: datetime, today: date) -> str:
    if slot.start <= now:
        return "in the past"
    if block is None:
        return ""
    if slot.start < now + timedelta(minutes=block.min_notice_minutes):
        return f"less than {block.min_notice_minutes} minutes' notice"
    if (slot.start.astimezone(ZoneInfo(block.timezone)).date() - today).days > block.max_days_ahead:
        return f"more than {block.max_days_ahead} days ahead"
    return "overlaps another visit"


def _weeks(
    rows: dict[date, list[SlotRow]], today: date, weeks: int, tz: ZoneInfo
) -> tuple[list[WeekView], list[str]]:
    """Lay the rows out Monday to Sunday from this week on; say where the clocks change."""
    monday = today - timedelta(days=today.weekday())
    week_views: list[WeekView] = []
    changes: list[str] = []
    pending = ""  # a clock change is told again on the first day with office hours after it
    previous_offset = datetime.combine(today, time(0), tz).utcoffset()
    for w in range(weeks):
        first = monday + timedelta(days=7 * w)
        days = []
        for i in range(7):
            d = first + timedelta(days=i)
            day_rows = sorted(rows.get(d, []), key=lambda r: r.start)
            end_of_day = datetime.combine(d, time(23, 59), tz)
            if d >= today and end_of_day.utcoffset() != previous_offset:
                previous_offset = end_of_day.utcoffset()
                changes.append(f"Clocks change on {day_label(d)} (to {zone_label(end_of_day)}).")
                pending = f"Clocks changed on {day_label(d)}: times are now {zone_label(end_of_day)}."
            note = pending if day_rows and d >= today else ""
            if note:
                pending = ""
            days.append(DayView(d, day_rows, d >= today, note))
        label = (
            f"This week, from {day_label(first)}"
            if w == 0
            else f"Next week, from {day_label(first)}"
            if w == 1
            else f"Week of {day_label(first)}"
        )
        week_views.append(WeekView(label, days))
    return week_views, changes


@dataclass(frozen=True, slots=True)
class CaseOption:
    """A client the worker may book for: "Maria Lopez (case 3: SNAP renewal)"."""

    id: int
    label: str


@dataclass(frozen=True, slots=True)
class WorkerCalendar:
    """What the worker's page shows of `weeks` weeks from this one."""

    worker: User
    zone_now: str
    clock_changes: list[str]
    today: date
    today_rows: list[SlotRow]
    week_views: list[WeekView]
    free_days: list[tuple[DayView, list[SlotRow]]]
    blocks: list[tuple[OfficeHourBlock, list[OfficeHourException]]]
    case_options: list[CaseOption]

    @property
    def has_hours(self) -> bool:
        return any(wk.active_days for wk in self.week_views)

    @property
    def has_walk_in(self) -> bool:
        return any(b.mode == "walk_in" for b, _ in self.blocks)


def worker_calendar(s: Session, actor: Actor, worker_id: int, now: datetime, weeks: int) -> WorkerCalendar:
    """Read a worker's calendar for `weeks` weeks from this one (the caller may see the worker)."""
    worker = require_worker(s, actor, worker_id)
    tz = ZoneInfo(worker.timezone)
    now = now.astimezone(UTC)
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    last = monday + timedelta(days=7 * weeks - 1)
    _, slots = hours.worker_slots(s, actor, worker_id, today, last, now)
    lo = datetime.combine(today, time(0), tz)
    hi = datetime.combine(last + timedelta(days=1), time(0), tz)
    booked = bookings.worker_bookings(s, actor, worker_id, lo, hi)
    cases = {c.id: c for c in s.exec(select(Case).where(Case.worker_id == worker_id, Case.status == "open"))}
    for b in booked:  # a booked case may have been closed since; still name its client
        if b.case_id not in cases:
            case = s.get(Case, b.case_id)
            if case is not None:
                cases[case.id] = case
    client_ids = [c.client_id for c in cases.values()]
    clients = {c.id: c for c in s.exec(select(Client).where(col(Client.id).in_(client_ids)))}
    booking_ids = [b.id for b in booked]
    visit_of = {v.booking_id: v for v in s.exec(select(Visit).where(col(Visit.booking_id).in_(booking_ids)))}
    blocks = hours.list_blocks(s, actor, worker_id)
    block_by_id = {b.id: b for b, _ in blocks}

    def booking_row(b: Booking) -> SlotRow:
        case = cases.get(b.case_id)
        client = clients.get(case.client_id) if case is not None else None
        return SlotRow(
            "booked",
            b.start_at.astimezone(tz),
            b.end_at.astimezone(tz),
            "Booked",
            booking_id=b.id,
            case_id=b.case_id,
            who=client.name if client is not None else f"case {b.case_id}",
            kiosk_code=visit.kiosk_code if (visit := visit_of.get(b.id)) is not None else None,
            visit_id=visit.id if visit is not None else None,
            visit_status=visit.status if visit is not None else "",
        )

    by_start = {b.start_at: b for b in booked}
    shown: set[int | None] = set()
    rows: dict[date, list[SlotRow]] = defaultdict(list)
    for slot in slots:
        start, end = slot.start.astimezone(tz), slot.end.astimezone(tz)
        booking = by_start.get(slot.start)
        if booking is not None:
            row = booking_row(booking)
            shown.add(booking.id)
        elif slot.mode == "walk_in":
            row = SlotRow("walk_in", start, end, "Walk-in", note="clients queue; no booking needed")
        elif slot.available:
            row = SlotRow("free", start, end, "Free")
        else:
            reason = _not_bookable_reason(slot, block_by_id.get(slot.block_id), now, today)
            row = SlotRow("closed", start, end, "Not bookable", note=reason)
        rows[start.date()].append(row)
    for b in booked:  # bookings whose block was changed or withdrawn still show
        if b.id not in shown:
            row = booking_row(b)
            rows[row.start.date()].append(row)

    week_views, changes = _weeks(rows, today, weeks, tz)
    case_options = sorted(
        (
            CaseOption(c.id, f"{clients[c.client_id].name} (case {c.id}{': ' + c.title if c.title else ''})")
            for c in cases.values()
            if c.id is not None and c.client_id in clients and c.status == "open"
        ),
        key=lambda o: o.label.lower(),
    )
    free_days = [
        (d, [r for r in d.rows if r.state == "free"])
        for wk in week_views
        for d in wk.active_days
        if d.count("free")
    ]
    today_view = week_views[0].days[today.weekday()]
    return WorkerCalendar(
        worker=worker,
        zone_now=zone_label(now.astimezone(tz)),
        clock_changes=changes,
        today=today,
        today_rows=[r for r in today_view.rows if r.state == "booked"],
        week_views=week_views,
        free_days=free_days,
        blocks=blocks,
        case_options=case_options,
    )


@dataclass(frozen=True, slots=True)
class TeamMember:
    """One member of a supervisor's team this week: bookings coming, blocks published, the next visit."""

    user: User
    upcoming: int
    blocks: int
    next: datetime | None


def team_week(s: Session, actor: Actor, now: datetime) -> list[TeamMember]:
    """Return the staff a supervisor (or admin) oversees, by name, with their coming week."""
    require_role(actor, *REVIEWERS)
    team = []
    for user in visible_staff(s, actor, admins=False, by_name=True):
        assert user.id is not None
        upcoming = bookings.worker_bookings(s, actor, user.id, now, now + timedelta(days=7))
        first = upcoming[0].start_at.astimezone(ZoneInfo(user.timezone)) if upcoming else None
        team.append(TeamMember(user, len(upcoming), len(hours.active_blocks(s, [user.id])), first))
    return team
