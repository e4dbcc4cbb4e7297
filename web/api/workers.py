"""Staff accounts: an admin creates workers; staff list the workers they may see."""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from caserecord import access, accounts
from scheduler import walk_ins
from web.api.common import ADMINS, STAFF, WRITERS, In, Name, UserOut, user_out
from web.routing import Call, Routes, json_response

routes = Routes("workers")


class WorkerIn(In):
    name: Name
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=8, max_length=1000)]
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    supervisor_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    role: Literal["worker", "supervisor", "admin"] = "worker"


class WalkInLinkOut(BaseModel):
    url: str


@routes.post("/api/workers", ADMINS, UserOut, status=201, errors=(409,))
async def create_worker(call: Call[WorkerIn, None]) -> web.StreamResponse:
    """Create a worker (admin)."""
    body = call.body

    user = await call.svc.db.write(accounts.create_user, call.actor, **body.model_dump())
    return json_response(user_out(user, call.svc.links, True), 201)


@routes.get("/api/workers", STAFF, UserOut, many=True)
async def list_workers(call: Call[None, None]) -> web.StreamResponse:
    """List the workers the caller may see."""
    actor = call.actor
    users = await call.svc.db.read(access.visible_staff, actor)
    return json_response(
        [user_out(u, call.svc.links, actor.role == "admin" or u.id == actor.user_id) for u in users]
    )


@routes.post("/api/workers/{worker_id}/walk-in-link", WRITERS, WalkInLinkOut, tag="visits")
async def walk_in_link(call: Call[None, None]) -> web.StreamResponse:
    """The worker's walk-in link (made once)."""
    token = await call.svc.db.write(walk_ins.link_token, call.actor, call.path["worker_id"])
    return json_response(WalkInLinkOut(url=call.svc.links.walk_in(token)))
