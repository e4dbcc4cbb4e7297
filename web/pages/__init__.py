"""The server-rendered pages, one module per audience: sign-in, the worker, the supervisor, notes,
the visit (client, kiosk, worker's call), the client's own page and the admin's outbox."""

from __future__ import annotations

from aiohttp import web

from web.pages import admin, client, notes, sign_in, supervisor, visits, worker

ROUTES: list[web.RouteDef] = [
    *sign_in.ROUTES,
    *worker.ROUTES,
    *supervisor.ROUTES,
    *notes.ROUTES,
    *visits.ROUTES,
    *client.ROUTES,
    *admin.ROUTES,
]

__all__ = ["ROUTES"]
