"""Small helpers the API tests share."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import ClientResponse, ClientWebSocketResponse, WSMsgType, web
from aiohttp.test_utils import TestClient

from caserecord.models import User
from tests.conftest import AppMaker, Clock, Staff, login

Client = TestClient[web.Request, web.Application]
T = TypeVar("T")
TUESDAY_0900 = "2026-03-03T09:00:00-08:00"  # Tuesday 3 March, 09:00 in Los Angeles: a TUESDAY_MORNINGS slot

TUESDAY_MORNINGS: dict[str, Any] = {
    "weekdays": ["TU", "TH"],
    "start_time": "09:00",
    "end_time": "12:00",
    "timezone": "America/Los_Angeles",
    "slot_minutes": 30,
    "buffer_minutes": 0,
    "mode": "booked",
    "starts_on": "2026-03-01",
    "max_days_ahead": 365,
}


async def ok(resp: Any, status: int = 200) -> Any:
    """Assert the status (showing the body if not) and return the JSON body."""
    text = await resp.text()
    assert resp.status == status, f"{resp.status} != {status}: {text}"
    return await resp.json() if text else None


async def problem(resp: Any, status: int) -> dict[str, Any]:
    """Assert a problem+json answer with `status` and return it."""
    text = await resp.text()
    assert resp.status == status, f"{resp.status} != {status}: {text}"
    assert resp.content_type == "application/problem+json", resp.content_type
    body: dict[str, Any] = await resp.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


async def publish(
    client: Client, headers: dict[str, str], worker_id: int, **overrides: Any
) -> dict[str, Any]:
    """Publish office hours for a worker and return the block."""
    body = {**TUESDAY_MORNINGS, **overrides}
    block: dict[str, Any] = await ok(
        await client.post(f"/api/workers/{worker_id}/office-hours", json=body, headers=headers), 201
    )
    return block


async def open_case(client: Client, headers: dict[str, str], worker_id: int, name: str = "Client A") -> int:
    """Open a case for a new client and return its id."""
    body = {
        "worker_id": worker_id,
        "client": {"name": name, "email": "client@example.net", "phone": "+1 503 555 0199"},
    }
    case: dict[str, Any] = await ok(await client.post("/api/cases", json=body, headers=headers), 201)
    return int(case["id"])


async def book_tuesday(
    client: Client, headers: dict[str, str], worker: User, name: str, start: str = TUESDAY_0900
) -> dict[str, Any]:
    """Publish TUESDAY_MORNINGS for the worker, open a case for `name`, book `start`; return the booking."""
    assert worker.id is not None
    await publish(client, headers, worker.id)
    case_id = await open_case(client, headers, worker.id, name)
    body = {"worker_id": worker.id, "case_id": case_id, "start": start}
    booking: dict[str, Any] = await ok(await client.post("/api/bookings", json=body, headers=headers), 201)
    return booking


async def tuesday_visit(
    make_client: AppMaker, staff: Staff, clock: Clock, name: str, **settings: Any
) -> tuple[Client, dict[str, str], dict[str, Any]]:
    """At 08:55 on Tuesday 3 March (Los Angeles) start the app, sign the worker in and book `name` at 09:00.

    Returns the test client, the worker's bearer headers and the booking.
    """
    clock.now = clock.now.replace(day=3, hour=16, minute=55)
    client = await make_client(**settings)
    headers = await login(client, staff.worker.email)
    return client, headers, await book_tuesday(client, headers, staff.worker, name)


async def logins(client: Client, staff: Staff, *names: str) -> list[dict[str, str]]:
    """Sign in each named member of the staff ("supervisor", "other_worker", ...); return their headers."""
    return [await login(client, staff.by_name(name).email) for name in names]


def join_token(booking: dict[str, Any]) -> str:
    """The secret token at the end of a booking's client join link."""
    return str(booking["client_join_url"].rsplit("/", 1)[1])


async def check_in(client: Client, booking: dict[str, Any], **body: Any) -> dict[str, Any]:
    """Check the booking's client in through the join link (`body`: consent, device...); return the answer."""
    joined: dict[str, Any] = await ok(await client.post(f"/api/join/{join_token(booking)}", json=body))
    return joined


async def admit(
    client: Client, headers: dict[str, str], visit_id: int, participant_id: int
) -> dict[str, Any]:
    """Admit a waiting participant to the visit (as the worker of `headers`); return the visit."""
    body = {"participant_id": participant_id}
    detail: dict[str, Any] = await ok(
        await client.post(f"/api/visits/{visit_id}/admit", json=body, headers=headers)
    )
    return detail


async def add_exception(
    client: Client, headers: dict[str, str], worker_id: int, block_id: int, body: dict[str, Any]
) -> ClientResponse:
    """Post an exception date (`body`: date, reason) to a worker's office-hour block; return the response."""
    path = f"/api/workers/{worker_id}/office-hours/{block_id}/exceptions"
    return await client.post(path, json=body, headers=headers)


async def drafted_note(client: Client, headers: dict[str, str], visit_id: int) -> dict[str, Any]:
    """Wait (10 s at most) until the visit's note has been drafted; return it."""
    for _ in range(200):
        resp = await client.get(f"/api/visits/{visit_id}/note", headers=headers)
        if resp.status == 200:
            body: dict[str, Any] = await resp.json()
            return body
        await asyncio.sleep(0.05)
    raise AssertionError("no note was drafted")


async def next_message(ws: ClientWebSocketResponse, kind: str, within: float = 5.0) -> dict[str, Any]:
    """Read messages until one of type `kind` arrives (`within` seconds at most for each)."""
    while True:
        msg = await ws.receive(timeout=within)
        assert msg.type == WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] == kind:
            return data


async def poll(read: Callable[[], T | None], *, within: float, what: str, every: float = 0.1) -> T:
    """Call `read` (off the loop) every `every` seconds until it returns something truthy; return that."""
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(read)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(every)
