"""The worker's page: their coming weeks with bookings, and the forms that change them.

A supervisor or admin sees a team worker's page with `?worker_id=`; only the worker (or an admin)
may change it, which the scheduler checks on every action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlmodel import Session

from caserecord import note_lists
from caserecord.errors import Invalid, RecordError
from caserecord.names import client_names
from scheduler import blocks, bookings, calendar, hours, walk_ins
from scheduler.calendar import day_label
from scheduler.hours import BlockSpec
from scheduler.rules import WEEKDAYS
from web.pages.common import (
    Form,
    Handler,
    PageError,
    back,
    form,
    messages,
    page,
    parse_date,
    parse_int,
    parse_time,
    render,
    require,
    services,
)
from web.render import WEEKDAY_NAMES
from web.routing import parse_id
from web.services import Identity, Services

Action = Callable[[Identity, Form, int, Services], Awaitable[str]]
DEFAULT_WEEKS = 4


def _worker_id(request: web.Request, ident: Identity) -> int:
    raw = request.query.get("worker_id") or request.match_info.get("worker_id") or ""
    if not raw:
        if ident.user.role != "worker":
            raise web.HTTPSeeOther("/supervisor")
        assert ident.user.id is not None
        return ident.user.id
    found = parse_id(raw)
    if found is None:
        raise PageError(404, f"There is no worker {raw!r}.")
    return found


def _worker_path(worker_id: int, ident: Identity) -> str:
    return "/worker" if ident.user.id == worker_id else f"/worker?worker_id={worker_id}"


def _view(
    s: Session, ident: Identity, worker_id: int, svc: Services, weeks: int, book: str
) -> dict[str, Any]:
    actor = ident.actor
    cal = calendar.worker_calendar(s, actor, worker_id, svc.clock(), weeks)
    can_write = actor.role == "admin" or actor.user_id == worker_id
    own = ident.user.id == worker_id
    shown_weeks = weeks

    def link(weeks: int = shown_weeks, book: str = "") -> str:
        """Return this page's address with other settings (the `weeks` shown, a slot to book)."""
        params: dict[str, str | int] = {} if own else {"worker_id": worker_id}
        if weeks != DEFAULT_WEEKS:
            params["weeks"] = weeks
        if book:
            params["book"] = book
        return "/worker" + (f"?{urlencode(params)}" if params else "")

    walk_in_url = None
    if can_write and cal.has_walk_in:
        walk_in_url = svc.links.walk_in(walk_ins.link_token(s, actor, worker_id))
    return {
        "worker": cal.worker,
        "own": own,
        "tz": cal.worker.timezone,
        "zone_now": cal.zone_now,
        "clock_changes": cal.clock_changes,
        "today": cal.today,
        "today_rows": cal.today_rows,
        "week_views": cal.week_views,
        "has_hours": cal.has_hours,
        "free_days": cal.free_days,
        "book": book,
        "blocks": cal.blocks,
        "can_write": can_write,
        "case_options": cal.case_options,
        "feed_url": svc.links.feed(cal.worker.feed_token) if can_write else None,
        "to_sign": note_lists.to_sign(s, worker_id) if can_write else [],
        "walkin_url": walk_in_url,
        "weekdays": WEEKDAYS,
        "weeks": weeks,
        "link": link,
        "action_query": "" if own else f"?worker_id={worker_id}",
    }


@page
async def worker_page(request: web.Request) -> web.StreamResponse:
    """GET /worker: office hours, the coming weeks with bookings, and the forms to change them."""
    ident = require(request)
    svc = services(request)
    worker_id = _worker_id(request, ident)
    raw_weeks = request.query.get("weeks", str(DEFAULT_WEEKS))
    weeks = int(raw_weeks) if raw_weeks.isdigit() and 1 <= int(raw_weeks) <= 12 else DEFAULT_WEEKS
    book = request.query.get("book", "")[:40]
    view = await svc.db.write(_view, ident, worker_id, svc, weeks, book)
    return render(request, "worker.html", **messages(request), **view)


def _action(fn: Action) -> Handler:
    """A form action: check the CSRF token, call `fn`, go back to the page with what it did."""

    @page
    async def handler(request: web.Request) -> web.StreamResponse:
        ident = require(request)
        posted = await form(request, ident)
        worker_id = _worker_id(request, ident)
        to = _worker_path(worker_id, ident)
        try:
            notice = await fn(ident, posted, worker_id, services(request))
        except RecordError as exc:
            raise back(to, error=exc.detail) from exc
        raise back(to, notice=notice)

    return handler


async def _publish(ident: Identity, posted: Form, worker_id: int, svc: Services) -> str:
    chosen = tuple(d for d in WEEKDAYS if d in posted.getall("weekdays", []))
    if not chosen:
        raise Invalid("choose at least one day of the week")

    def number(name: str, what: str, lo: int, hi: int, default: str) -> int:
        return parse_int(str(posted.get(name, default) or default), what, lo, hi)

    hours.to_zone(str(posted.get("timezone", "")).strip())  # "unknown time zone '...'"
    spec = BlockSpec.checked(
        weekdays=chosen,
        start_time=parse_time(str(posted.get("start_time", "")), "start time"),
        end_time=parse_time(str(posted.get("end_time", "")), "end time"),
        timezone=str(posted.get("timezone", "")).strip(),
        slot_minutes=parse_int(str(posted.get("slot_minutes", "")), "slot length", 5, 480),
        buffer_minutes=number("buffer_minutes", "gap between slots", 0, 240, "0"),
        mode="walk_in" if posted.get("mode") == "walk_in" else "booked",
        starts_on=parse_date(str(posted.get("starts_on", "")), "first day"),
        until=parse_date(str(posted["until"]), "last day") if posted.get("until") else None,
        min_notice_minutes=number("min_notice_minutes", "minimum notice", 0, 86400, "0"),
        max_days_ahead=number("max_days_ahead", "booking horizon", 1, 730, "60"),
        title=str(posted.get("title", ""))[:200],
    )
    block = await svc.db.write(blocks.create_block, ident.actor, worker_id, spec)
    days = ", ".join(WEEKDAY_NAMES[d] for d in spec.weekdays)
    return f"Office hours published: {days}, {block.start_time:%H:%M}–{block.end_time:%H:%M}."


async def _delete_block(ident: Identity, posted: Form, worker_id: int, svc: Services) -> str:
    block_id = parse_int(str(posted.get("block_id", "")), "block")
    cancelled = await svc.db.write(
        blocks.delete_block,
        ident.actor,
        worker_id,
        block_id,
        svc.clock(),
        cancel_bookings=posted.get("cancel_bookings") == "yes",
    )
    return f"Office hours withdrawn; {len(cancelled)} booking(s) cancelled."


async def _cancel_date(ident: Identity, posted: Form, worker_id: int, svc: Services) -> str:
    block_id = parse_int(str(posted.get("block_id", "")), "block")
    day = parse_date(str(posted.get("date", "")), "date")
    reason = str(posted.get("reason", ""))[:500]
    _, hit = await svc.db.write(
        blocks.add_exception,
        ident.actor,
        worker_id,
        block_id,
        day,
        reason,
        svc.clock(),
    )
    return f"{day_label(day)} cancelled; {len(hit)} booking(s) cancelled."


def _client_name(s: Session, case_id: int) -> str:
    return client_names(s, [case_id]).get(case_id, f"case {case_id}")


async def _book(ident: Identity, posted: Form, worker_id: int, svc: Services) -> str:
    raw_case = str(posted.get("case_id", ""))
    if not raw_case:
        raise Invalid("choose the client to book for")
    case_id = parse_int(raw_case, "case")
    try:
        start = datetime.fromisoformat(str(posted.get("start", "")))
    except ValueError as exc:
        raise Invalid("choose a free time") from exc
    now = svc.clock()

    def run(s: Session) -> tuple[datetime, str]:
        booking, _ = bookings.book(s, ident.actor, worker_id, case_id, start, now, svc.join_policy)
        return booking.start_at, _client_name(s, case_id)

    at, who = await svc.db.write(run)
    at = at.astimezone(start.tzinfo)
    # The kiosk code stays out of this message: it would end up in the URL and the history.
    return f"Booked {who} for {day_label(at.date())}, {at:%H:%M}."


async def _cancel_booking(ident: Identity, posted: Form, worker_id: int, svc: Services) -> str:
    booking_id = parse_int(str(posted.get("booking_id", "")), "booking")
    reason = str(posted.get("reason", ""))[:500]
    now = svc.clock()

    def run(s: Session) -> tuple[datetime, str]:
        booking, _ = bookings.cancel(s, ident.actor, booking_id, reason, now)
        zone = bookings.worker_zone(s, booking.worker_id)
        return booking.start_at.astimezone(zone), _client_name(s, booking.case_id)

    at, who = await svc.db.write(run)
    return f"Cancelled {who}'s visit on {day_label(at.date())}, {at:%H:%M}. The slot is free again."


ROUTES = [
    web.get("/worker", worker_page),
    web.post("/worker/office-hours", _action(_publish)),
    web.post("/worker/office-hours/delete", _action(_delete_block)),
    web.post("/worker/office-hours/cancel-date", _action(_cancel_date)),
    web.post("/worker/bookings", _action(_book)),
    web.post("/worker/bookings/cancel", _action(_cancel_booking)),
]
