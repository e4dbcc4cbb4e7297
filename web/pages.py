"""Server-rendered pages for staff: sign-in, the worker's calendar, the supervisor's team."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlmodel import Session, col, select

from caserecord import access, accounts, notes
from caserecord.audit import Actor
from caserecord.errors import Invalid, RecordError, Unauthenticated
from caserecord.models import Booking, Case, Client, Note, OfficeHourBlock, User, Visit
from scheduler import blocks, bookings, hours
from scheduler.rules import WEEKDAYS, Slot
from visits.lifecycle import walkin_link_token
from web import live
from web.auth import check_csrf, clear_session_cookie, end_session, set_session_cookie
from web.problems import ProblemError
from web.routing import client_ip
from web.runtime import IDENTITY, RUNTIME, Identity, Runtime

HERE = Path(__file__).parent
WEEKDAY_NAMES = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
Form = MultiDictProxy[str | bytes | bytearray | web.FileField]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Action = Callable[[Identity, Form, int, Runtime], Awaitable[str]]
_ERROR_TITLES = {401: "Please sign in", 403: "Not allowed", 404: "Not found", 409: "Already taken"}


def _sentence(text: str) -> str:
    """Capitalise the first letter only (messages from the case record start in lower case)."""
    return text[:1].upper() + text[1:]


def day_label(day: date) -> str:
    """Return a date as people say it: "Tuesday 3 March"."""
    return f"{day:%A} {day.day} {day:%B}"


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_env.globals["weekday_names"] = WEEKDAY_NAMES
_env.filters["sentence"] = _sentence
_env.filters["day_label"] = day_label


def render(name: str, status: int = 200, **ctx: Any) -> web.Response:
    """Render a template as an HTML answer that no cache keeps and no frame shows."""
    html = _env.get_template(name).render(**ctx)
    resp = web.Response(text=html, content_type="text/html", status=status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
    # Not "no-referrer": with it browsers send `Origin: null` on form posts, which the
    # cross-site check rightly refuses, so no form would work.
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


class PageError(Exception):
    """Raise from a page handler to answer with the HTML error page."""

    def __init__(self, status: int, detail: str, title: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _ERROR_TITLES.get(status, "That did not work")


def _error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    ident = _identity(request)
    return render(
        "error.html",
        status=status,
        me=ident.user if ident else None,
        csrf=ident.csrf_token if ident else "",
        title=title,
        detail=detail,
    )


def _page(fn: Handler) -> Handler:
    """Answer a page handler's PageError or RecordError with the error page, not problem+json."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except PageError as exc:
            return _error_page(request, exc.status, exc.title, exc.detail)
        except RecordError as exc:
            return _error_page(request, exc.status, _ERROR_TITLES.get(exc.status, exc.title), exc.detail)

    return handler


def _identity(request: web.Request) -> Identity | None:
    return request.get(IDENTITY)


def _require(request: web.Request) -> Identity:
    ident = _identity(request)
    if ident is None:
        raise web.HTTPSeeOther(f"/?next={quote(request.path_qs)}")
    return ident


async def _form(request: web.Request, ident: Identity) -> Form:
    form = await request.post()
    try:
        check_csrf(request, ident, str(form.get("csrf_token", "")))
    except ProblemError as exc:
        raise PageError(
            403,
            "This form has expired or did not come from this site, so nothing was changed. "
            "Go back, reload the page and try again.",
            "Form expired",
        ) from exc
    return form


def _back(path: str, notice: str = "", error: str = "") -> web.HTTPSeeOther:
    sep = "&" if "?" in path else "?"
    if notice:
        path += f"{sep}notice={quote(notice)}"
    elif error:
        path += f"{sep}error={quote(error)}"
    return web.HTTPSeeOther(path)


# --- sign in ----------------------------------------------------------------------------


def _home_for(user: User) -> str:
    return "/supervisor" if user.role in ("supervisor", "admin") else "/worker"


def _safe_next(value: str) -> str:
    """Keep `next` on this site: a path, never `//host` or `/\\host` (which browsers read as `//`)."""
    ok = value.startswith("/") and not value.startswith(("//", "/\\")) and "\\" not in value
    return value if ok else ""


@_page
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    """GET /: the sign-in form (or home, when already signed in)."""
    ident = _identity(request)
    if ident is not None:
        raise web.HTTPSeeOther(_home_for(ident.user))
    rt = request.app[RUNTIME]
    return render(
        "sign_in.html",
        error="",
        next=_safe_next(request.query.get("next", "")),
        demo=rt.settings.demo,
        email="",
    )


@_page
async def sign_in(request: web.Request) -> web.StreamResponse:
    """POST /: check the password, open a session and go home (or to `next`)."""
    rt = request.app[RUNTIME]
    form = await request.post()
    email = str(form.get("email", ""))[:254]
    password = str(form.get("password", ""))[:1000]
    nxt = _safe_next(str(form.get("next", "")))
    ip = client_ip(request)
    now = rt.clock()

    def run(s: Session) -> tuple[User, str]:
        user = accounts.authenticate(s, email, password, ip)
        token, _ = accounts.open_session(
            s, user, now, rt.session_policy, ip, request.headers.get("User-Agent")
        )
        return user, token

    try:
        user, token = await rt.db.write(run)
    except Unauthenticated as exc:
        rt.metrics.logins.labels("failed").inc()
        return render(
            "sign_in.html", status=401, error=exc.detail, next=nxt, demo=rt.settings.demo, email=email
        )
    rt.metrics.logins.labels("ok").inc()
    resp = web.HTTPSeeOther(nxt or _home_for(user))
    set_session_cookie(resp, token, rt)
    raise resp


@_page
async def sign_out(request: web.Request) -> web.StreamResponse:
    """POST /sign-out: end the session."""
    ident = _require(request)
    await _form(request, ident)
    await end_session(request)
    resp = web.HTTPSeeOther("/")
    clear_session_cookie(resp)
    raise resp


# --- worker -----------------------------------------------------------------------------


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


def _worker_id(request: web.Request, ident: Identity) -> int:
    raw = request.query.get("worker_id") or request.match_info.get("worker_id") or ""
    if not raw:
        if ident.user.role != "worker":
            raise web.HTTPSeeOther("/supervisor")
        assert ident.user.id is not None
        return ident.user.id
    if not raw.isdigit() or not 1 <= int(raw) < 2**31:
        raise PageError(404, f"There is no worker {raw!r}.")
    return int(raw)


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


def _notes_to_sign(s: Session, actor: Actor, worker_id: int) -> list[dict[str, Any]]:
    """Return the worker's draft and returned notes with the client's name, newest first."""
    rows = s.exec(
        select(Note, Client)
        .join(Case, col(Case.id) == col(Note.case_id))
        .join(Client, col(Client.id) == col(Case.client_id))
        .where(Note.worker_id == worker_id, col(Note.status).in_(("draft", "returned")))
        .order_by(col(Note.id).desc())
    )
    return [{"id": n.id, "status": n.status, "client": c.name, "created": n.created_at} for n, c in rows]


def _worker_view(
    s: Session, ident: Identity, worker_id: int, rt: Runtime, weeks: int, book: str
) -> dict[str, Any]:
    actor = ident.actor
    worker = access.require_worker(s, actor, worker_id)
    tz = ZoneInfo(worker.timezone)
    now = rt.clock().astimezone(UTC)
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

    can_write = actor.role == "admin" or actor.user_id == worker_id
    case_options = sorted(
        (
            {
                "id": c.id,
                "label": f"{clients[c.client_id].name} (case {c.id}{': ' + c.title if c.title else ''})",
            }
            for c in cases.values()
            if c.client_id in clients and c.status == "open"
        ),
        key=lambda o: str(o["label"]).lower(),
    )
    free_days = [
        (d, [r for r in d.rows if r.state == "free"])
        for wk in week_views
        for d in wk.active_days
        if d.count("free")
    ]
    own = ident.user.id == worker_id
    shown_weeks = weeks

    def link(weeks: int = shown_weeks, book: str = "") -> str:
        """Return this page's address with other settings (the `weeks` shown, a slot to book)."""
        params: dict[str, str | int] = {} if own else {"worker_id": worker_id}
        if weeks != 4:
            params["weeks"] = weeks
        if book:
            params["book"] = book
        return "/worker" + (f"?{urlencode(params)}" if params else "")

    today_view = week_views[0].days[today.weekday()]
    return {
        "worker": worker,
        "own": own,
        "tz": worker.timezone,
        "zone_now": zone_label(now.astimezone(tz)),
        "clock_changes": changes,
        "today": today,
        "today_rows": [r for r in today_view.rows if r.state == "booked"],
        "week_views": week_views,
        "has_hours": any(wk.active_days for wk in week_views),
        "free_days": free_days,
        "book": book,
        "blocks": blocks,
        "can_write": can_write,
        "case_options": case_options,
        "feed_url": f"{rt.settings.base_url}/calendar/{worker.feed_token}.ics" if can_write else None,
        "to_sign": _notes_to_sign(s, actor, worker_id) if can_write else [],
        "walkin_url": (
            f"{rt.settings.base_url}/w/{walkin_link_token(s, actor, worker_id)}"
            if can_write and any(b.mode == "walk_in" for b, _ in blocks)
            else None
        ),
        "weekdays": WEEKDAYS,
        "weeks": weeks,
        "link": link,
        "action_query": "" if own else f"?worker_id={worker_id}",
    }


@_page
async def worker_page(request: web.Request) -> web.StreamResponse:
    """GET /worker: office hours, the coming weeks with bookings, and the forms to change them."""
    ident = _require(request)
    rt = request.app[RUNTIME]
    worker_id = _worker_id(request, ident)
    raw_weeks = request.query.get("weeks", "4")
    weeks = int(raw_weeks) if raw_weeks.isdigit() and 1 <= int(raw_weeks) <= 12 else 4
    book = request.query.get("book", "")[:40]
    view = await rt.db.write(_worker_view, ident, worker_id, rt, weeks, book)
    return render(
        "worker.html",
        me=ident.user,
        csrf=ident.csrf_token,
        notice=request.query.get("notice", "")[:500],
        error=request.query.get("error", "")[:500],
        **view,
    )


def _worker_path(worker_id: int, ident: Identity) -> str:
    return "/worker" if ident.user.id == worker_id else f"/worker?worker_id={worker_id}"


def _parse_time(value: str, what: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{what}: {value!r} is not a time like 09:00") from exc


def _parse_date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{what}: {value!r} is not a date like 2026-03-10") from exc


def _parse_int(value: str, what: str, lo: int, hi: int) -> int:
    if not value.strip().isdigit() or not lo <= int(value) <= hi:
        raise Invalid(f"{what} must be a whole number from {lo} to {hi}")
    return int(value)


async def _act(request: web.Request, fn: Action) -> web.StreamResponse:
    """Run a form action: check the CSRF token, call `fn`, redirect back with a message."""
    ident = _require(request)
    form = await _form(request, ident)
    worker_id = _worker_id(request, ident)
    back = _worker_path(worker_id, ident)
    try:
        notice = await fn(ident, form, worker_id, request.app[RUNTIME])
    except RecordError as exc:
        raise _back(back, error=exc.detail) from exc
    raise _back(back, notice=notice)


async def _publish(ident: Identity, form: Form, worker_id: int, rt: Runtime) -> str:
    chosen = tuple(d for d in WEEKDAYS if d in form.getall("weekdays", []))
    if not chosen:
        raise Invalid("choose at least one day of the week")
    spec = hours.BlockSpec.checked(
        weekdays=chosen,
        start_time=_parse_time(str(form.get("start_time", "")), "start time"),
        end_time=_parse_time(str(form.get("end_time", "")), "end time"),
        timezone=str(form.get("timezone", "")).strip(),
        slot_minutes=_parse_int(str(form.get("slot_minutes", "")), "slot length", 5, 480),
        buffer_minutes=_parse_int(str(form.get("buffer_minutes", "0") or "0"), "gap between slots", 0, 240),
        mode="walk_in" if form.get("mode") == "walk_in" else "booked",
        starts_on=_parse_date(str(form.get("starts_on", "")), "first day"),
        until=_parse_date(str(form["until"]), "last day") if form.get("until") else None,
        min_notice_minutes=_parse_int(
            str(form.get("min_notice_minutes", "0") or "0"), "minimum notice", 0, 86400
        ),
        max_days_ahead=_parse_int(str(form.get("max_days_ahead", "60") or "60"), "booking horizon", 1, 730),
        title=str(form.get("title", ""))[:200],
    )
    block = await rt.db.write(blocks.create_block, ident.actor, worker_id, spec)
    days = ", ".join(WEEKDAY_NAMES[d] for d in spec.weekdays)
    return f"Office hours published: {days}, {block.start_time:%H:%M}–{block.end_time:%H:%M}."


async def _delete_block(ident: Identity, form: Form, worker_id: int, rt: Runtime) -> str:
    block_id = _parse_int(str(form.get("block_id", "")), "block", 1, 2**31 - 1)
    cancelled = await rt.db.write(
        blocks.delete_block,
        ident.actor,
        worker_id,
        block_id,
        rt.clock(),
        cancel_bookings=form.get("cancel_bookings") == "yes",
    )
    return f"Office hours withdrawn; {len(cancelled)} booking(s) cancelled."


async def _cancel_date(ident: Identity, form: Form, worker_id: int, rt: Runtime) -> str:
    block_id = _parse_int(str(form.get("block_id", "")), "block", 1, 2**31 - 1)
    day = _parse_date(str(form.get("date", "")), "date")
    _, hit = await rt.db.write(
        blocks.add_exception,
        ident.actor,
        worker_id,
        block_id,
        day,
        str(form.get("reason", ""))[:500],
        rt.clock(),
    )
    return f"{day_label(day)} cancelled; {len(hit)} booking(s) cancelled."


def _client_name(s: Session, case_id: int) -> str:
    case = s.get(Case, case_id)
    client = s.get(Client, case.client_id) if case is not None else None
    return client.name if client is not None else f"case {case_id}"


async def _book(ident: Identity, form: Form, worker_id: int, rt: Runtime) -> str:
    raw_case = str(form.get("case_id", ""))
    if not raw_case:
        raise Invalid("choose the client to book for")
    case_id = _parse_int(raw_case, "case", 1, 2**31 - 1)
    try:
        start = datetime.fromisoformat(str(form.get("start", "")))
    except ValueError as exc:
        raise Invalid("choose a free time") from exc
    now = rt.clock()

    def run(s: Session) -> tuple[Booking, str]:
        booking, _ = bookings.book(s, ident.actor, worker_id, case_id, start, now, rt.join_policy)
        return booking, _client_name(s, case_id)

    booking, who = await rt.db.write(run)
    at = booking.start_at.astimezone(start.tzinfo)
    # The kiosk code stays out of this message: it would end up in the URL and the history.
    return f"Booked {who} for {day_label(at.date())}, {at:%H:%M}."


async def _cancel_booking(ident: Identity, form: Form, worker_id: int, rt: Runtime) -> str:
    booking_id = _parse_int(str(form.get("booking_id", "")), "booking", 1, 2**31 - 1)
    reason = str(form.get("reason", ""))[:500]
    now = rt.clock()

    def run(s: Session) -> tuple[datetime, str]:
        booking, _ = bookings.cancel(s, ident.actor, booking_id, reason, now)
        worker = s.get(User, booking.worker_id)
        tz = ZoneInfo(worker.timezone if worker is not None else "UTC")
        return booking.start_at.astimezone(tz), _client_name(s, booking.case_id)

    at, who = await rt.db.write(run)
    return f"Cancelled {who}'s visit on {day_label(at.date())}, {at:%H:%M}. The slot is free again."


def _action(fn: Action) -> Handler:
    @_page
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _act(request, fn)

    return handler


# --- supervisor -------------------------------------------------------------------------


def _team_view(s: Session, ident: Identity, rt: Runtime, presence: live.PresenceOf) -> dict[str, Any]:
    actor = ident.actor
    access.require_role(actor, "supervisor", "admin")
    ids = access.visible_worker_ids(s, actor)
    q = select(User).where(col(User.active).is_(True), User.role != "admin").order_by(col(User.name))
    if ids is not None:
        q = q.where(col(User.id).in_(ids))
    now = rt.clock()
    team = []
    for user in s.exec(q):
        assert user.id is not None
        upcoming = bookings.worker_bookings(s, actor, user.id, now, now + timedelta(days=7))
        blocks = hours.active_blocks(s, [user.id])
        team.append(
            {
                "user": user,
                "upcoming": len(upcoming),
                "blocks": len(blocks),
                "next": upcoming[0].start_at.astimezone(ZoneInfo(user.timezone)) if upcoming else None,
            }
        )
    from web.notes import note_rows  # the notes module imports this one

    zone = ZoneInfo(ident.user.timezone)
    visits = live.live_visits(s, actor, presence)
    return {
        "team": team,
        "to_review": note_rows(s, actor, ("signed",), limit=100),
        "recent_notes": note_rows(s, actor, ("draft", "returned", "approved"), limit=30),
        "zone": zone,
        "now": now,
        "live": visits,
        "alerts": live.alerts_out(s, notes.risk_alerts(s, actor)),
    }


@_page
async def supervisor_page(request: web.Request) -> web.StreamResponse:
    """GET /supervisor: risk alerts, the team's live visits, the team, notes to review."""
    ident = _require(request)
    rt = request.app[RUNTIME]
    view = await rt.db.write(_team_view, ident, rt, live.presence_for(request.app))
    return render(
        "supervisor.html",
        me=ident.user,
        csrf=ident.csrf_token,
        notice=request.query.get("notice", ""),
        error=request.query.get("error", ""),
        **view,
    )


@_page
async def acknowledge_alert(request: web.Request) -> web.StreamResponse:
    """POST /supervisor/risk-alerts/acknowledge: the supervisor has seen the alert and acts on it."""
    ident = _require(request)
    form = await _form(request, ident)
    rt = request.app[RUNTIME]
    alert_id = _parse_int(str(form.get("alert_id", "")), "alert", 1, 2**31 - 1)
    try:
        alert = await rt.db.write(notes.acknowledge_alert, ident.actor, alert_id, rt.clock())
    except RecordError as exc:
        raise _back("/supervisor", error=exc.detail) from exc
    await live.notify_team(request.app, alert.worker_id, "risk")
    raise _back("/supervisor", notice=f"Acknowledged: {alert.label}.")


def install_pages(app: web.Application) -> None:
    """Mount the pages and static files."""
    app.router.add_get("/", sign_in_page)
    app.router.add_post("/", sign_in)
    app.router.add_post("/sign-out", sign_out)
    app.router.add_get("/worker", worker_page)
    app.router.add_post("/worker/office-hours", _action(_publish))
    app.router.add_post("/worker/office-hours/delete", _action(_delete_block))
    app.router.add_post("/worker/office-hours/cancel-date", _action(_cancel_date))
    app.router.add_post("/worker/bookings", _action(_book))
    app.router.add_post("/worker/bookings/cancel", _action(_cancel_booking))
    app.router.add_get("/supervisor", supervisor_page)
    app.router.add_post("/supervisor/risk-alerts/acknowledge", acknowledge_alert)
    app.router.add_static("/static/", HERE / "static", append_version=True)
