"""Office hours: publish a block, list and withdraw blocks, cancel a date, the slots they give."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from caserecord.models import OfficeHourBlock, OfficeHourException
from scheduler import blocks, hours
from scheduler.hours import BlockSpec
from web.api.common import STAFF, WRITERS, In, SlotOut, slot_out
from web.routing import Call, Routes, json_response

routes = Routes("office hours")


class OfficeHoursIn(In, BlockSpec):
    """A block of office hours to publish."""


class ExceptionOut(BaseModel):
    date: date
    reason: str


class OfficeHoursOut(BlockSpec):
    """A published block: its fields, and the dates it is not held on."""

    id: int
    worker_id: int
    exceptions: list[ExceptionOut] = Field(default_factory=list)


class ExceptionIn(In):
    date: date
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class ExceptionResult(BaseModel):
    block_id: int
    date: date
    reason: str
    cancelled_bookings: list[int]


class DeleteQuery(BaseModel):
    cancel_bookings: bool = False


class SlotsQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", description="First local date, YYYY-MM-DD")
    to: date = Field(description="Last local date (inclusive), at most 92 days after `from`")


def block_out(b: OfficeHourBlock, excs: list[OfficeHourException]) -> OfficeHoursOut:
    assert b.id is not None
    return OfficeHoursOut(
        **dict(BlockSpec.of(b)),
        id=b.id,
        worker_id=b.worker_id,
        exceptions=[ExceptionOut(date=e.day, reason=e.reason) for e in excs],
    )


@routes.post("/api/workers/{worker_id}/office-hours", WRITERS, OfficeHoursOut, status=201, errors=(409,))
async def create_office_hours(call: Call[OfficeHoursIn, None]) -> web.StreamResponse:
    """Publish a block of office hours."""
    block = await call.svc.db.write(blocks.create_block, call.actor, call.path["worker_id"], call.body)
    return json_response(block_out(block, []), 201)


@routes.get("/api/workers/{worker_id}/office-hours", STAFF, OfficeHoursOut, many=True)
async def list_office_hours(call: Call[None, None]) -> web.StreamResponse:
    """A worker's office-hour blocks."""
    found = await call.svc.db.read(hours.list_blocks, call.actor, call.path["worker_id"])
    return json_response([block_out(b, e) for b, e in found])


@routes.delete("/api/workers/{worker_id}/office-hours/{block_id}", WRITERS, status=204, errors=(409,))
async def delete_office_hours(call: Call[None, DeleteQuery]) -> web.StreamResponse:
    """Withdraw a block."""
    await call.svc.db.write(
        blocks.delete_block,
        call.actor,
        call.path["worker_id"],
        call.path["block_id"],
        call.svc.clock(),
        cancel_bookings=call.query.cancel_bookings,
    )
    return web.Response(status=204)


@routes.post(
    "/api/workers/{worker_id}/office-hours/{block_id}/exceptions",
    WRITERS,
    ExceptionResult,
    status=201,
    errors=(409,),
)
async def add_exception(call: Call[ExceptionIn, None]) -> web.StreamResponse:
    """Cancel one date of a block (its bookings are cancelled)."""
    b = call.body
    exc, hit = await call.svc.db.write(
        blocks.add_exception,
        call.actor,
        call.path["worker_id"],
        call.path["block_id"],
        b.date,
        b.reason,
        call.svc.clock(),
    )
    result = ExceptionResult(
        block_id=exc.block_id,
        date=exc.day,
        reason=exc.reason,
        cancelled_bookings=[h.id for h in hit if h.id is not None],
    )
    return json_response(result, 201)


@routes.get("/api/workers/{worker_id}/slots", STAFF, SlotOut, many=True)
async def slots(call: Call[None, SlotsQuery]) -> web.StreamResponse:
    """Slots on local dates from..to."""
    q = call.query
    worker_id = call.path["worker_id"]
    _, found = await call.svc.db.read(
        hours.worker_slots,
        call.actor,
        worker_id,
        q.from_,
        q.to,
        call.svc.clock(),
    )
    return json_response([slot_out(s) for s in found])
