"""Operators' endpoints: /healthz and /metrics answer without signing in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.conftest import Staff
from tests.helpers import Client, ok


async def test_healthz_reports_the_database(client: Client) -> None:
    body = await ok(await client.get("/healthz"))
    assert body == {"status": "ok", "database": True, "version": "0.1.0"}


async def test_metrics_count_requests_by_route_and_bookings(
    client: Client, staff: Staff, as_role: Callable[[str], Awaitable[dict[str, str]]]
) -> None:
    w = await as_role("worker")
    await client.get(f"/api/workers/{staff.worker.id}/office-hours", headers=w)
    await client.post(
        "/api/bookings", json={"worker_id": staff.worker.id, "case_id": 1, "start": "x"}, headers=w
    )
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    # Labelled by route template, not raw path, so ids never become label values.
    assert 'route="/api/workers/{worker_id}/office-hours",status="200"' in text
    assert 'lastmile_logins_total{outcome="ok"} 1.0' in text
    assert "lastmile_http_request_seconds_bucket" in text
