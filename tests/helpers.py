"""Small helpers the API tests share."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[web.Request, web.Application]

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
