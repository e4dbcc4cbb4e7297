"""A visit from the client's side: check in by link or kiosk code, or join a walk-in queue.

These routes take no sign-in: the join token, kiosk code or walk-in link is the secret, and the
kiosk routes are throttled per device and per code (or per queue).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from scheduler import walk_ins
from visits import admission
from visits.runtime import Admission
from web.api.common import In
from web.problems import ProblemError
from web.routing import Call, Routes, client_ip, json_response
from web.services import Services
from web.throttle import Throttle

log = logging.getLogger(__name__)
routes = Routes("visits")
KIOSK_COOKIE = "lastmile_kiosk"
Device = Literal["phone", "tablet", "computer", "kiosk", "unknown"]


class JoinIn(In):
    consent: bool = Field(description="The client agrees that the visit is recorded and transcribed")
    device: Device = "unknown"
    participant_token: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="Given at the first check-in; send it again to rejoin after a drop"
    )


class JoinOut(BaseModel):
    visit_id: int
    participant_id: int
    participant_token: str
    recording: bool
    ice_servers: list[dict[str, Any]]


class KioskIn(In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=20)]


class KioskOut(BaseModel):
    join_token: str
    worker_name: str
    state: str


class WalkInIn(In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    consent: bool
    device: Device = "unknown"


class KioskWalkInIn(In):
    worker_id: Annotated[int, Field(ge=1, le=2**31 - 1, description="A worker from the kiosk's open queues")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    consent: bool = Field(description="The client agrees that the visit is recorded and transcribed")


def throttle(limiter: Throttle, key: str) -> None:
    """Count an attempt against `key`; answer 429 with Retry-After once it is over the limit."""
    if not limiter.allow(key):
        raise ProblemError(
            429,
            "Too Many Requests",
            "too many tries; wait a few minutes and try again",
            retry_after=limiter.retry_after(key),
        )


def device_key(request: web.Request, prefix: str = "") -> str:
    """The kiosk device a request comes from: its address and its kiosk cookie."""
    return f"{prefix}{client_ip(request)}|{request.cookies.get(KIOSK_COOKIE, '')}"


def joined(svc: Services, a: Admission, status: int = 200) -> web.Response:
    assert a.visit.id is not None and a.participant.id is not None
    out = JoinOut(
        visit_id=a.visit.id,
        participant_id=a.participant.id,
        participant_token=a.token,
        recording=bool(a.participant.consent),
        ice_servers=svc.browser_ice,
    )
    return json_response(out, status)


@routes.post("/api/kiosk/check-in", None, KioskOut, errors=(404, 429))
async def kiosk_check_in(call: Call[KioskIn, None]) -> web.StreamResponse:
    """A kiosk trades a visit code for the join link."""
    limits = call.svc.throttles
    throttle(limits.kiosk_device, device_key(call.request))
    throttle(limits.kiosk_code, call.body.code)
    token, info = await call.svc.db.write(admission.kiosk_lookup, call.body.code.strip(), call.svc.clock())
    return json_response(KioskOut(join_token=token, worker_name=info.worker_name, state=info.state))


@routes.post("/api/join/{join_token}", None, JoinOut, errors=(404, 409))
async def join_visit(call: Call[JoinIn, None]) -> web.StreamResponse:
    """A client checks in to the waiting room."""
    body = call.body
    admission = await call.svc.visits.check_in(
        call.tokens["join_token"],
        device=body.device,
        consent=body.consent,
        ip=client_ip(call.request),
        participant_token=body.participant_token,
    )
    return joined(call.svc, admission)


@routes.post("/api/walk-in/{walkin_token}", None, JoinOut, status=201, errors=(404, 409, 429))
async def walk_in(call: Call[WalkInIn, None]) -> web.StreamResponse:
    """A client joins the worker's walk-in queue."""
    body, token = call.body, call.tokens["walkin_token"]
    throttle(call.svc.throttles.kiosk_device, device_key(call.request, "walkin|"))
    admission = await call.svc.visits.walk_in(
        lambda s: walk_ins.worker_of_link(s, token),
        name=body.name,
        phone=body.phone,
        consent=body.consent,
        device=body.device,
        ip=client_ip(call.request),
    )
    return joined(call.svc, admission, 201)


@routes.post("/api/kiosk/walk-in", None, JoinOut, status=201, errors=(404, 409, 429))
async def kiosk_walk_in(call: Call[KioskWalkInIn, None]) -> web.StreamResponse:
    """A kiosk client joins a walk-in queue open now (picked from the kiosk's list)."""
    body = call.body
    # Like codes: each kiosk device is slowed down, and so is a flood aimed at one worker's queue.
    throttle(call.svc.throttles.kiosk_device, device_key(call.request, "kiosk-walkin|"))
    throttle(call.svc.throttles.kiosk_code, f"kiosk-walkin-worker|{body.worker_id}")
    admission = await call.svc.visits.walk_in(
        lambda s: walk_ins.worker_of_kiosk(s, body.worker_id),
        name=body.name,
        phone=body.phone,
        consent=body.consent,
        device="kiosk",
        ip=client_ip(call.request),
    )
    log.info("kiosk walk-in", extra={"visit_id": admission.visit.id, "worker_id": admission.visit.worker_id})
    return joined(call.svc, admission, 201)
