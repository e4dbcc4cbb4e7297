"""Booking over HTTP against the real server and database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from caserecord.models import Booking
from tests.conftest import Staff
from tests.helpers import Client, add_exception, ok, open_case, problem, publish
from web.services import SERVICES

Role = Callable[[str], Awaitable[dict[str, str]]]


async def test_book_cancel_and_rebook(client: Client, staff: Staff, as_role: Role) -> None:
    w = await as_role("worker")
    assert staff.worker.id is not None
    await publish(client, w, staff.worker.id)
    case_id = await open_case(client, w, staff.worker.id)
    slots = await ok(
        await client.get(f"/api/workers/{staff.worker.id}/slots?from=2026-03-03&to=2026-03-03", headers=w)
    )
    assert [s["start"] for s in slots][:2] == ["2026-03-03T09:00:00-08:00", "2026-03-03T09:30:00-08:00"]
    start = slots[1]["start"]
    body = {"worker_id": staff.worker.id, "case_id": case_id, "start": start}
    booking = await ok(await client.post("/api/bookings", json=body, headers=w), 201)
    assert booking["start"] == start and booking["end"] == "2026-03-03T10:00:00-08:00"
    assert booking["status"] == "booked" and booking["client_join_url"].startswith("http://lastmile.test/j/")
    assert len(booking["kiosk_code"]) == 6 and booking["visit_id"]
    await problem(await client.post("/api/bookings", json=body, headers=w), 409)
    after = await ok(
        await client.get(f"/api/workers/{staff.worker.id}/slots?from=2026-03-03&to=2026-03-03", headers=w)
    )
    assert [s["available"] for s in after][:3] == [True, False, True]
    cancelled = await ok(await client.post(f"/api/bookings/{booking['id']}/cancel", json={}, headers=w))
    assert (
        cancelled["status"] == "cancelled" and cancelled["sequence"] == 1 and cancelled["kiosk_code"] is None
    )
    again = await ok(await client.post("/api/bookings", json=body, headers=w), 201)
    assert again["id"] != booking["id"]


async def test_reschedule_keeps_uid_and_raises_sequence(client: Client, staff: Staff, as_role: Role) -> None:
    w = await as_role("worker")
    assert staff.worker.id is not None
    await publish(client, w, staff.worker.id)
    case_id = await open_case(client, w, staff.worker.id)
    body = {"worker_id": staff.worker.id, "case_id": case_id, "start": "2026-03-05T09:00:00-08:00"}
    first = await ok(await client.post("/api/bookings", json=body, headers=w), 201)
    moved = await ok(
        await client.post(
            f"/api/bookings/{first['id']}/reschedule", json={"start": "2026-03-05T11:30:00-08:00"}, headers=w
        )
    )
    assert (
        moved["id"] == first["id"]
        and moved["sequence"] == 1
        and moved["start"] == "2026-03-05T11:30:00-08:00"
    )
    # The old slot is free again, the new one is taken.
    slots = await ok(
        await client.get(f"/api/workers/{staff.worker.id}/slots?from=2026-03-05&to=2026-03-05", headers=w)
    )
    free = {s["start"]: s["available"] for s in slots}
    assert free["2026-03-05T09:00:00-08:00"] and not free["2026-03-05T11:30:00-08:00"]


async def test_two_hundred_concurrent_requests_for_one_slot(
    client: Client, staff: Staff, as_role: Role
) -> None:
    w = await as_role("worker")
    assert staff.worker.id is not None
    await publish(client, w, staff.worker.id)
    case_ids = [await open_case(client, w, staff.worker.id, f"Client {i}") for i in range(4)]
    start = "2026-03-10T10:00:00-07:00"  # after the spring-forward change

    async def attempt(i: int) -> int:
        body = {"worker_id": staff.worker.id, "case_id": case_ids[i % 4], "start": start}
        resp = await client.post("/api/bookings", json=body, headers=w)
        await resp.read()
        return resp.status

    statuses = Counter(await asyncio.gather(*(attempt(i) for i in range(200))))
    assert statuses == Counter({201: 1, 409: 199})
    slots = await ok(
        await client.get(f"/api/workers/{staff.worker.id}/slots?from=2026-03-10&to=2026-03-10", headers=w)
    )
    assert [s["start"] for s in slots if not s["available"]] == [start]


async def test_overlapping_slots_of_different_lengths_cannot_both_be_booked(
    client: Client, staff: Staff, as_role: Role
) -> None:
    """Cal.com's unique key on (start, end, user) missed this; the database must not."""
    w = await as_role("worker")
    assert staff.worker.id is not None
    block = await publish(client, w, staff.worker.id, weekdays=["TU"], slot_minutes=60)
    case_id = await open_case(client, w, staff.worker.id)
    await ok(
        await client.post(
            "/api/bookings",
            json={"worker_id": staff.worker.id, "case_id": case_id, "start": "2026-03-03T10:00:00-08:00"},
            headers=w,
        ),
        201,
    )
    # Replace the block by one with 45-minute slots on the same morning: 09:45 would overlap 10:00-11:00.
    await problem(
        await client.delete(f"/api/workers/{staff.worker.id}/office-hours/{block['id']}", headers=w), 409
    )

    db = client.app[SERVICES].db
    with db.session(write=True) as s:
        s.add(
            Booking(
                uid="direct-insert@test",
                worker_id=staff.worker.id,
                case_id=case_id,
                block_id=block["id"],
                start_at=datetime.fromisoformat("2026-03-03T09:45:00-08:00"),
                end_at=datetime.fromisoformat("2026-03-03T10:30:00-08:00"),
                created_by=staff.worker.id,
            )
        )
        try:
            s.flush()
        except IntegrityError:
            s.rollback()
        else:
            raise AssertionError("the database accepted an overlapping booking")


async def test_exception_cancels_that_days_bookings(client: Client, staff: Staff, as_role: Role) -> None:
    w = await as_role("worker")
    assert staff.worker.id is not None
    block = await publish(client, w, staff.worker.id)
    case_id = await open_case(client, w, staff.worker.id)
    booked = await ok(
        await client.post(
            "/api/bookings",
            json={"worker_id": staff.worker.id, "case_id": case_id, "start": "2026-03-12T09:00:00-07:00"},
            headers=w,
        ),
        201,
    )
    day_off = {"date": "2026-03-12", "reason": "training day"}
    result = await ok(await add_exception(client, w, staff.worker.id, block["id"], day_off), 201)
    assert result["cancelled_bookings"] == [booked["id"]]
    again = await ok(await client.get(f"/api/bookings/{booked['id']}", headers=w))
    assert again["status"] == "cancelled" and again["sequence"] == 1
    slots = await ok(
        await client.get(f"/api/workers/{staff.worker.id}/slots?from=2026-03-12&to=2026-03-12", headers=w)
    )
    assert slots == []
    await problem(await add_exception(client, w, staff.worker.id, block["id"], {"date": "2026-03-12"}), 409)
    # A Friday: the block is not held.
    await problem(await add_exception(client, w, staff.worker.id, block["id"], {"date": "2026-03-13"}), 422)
