"""Server-rendered pages for staff: sign-in, the worker's calendar, the supervisor's team."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from multidict import MultiDictProxy
from sqlmodel import Session, col, select

from caserecord import access, accounts
from caserecord.errors import Forbidden, Invalid, RecordError, Unauthenticated
from caserecord.models import Booking, Case, Client, User
from scheduler import service
from scheduler.rules import WEEKDAYS, Slot
from web.auth import check_csrf, clear_session_cookie, end_session, set_session_cookie
from web.routing import client_ip
from web.runtime import IDENTITY, RUNTIME, Identity, Runtime

HERE = Path(__file__).parent
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
WEEKDAY_NAMES = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
_env.globals["weekday_names"] = WEEKDAY_NAMES


def render(name: str, status: int = 200, **ctx: Any) -> web.Response:
    html = _env.get_template(name).render(**ctx)
    resp = web.Response(text=html, content_type="text/html", status=status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _identity(request: web.Request) -> Identity | None:
    return request.get(IDENTITY)


def _require(request: web.Request) -> Identity:
    ident = _identity(request)
    if ident is None:
        raise web.HTTPSeeOther(f"/?next={quote(request.path_qs)}")
    return ident


async def _form(request: web.Request, ident: Identity) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    form = await request.post()
    check_csrf(request, ident, str(form.get("csrf_token", "")))
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
    return value if value.startswith("/") and not value.startswith("//") else ""


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    ident = _identity(request)
    if ident is not None:
        raise web.HTTPSeeOther(_home_for(ident.user))
    rt = request.app[RUNTIME]
    return render(
        "sign_in.html",
        error=request.query.get("error", ""),
        next=_safe_next(request.query.get("next", "")),
        demo=rt.settings.demo,
        email="",
    )


async def sign_in(request: web.Request) -> web.StreamResponse:
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


async def sign_out(request: web.Request) -> web.StreamResponse:
    ident = _require(request)
    await _form(request, ident)
    await end_session(request)
    resp = web.HTTPSeeOther("/")
    clear_session_cookie(resp)
    raise resp


# --- worker -----------------------------------------------------------------------------


@dataclass
class DayView:
    day: date
    label: str
    slots: list[dict[str, Any]]


def _worker_id(request: web.Request, ident: Identity) -> int:
    raw = request.query.get("worker_id") or request.match_info.get("worker_id") or ""
    if not raw:
        if ident.user.role != "worker":
            raise web.HTTPSeeOther("/supervisor")
        assert ident.user.id is not None
        return ident.user.id
    if not raw.isdigit() or not 1 <= int(raw) < 2**31:
        raise web.HTTPNotFound(text="no such worker")
    return int(raw)


def _worker_view(s: Session, ident: Identity, worker_id: int, rt: Runtime, weeks: int) -> dict[str, Any]:
    actor = ident.actor
    worker = access.require_worker(s, actor, worker_id)
    tz = ZoneInfo(worker.timezone)
    now = rt.clock()
    today = now.astimezone(tz).date()
    last = today + timedelta(days=7 * weeks - 1)
    _, slots = service.worker_slots(s, actor, worker_id, today, last, now)
    lo = datetime.combine(today, time(0), tz)
    hi = datetime.combine(last + timedelta(days=1), time(0), tz)
    bookings = service.worker_bookings(s, actor, worker_id, lo, hi)
    cases = {c.id: c for c in s.exec(select(Case).where(Case.worker_id == worker_id, Case.status == "open"))}
    clients = {
        c.id: c
        for c in s.exec(select(Client).where(col(Client.id).in_([c.client_id for c in cases.values()])))
    }
    by_start = {b.start_at: b for b in bookings}
    days: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for slot in slots:
        booking = by_start.get(slot.start)
        days[slot.start.date()].append(_slot_row(slot, booking, cases, clients, tz))
    for b in bookings:  # bookings whose block was changed still show
        if not any(row.get("booking_id") == b.id for row in days[b.start_at.astimezone(tz).date()]):
            days[b.start_at.astimezone(tz).date()].append(_booking_row(b, cases, clients, tz))
    day_views = [
        DayView(d, d.strftime("%A %-d %B"), sorted(rows, key=lambda r: r["start"]))
        for d, rows in sorted(days.items())
    ]
    blocks = service.list_blocks(s, actor, worker_id)
    can_write = actor.role == "admin" or actor.user_id == worker_id
    case_options = [
        {"id": c.id, "label": f"{clients[c.client_id].name} (case {c.id}{': ' + c.title if c.title else ''})"}
        for c in cases.values()
        if c.client_id in clients
    ]
    today_rows = [r for d in day_views if d.day == today for r in d.slots if r["kind"] == "booking"]
    return {
        "worker": worker,
        "tz": worker.timezone,
        "today": today,
        "today_rows": today_rows,
        "days": day_views,
        "blocks": blocks,
        "can_write": can_write,
        "case_options": case_options,
        "feed_url": f"{rt.settings.base_url}/calendar/{worker.feed_token}.ics" if can_write else None,
        "weekdays": WEEKDAYS,
        "weeks": weeks,
    }


def _slot_row(
    slot: Slot, booking: Booking | None, cases: dict[Any, Case], clients: dict[Any, Client], tz: ZoneInfo
) -> dict[str, Any]:
    if booking is not None:
        return _booking_row(booking, cases, clients, tz)
    start = slot.start.astimezone(tz)
    return {
        "kind": "walk_in" if slot.mode == "walk_in" else "slot",
        "start": start,
        "time": f"{start:%H:%M}–{slot.end.astimezone(tz):%H:%M}",
        "iso": start.isoformat(),
        "available": slot.available,
    }


def _booking_row(
    b: Booking, cases: dict[Any, Case], clients: dict[Any, Client], tz: ZoneInfo
) -> dict[str, Any]:
    start = b.start_at.astimezone(tz)
    case = cases.get(b.case_id)
    client = clients.get(case.client_id) if case is not None else None
    return {
        "kind": "booking",
        "start": start,
        "time": f"{start:%H:%M}–{b.end_at.astimezone(tz):%H:%M}",
        "iso": start.isoformat(),
        "booking_id": b.id,
        "case_id": b.case_id,
        "who": client.name if client is not None else f"case {b.case_id}",
    }


async def worker_page(request: web.Request) -> web.StreamResponse:
    ident = _require(request)
    rt = request.app[RUNTIME]
    worker_id = _worker_id(request, ident)
    raw_weeks = request.query.get("weeks", "4")
    weeks = int(raw_weeks) if raw_weeks.isdigit() and 1 <= int(raw_weeks) <= 12 else 4
    try:
        view = await rt.db.write(_worker_view, ident, worker_id, rt, weeks)
    except (Forbidden, RecordError) as exc:
        return render(
            "error.html",
            status=exc.status,
            me=ident.user,
            csrf=ident.csrf_token,
            title=exc.title,
            detail=exc.detail,
        )
    return render(
        "worker.html",
        me=ident.user,
        csrf=ident.csrf_token,
        notice=request.query.get("notice", ""),
        error=request.query.get("error", ""),
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


async def _act(request: web.Request, fn: Any) -> web.StreamResponse:
    """Run a form action: parse, call `fn(ident, form, worker_id)`, redirect back with a message."""
    ident = _require(request)
    form = await _form(request, ident)
    worker_id = _worker_id(request, ident)
    back = _worker_path(worker_id, ident)
    try:
        notice = await fn(ident, form, worker_id, request.app[RUNTIME])
    except RecordError as exc:
        raise _back(back, error=exc.detail) from exc
    raise _back(back, notice=notice)


async def _publish(ident: Identity, form: Any, worker_id: int, rt: Runtime) -> str:
    spec = service.BlockSpec(
        weekdays=tuple(d for d in WEEKDAYS if d in form.getall("weekdays", [])),
        start_time=_parse_time(str(form.get("start_time", "")), "start time"),
        end_time=_parse_time(str(form.get("end_time", "")), "end time"),
        timezone=str(form.get("timezone", "")),
        slot_minutes=_parse_int(str(form.get("slot_minutes", "")), "slot length", 5, 480),
        buffer_minutes=_parse_int(str(form.get("buffer_minutes", "0") or "0"), "buffer", 0, 240),
        mode="walk_in" if form.get("mode") == "walk_in" else "booked",
        starts_on=_parse_date(str(form.get("starts_on", "")), "first day"),
        until=_parse_date(str(form["until"]), "last day") if form.get("until") else None,
        min_notice_minutes=_parse_int(
            str(form.get("min_notice_minutes", "0") or "0"), "minimum notice", 0, 86400
        ),
        max_days_ahead=_parse_int(str(form.get("max_days_ahead", "60") or "60"), "booking horizon", 1, 730),
        title=str(form.get("title", ""))[:200],
    )
    block = await rt.db.write(service.create_block, ident.actor, worker_id, spec)
    return f"Office hours published (block {block.id})."


async def _delete_block(ident: Identity, form: Any, worker_id: int, rt: Runtime) -> str:
    block_id = _parse_int(str(form.get("block_id", "")), "block", 1, 2**31 - 1)
    cancelled = await rt.db.write(
        service.delete_block,
        ident.actor,
        worker_id,
        block_id,
        rt.clock(),
        cancel_bookings=form.get("cancel_bookings") == "yes",
    )
    return f"Office hours withdrawn; {len(cancelled)} booking(s) cancelled."


async def _cancel_date(ident: Identity, form: Any, worker_id: int, rt: Runtime) -> str:
    block_id = _parse_int(str(form.get("block_id", "")), "block", 1, 2**31 - 1)
    day = _parse_date(str(form.get("date", "")), "date")
    _, hit = await rt.db.write(
        service.add_exception,
        ident.actor,
        worker_id,
        block_id,
        day,
        str(form.get("reason", ""))[:500],
        rt.clock(),
    )
    return f"{day:%A %-d %B} cancelled; {len(hit)} booking(s) cancelled."


async def _book(ident: Identity, form: Any, worker_id: int, rt: Runtime) -> str:
    case_id = _parse_int(str(form.get("case_id", "")), "case", 1, 2**31 - 1)
    try:
        start = datetime.fromisoformat(str(form.get("start", "")))
    except ValueError as exc:
        raise Invalid("that is not a slot time") from exc
    booking, visit = await rt.db.write(
        service.book, ident.actor, worker_id, case_id, start, rt.clock(), rt.join_policy
    )
    return (
        f"Booked {booking.start_at.astimezone(start.tzinfo):%A %-d %B %H:%M}. Kiosk code {visit.kiosk_code}."
    )


async def _cancel_booking(ident: Identity, form: Any, worker_id: int, rt: Runtime) -> str:
    booking_id = _parse_int(str(form.get("booking_id", "")), "booking", 1, 2**31 - 1)
    await rt.db.write(service.cancel, ident.actor, booking_id, str(form.get("reason", ""))[:500], rt.clock())
    return "Booking cancelled; the slot is free again."


def _action(fn: Any) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await _act(request, fn)

    return handler


# --- supervisor -------------------------------------------------------------------------


def _team_view(s: Session, ident: Identity, rt: Runtime) -> dict[str, Any]:
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
        upcoming = service.worker_bookings(s, actor, user.id, now, now + timedelta(days=7))
        blocks = service.active_blocks(s, [user.id])
        team.append(
            {
                "user": user,
                "upcoming": len(upcoming),
                "blocks": len(blocks),
                "next": upcoming[0].start_at.astimezone(ZoneInfo(user.timezone)) if upcoming else None,
            }
        )
    return {"team": team}


async def supervisor_page(request: web.Request) -> web.StreamResponse:
    ident = _require(request)
    rt = request.app[RUNTIME]
    try:
        view = await rt.db.read(_team_view, ident, rt)
    except RecordError as exc:
        return render(
            "error.html",
            status=exc.status,
            me=ident.user,
            csrf=ident.csrf_token,
            title=exc.title,
            detail=exc.detail,
        )
    return render("supervisor.html", me=ident.user, csrf=ident.csrf_token, **view)


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
    app.router.add_static("/static/", HERE / "static", append_version=True)
