"""Cases and their clients."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints
from sqlmodel import Session

from caserecord import access, cases
from caserecord.audit import Actor
from caserecord.models import Case, Client
from scheduler.bookings import worker_zone
from scheduler.links import Links
from web.api.common import STAFF, WRITERS, BookingOut, In, Name, booking_out
from web.routing import Call, Routes, json_response

routes = Routes("cases")


class ClientIn(In):
    name: Name
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    email: Annotated[str, StringConstraints(max_length=254)] | None = None
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)] = "en"


class CaseIn(In):
    worker_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    client: ClientIn
    title: Annotated[str, StringConstraints(max_length=200)] = ""


class ClientOut(BaseModel):
    id: int
    name: str
    phone: str | None
    email: str | None
    language: str


class VisitOut(BaseModel):
    id: int
    booking_id: int | None
    status: str
    join_opens_at: datetime
    join_expires_at: datetime


class CaseOut(BaseModel):
    id: int
    title: str
    status: str
    worker_id: int
    opened_at: datetime
    client: ClientOut
    bookings: list[BookingOut] = []
    visits: list[VisitOut] = []


def _case(case: Case, client: Client) -> CaseOut:
    return CaseOut.model_validate(case.model_dump() | {"client": client.model_dump()})


def case_out(s: Session, actor: Actor, links: Links, case_id: int) -> CaseOut:
    """A case with its client, bookings and visits (the read is audited)."""
    case, client, booked, visits = cases.read_case(s, actor, case_id)
    tz = worker_zone(s, case.worker_id)
    by_booking = {v.booking_id: v for v in visits}
    out = _case(case, client)
    out.bookings = [booking_out(b, by_booking.get(b.id), tz, links) for b in booked]
    out.visits = [VisitOut.model_validate(v.model_dump()) for v in visits]
    return out


@routes.post("/api/cases", WRITERS, CaseOut, status=201)
async def create_case(call: Call[CaseIn, None]) -> web.StreamResponse:
    """Open a case for a new client."""
    body, actor = call.body, call.actor

    def run(s: Session) -> CaseOut:
        access.require_worker_write(s, actor, body.worker_id)
        case, _ = cases.create_case(
            s,
            actor,
            worker_id=body.worker_id,
            client_name=body.client.name,
            phone=body.client.phone,
            email=body.client.email,
            language=body.client.language,
            title=body.title,
        )
        assert case.id is not None
        return case_out(s, actor, call.svc.links, case.id)

    return json_response(await call.svc.db.write(run), 201)


@routes.get("/api/cases", STAFF, CaseOut, many=True)
async def list_cases(call: Call[None, None]) -> web.StreamResponse:
    """List the cases in the caller's caseload."""
    found = await call.svc.db.write(cases.list_cases, call.actor)
    return json_response([_case(case, client) for case, client in found])


@routes.get("/api/cases/{case_id}", STAFF, CaseOut)
async def get_case(call: Call[None, None]) -> web.StreamResponse:
    """A case with its client and timeline."""
    case_id = call.path["case_id"]
    return json_response(await call.svc.db.write(case_out, call.actor, call.svc.links, case_id))
