"""Bookings: book a slot for a case, read one, cancel or move it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import Field, StringConstraints
from sqlmodel import Session

from caserecord.audit import Actor
from caserecord.models import Booking, Visit
from scheduler import bookings
from scheduler.bookings import JoinPolicy, worker_zone
from scheduler.links import Links
from web.api.common import STAFF, WRITERS, BookingOut, In, booking_out
from web.routing import Call, Routes, json_response

routes = Routes("bookings")


class BookingIn(In):
    worker_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    case_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    start: datetime = Field(description="The slot's start, ISO 8601 with offset")


class CancelIn(In):
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class RescheduleIn(In):
    start: datetime


def _out(s: Session, found: tuple[Booking, Visit | None], links: Links) -> BookingOut:
    booking, visit = found
    return booking_out(booking, visit, worker_zone(s, booking.worker_id), links)


def _book(
    s: Session, actor: Actor, b: BookingIn, now: datetime, join: JoinPolicy, links: Links
) -> BookingOut:
    return _out(s, bookings.book(s, actor, b.worker_id, b.case_id, b.start, now, join), links)


@routes.post("/api/bookings", WRITERS, BookingOut, status=201, errors=(404, 409))
async def create_booking(call: Call[BookingIn, None]) -> web.StreamResponse:
    """Book a slot for a case."""
    svc = call.svc
    try:
        out = await svc.db.write(_book, call.actor, call.body, svc.clock(), svc.join_policy, svc.links)
    except Exception as exc:
        svc.metrics.bookings.labels(type(exc).__name__.lower()).inc()
        raise
    svc.metrics.bookings.labels("created").inc()
    return json_response(out, 201)


@routes.get("/api/bookings/{booking_id}", STAFF, BookingOut)
async def get_booking(call: Call[None, None]) -> web.StreamResponse:
    """A booking."""

    def run(s: Session) -> BookingOut:
        return _out(s, bookings.get_booking(s, call.actor, call.path["booking_id"]), call.svc.links)

    return json_response(await call.svc.db.write(run))


@routes.post("/api/bookings/{booking_id}/cancel", WRITERS, BookingOut, errors=(409,))
async def cancel_booking(call: Call[CancelIn, None]) -> web.StreamResponse:
    """Cancel a booking."""
    now = call.svc.clock()

    def run(s: Session) -> BookingOut:
        found = bookings.cancel(s, call.actor, call.path["booking_id"], call.body.reason, now)
        return _out(s, found, call.svc.links)

    return json_response(await call.svc.db.write(run))


@routes.post("/api/bookings/{booking_id}/reschedule", WRITERS, BookingOut, errors=(409,))
async def reschedule_booking(call: Call[RescheduleIn, None]) -> web.StreamResponse:
    """Move a booking to another slot."""
    svc = call.svc

    def run(s: Session) -> BookingOut:
        booking_id, start = call.path["booking_id"], call.body.start
        found = bookings.reschedule(s, call.actor, booking_id, start, svc.clock(), svc.join_policy)
        return _out(s, found, svc.links)

    return json_response(await svc.db.write(run))
