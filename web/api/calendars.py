"""Calendars: a booking's invite to download, and a worker's subscribable feed (the token is the secret)."""

from __future__ import annotations

from aiohttp import web

from scheduler import calendars
from scheduler.mail import sender_address
from web.api.common import STAFF
from web.routing import Call, Routes
from web.services import SERVICES

routes = Routes("calendars")


@routes.get("/api/bookings/{booking_id}/invite.ics", STAFF, media="text/calendar")
async def booking_invite(call: Call[None, None]) -> web.StreamResponse:
    """The booking's calendar invite."""
    svc = call.svc
    organizer = sender_address(svc.settings.mail_from, svc.settings.base_url).addr_spec
    body = await svc.db.write(
        calendars.invite, call.actor, call.path["booking_id"], svc.links, organizer, svc.clock()
    )
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="invite.ics"'},
    )


async def calendar_feed(request: web.Request) -> web.StreamResponse:
    """GET /calendar/{token}.ics: a worker's subscribable feed (the token is the secret)."""
    svc = request.app[SERVICES]
    body = await svc.db.read(calendars.feed, request.match_info["token"], svc.clock())
    return web.Response(body=body, content_type="text/calendar", charset="utf-8")


FEEDS = [web.get("/calendar/{token}.ics", calendar_feed)]
