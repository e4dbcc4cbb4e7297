"""The JSON API, one module per resource; `build_api` joins their routes into the app's table."""

from __future__ import annotations

from web.api import (
    bookings,
    calendars,
    cases,
    joins,
    notes,
    office_hours,
    session,
    supervision,
    visits,
    workers,
)
from web.routing import Api

MODULES = (session, workers, cases, office_hours, bookings, calendars, visits, joins, notes, supervision)


def build_api() -> Api:
    """Return the route table of every API module, in the order the OpenAPI document lists them."""
    return Api(m.routes for m in MODULES)


__all__ = ["build_api"]
