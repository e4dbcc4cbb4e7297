"""The client's own page (`/c/{token}`): their visit, and moving or cancelling it themselves.

The rules (the link's secret, the cut-off, the form token) are the scheduler's
(:mod:`scheduler.client_page`); this module reads the form and writes the page in the client's
language, times in their phone's own zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from caserecord.audit import Actor
from caserecord.models import BOOKING_ACTIVE
from scheduler import client_page as rules
from scheduler import texts
from scheduler.links import Links
from web.auth import same_origin
from web.pages.common import public, services
from web.routing import client_ip
from web.services import Services


@dataclass(frozen=True, slots=True)
class Moment:
    """A time as the page shows it: words in the worker's zone, and the instant for the device's zone."""

    text: str
    instant: str  # ISO 8601 in UTC, for <time datetime>
    value: str  # ISO 8601 in the worker's zone, what the reschedule form posts


def _moment(moment: datetime, tz: ZoneInfo, language: str) -> Moment:
    return Moment(
        text=texts.local_time(moment, str(tz), language),
        instant=moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        value=moment.astimezone(tz).isoformat(),
    )


def _page(
    request: web.Request,
    view: rules.ClientView,
    svc: Services,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> web.Response:
    b = view.booking
    w = texts.page_words(view.language)
    join_url = Links.join_path(view.visit.join_token) if view.can_join and view.visit is not None else ""
    return public(
        request,
        "client_visit.html",
        status=status,
        w=w,
        token=view.link.token,
        csrf=view.form_token,
        worker=view.worker_name,
        when=_moment(b.start_at, view.tz, view.language),
        zone=str(view.tz),
        status_text=w.statuses.get(view.state, view.state.title()),
        missed=view.missed,
        active=b.status == BOOKING_ACTIVE,
        can_change=view.can_change,
        cutoff_hours=svc.settings.client_cutoff_hours,
        join_url=join_url,
        slots=[_moment(s, view.tz, view.language) for s in view.slots],
        notice=notice,
        error=error,
    )


def _gone(request: web.Request, gone: rules.Gone) -> web.Response:
    language = gone.language or texts.accepted_language(request.headers.get("Accept-Language", ""))
    w = texts.page_words(language)
    detail = w.gone_expired if gone.why == "expired" else w.gone_invalid
    return public(request, "client_gone.html", status=410, w=w, detail=detail)


async def client_page(request: web.Request) -> web.StreamResponse:
    """GET /c/{token}: the client's visit: when, with whom, status, join, reschedule, cancel."""
    svc = services(request)
    try:
        view = await svc.db.write(rules.view, request.match_info["token"], svc.clock(), svc.client_cutoff)
    except rules.Gone as exc:
        return _gone(request, exc)
    notice = texts.page_words(view.language).notices.get(request.query.get("done", ""), "")
    return _page(request, view, svc, notice=notice)


async def client_action(request: web.Request) -> web.StreamResponse:
    """POST /c/{token}/cancel or /c/{token}/reschedule: the client changes their own visit."""
    svc = services(request)
    token = request.match_info["token"]
    action = request.match_info["action"]
    posted = await request.post()
    now = svc.clock()
    try:
        await svc.db.write(
            rules.change,
            token,
            action,
            submitted=str(posted.get("csrf_token", "")),
            same_origin=same_origin(request, svc.settings),
            start_text=str(posted.get("start", ""))[:64],
            now=now,
            cutoff=svc.client_cutoff,
            join=svc.join_policy,
            actor=Actor(None, "client", client_ip(request)),
        )
    except rules.Gone as exc:
        return _gone(request, exc)
    except rules.Refused as exc:
        view = await svc.db.write(rules.view, token, now, svc.client_cutoff)
        return _page(request, view, svc, error=exc.detail, status=exc.status)
    done = "cancelled" if action == "cancel" else "moved"
    raise web.HTTPSeeOther(f"{Links.client_page_path(token)}?done={done}")


ROUTES = [
    web.get("/c/{token}", client_page),
    web.post(r"/c/{token}/{action:cancel|reschedule}", client_action),
]
