"""The visit's pages: the client's join page, the kiosk, walk-in queues, and the worker's call page."""

from __future__ import annotations

import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from caserecord.errors import RecordError
from scheduler import walk_ins
from visits import admission, lifecycle
from web.api.joins import KIOSK_COOKIE
from web.pages.common import path_id, public, render, require, services

JOIN_CLOSED = {
    "early": ("Your visit has not opened yet", "You can join from {opens} ({tz})."),
    "expired": (
        "This link has expired",
        "The time for this visit has passed. Call the office to book again.",
    ),
    "cancelled": ("This visit was cancelled", "Call the office or use your latest invitation."),
    "ended": ("This visit has ended", "Thank you. You can close this page."),
}
WALK_IN_BROKEN = "Check the address, or ask at the front desk."
LINK_BROKEN = "Check that you opened the whole link from your invitation, or call the office."


def _local(dt: datetime | None, tz: str) -> str:
    return dt.astimezone(ZoneInfo(tz)).strftime("%A %-d %B, %H:%M") if dt is not None else ""


def _until(end: datetime) -> str:
    return end.strftime("%H:%M %Z").strip()


def _kiosk_cookie(
    request: web.Request, resp: web.StreamResponse, max_age: int = 365 * 86400
) -> web.StreamResponse:
    """Give a kiosk (or a walk-in's phone) the cookie its throttle counts by."""
    if KIOSK_COOKIE not in request.cookies:
        resp.set_cookie(
            KIOSK_COOKIE,
            secrets.token_urlsafe(12),
            httponly=True,
            samesite="Strict",
            max_age=max_age,
        )
    return resp


def _closed(request: web.Request, title: str, detail: str, status: int = 200) -> web.Response:
    """The page a link leads to when it does not lead into a visit: why, and what to do."""
    return public(request, "join_closed.html", status=status, title=title, detail=detail)


async def join_page(request: web.Request) -> web.StreamResponse:
    """GET /j/{token}: the client's page: device check, consent, waiting room, call."""
    svc = services(request)
    token = request.match_info["token"]
    try:
        info = await svc.db.read(admission.join_info, token, svc.clock())
    except RecordError:
        return _closed(request, "This link does not work", LINK_BROKEN, 404)
    if info.state != "open":
        title, detail = JOIN_CLOSED[info.state]
        detail = detail.format(opens=_local(info.opens_at, info.worker_timezone), tz=info.worker_timezone)
        return _closed(request, title, detail, 410 if info.state != "early" else 200)
    starts = _local(info.starts_at, info.worker_timezone)
    return public(
        request, "join.html", info=info, token=token, starts=starts, tz=info.worker_timezone, kiosk=False
    )


async def kiosk_page(request: web.Request) -> web.StreamResponse:
    """GET /kiosk: a public kiosk enters the code from the invitation, or joins a walk-in queue."""
    svc = services(request)
    open_now = await svc.db.read(walk_ins.open_walk_ins, svc.clock())
    # The kiosk shows each open queue's worker and until when, nothing else.
    return _kiosk_cookie(request, public(request, "kiosk.html", walk_ins=open_now, until=_until))


async def walk_in_page(request: web.Request) -> web.StreamResponse:
    """GET /w/{token}: a worker's walk-in link; open during their walk-in hours."""
    svc = services(request)
    token = request.match_info["token"]
    try:
        queue = await svc.db.read(walk_ins.queue_of_link, token, svc.clock())
    except RecordError:
        return _closed(request, "This link does not work", WALK_IN_BROKEN, 404)
    name, tz = queue.worker.name, queue.worker.timezone
    if queue.window is None:
        later = f" They next open {_local(queue.next_open, tz)} ({tz})." if queue.next_open else ""
        return _closed(request, f"{name}'s walk-in hours are closed", f"Come back then.{later}")
    until = _local(queue.window[1], tz)
    resp = public(request, "walk_in.html", worker_name=name, token=token, until=until, tz=tz, walkin=True)
    return _kiosk_cookie(request, resp, max_age=86400)


async def kiosk_walk_in_page(request: web.Request) -> web.StreamResponse:
    """GET /kiosk/walk-in/{worker_id}: a kiosk client picked a walk-in queue: name, check, consent."""
    svc = services(request)
    try:
        worker_id = path_id(request, "worker_id")
        queue = await svc.db.read(walk_ins.queue_of_kiosk, worker_id, svc.clock())
    except (RecordError, web.HTTPNotFound):
        detail = "Go back to the start and pick a name from the list, or ask at the front desk."
        page = public(
            request,
            "kiosk_closed.html",
            status=404,
            title="There is no such walk-in queue",
            detail=detail,
        )
        return _kiosk_cookie(request, page)
    name = queue.worker.name
    if queue.window is None:
        nxt = queue.next_open
        later = f" They next open {nxt.strftime('%A %-d %B, %H:%M %Z')}." if nxt else ""
        detail = f"Nobody can join this queue now.{later} Go back to the start to see who is open."
        page = public(
            request,
            "kiosk_closed.html",
            status=409,
            title=f"{name}'s walk-in hours are closed",
            detail=detail,
        )
        return _kiosk_cookie(request, page)
    until = _until(queue.window[1])
    page = public(request, "walk_in.html", worker_name=name, worker_id=worker_id, until=until, kiosk=True)
    return _kiosk_cookie(request, page)


async def visit_page(request: web.Request) -> web.StreamResponse:
    """GET /visit/{id}: the worker's call page with the waiting room."""
    ident = require(request)
    svc = services(request)
    visit_id = path_id(request, "visit_id")
    try:
        snap = await svc.db.write(lifecycle.read_visit, ident.actor, visit_id)
    except RecordError as exc:
        return render(request, "error.html", status=exc.status, title=exc.title, detail=exc.detail)
    can_act = ident.actor.role == "admin" or ident.actor.user_id == snap.visit.worker_id
    starts = _local(snap.starts_at, snap.worker_timezone)
    return render(request, "visit.html", snap=snap, can_act=can_act, starts=starts, tz=snap.worker_timezone)


ROUTES = [
    web.get("/j/{token}", join_page),
    web.get("/kiosk", kiosk_page),
    web.get("/w/{token}", walk_in_page),
    web.get("/kiosk/walk-in/{worker_id}", kiosk_walk_in_page),
    web.get("/visit/{visit_id}", visit_page),
]
