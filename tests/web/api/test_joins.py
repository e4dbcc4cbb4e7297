"""Walk-in hours at the kiosk: the open queues, joining one, refusals, throttles, the audit trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from typing import Any

from caserecord import audit
from caserecord.audit import Actor
from caserecord.db import Database
from caserecord.models import User
from scheduler import blocks, hours, walk_ins
from tests.conftest import AppMaker, Clock, Staff, add_user, login
from tests.helpers import Client, admit, next_message, ok, problem, publish
from web.services import SERVICES

TUESDAY_1430_LA = datetime(2026, 3, 3, 22, 30, tzinfo=UTC)  # Tuesday 14:30 in Los Angeles
WALK_IN: dict[str, Any] = {"weekdays": ["TU"], "start_time": "14:00", "end_time": "16:00", "mode": "walk_in"}


async def _open_walk_in(client: Client, staff: Staff, clock: Clock) -> dict[str, str]:
    """Give the worker walk-in hours open now (Tuesday 14:00-16:00 in Los Angeles); return their headers."""
    clock.now = TUESDAY_1430_LA
    w = await login(client, staff.worker.email)
    assert staff.worker.id is not None
    await publish(client, w, staff.worker.id, **WALK_IN)
    return w


def _kiosk(device: str) -> dict[str, str]:
    return {"Cookie": f"lastmile_kiosk={device}"}


async def test_the_kiosk_lists_open_queues_and_a_client_joins_one(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client = await make_client()
    w = await _open_walk_in(client, staff, clock)
    assert staff.worker.id is not None and staff.other_worker.id is not None
    # The other worker's walk-in hours are on another day: not listed.
    other = await login(client, staff.other_worker.email)
    await publish(client, other, staff.other_worker.id, **{**WALK_IN, "weekdays": ["WE"]})

    page = await client.get("/kiosk")
    html = await page.text()
    assert page.status == 200 and "6-digit code" in html
    assert "Worker" in html and "open until 16:00 PST" in html
    assert f'action="/kiosk/walk-in/{staff.worker.id}"' in html
    assert "Worker2" not in html and staff.worker.email not in html  # the name and until when, no more
    assert "lastmile_kiosk" in page.headers.get("Set-Cookie", "")

    # The client taps the worker: name, device check and consent, as at any kiosk.
    tapped = await client.get(f"/kiosk/walk-in/{staff.worker.id}")
    html = await tapped.text()
    assert tapped.status == 200 and "Walk-in hours with Worker" in html and "Open until 16:00 PST" in html
    assert 'data-kiosk="yes"' in html and f'data-walkin-worker="{staff.worker.id}"' in html
    assert "Your name" in html and "recorded and transcribed" in html and "Check your camera" in html
    assert 'autocomplete="off"' in html and "data-walkin-token" not in html  # no secret link leaks
    assert tapped.headers["Cache-Control"] == "no-store"

    feed = await client.ws_connect("/ws/worker", headers=w)
    body = {"worker_id": staff.worker.id, "name": "  Ada   Obi ", "phone": "+1 503 555 0100", "consent": True}
    joined = await ok(await client.post("/api/kiosk/walk-in", json=body, headers=_kiosk("k1")), 201)
    assert joined["recording"] is True and joined["participant_token"]
    # The worker hears of the walk-in at once, like one from the link, and sees it came from a kiosk.
    notice = await next_message(feed, "waiting")
    assert notice["walk_in"] is True and notice["name"] == "Ada Obi"
    assert notice["device"] == "kiosk" and notice["via"] == "kiosk"
    visit_id = joined["visit_id"]
    detail = await ok(await client.get(f"/api/visits/{visit_id}", headers=w))
    assert detail["status"] == "waiting" and detail["booking_id"] is None and detail["recording"] is True
    (part,) = detail["participants"]
    assert (part["via"], part["device"], part["state"], part["name"]) == (
        "kiosk",
        "kiosk",
        "waiting",
        "Ada Obi",
    )
    case = await ok(await client.get(f"/api/cases/{detail['case_id']}", headers=w))
    assert case["title"] == "Walk-in" and case["client"]["name"] == "Ada Obi"
    assert case["client"]["phone"] == "+15035550100"

    # The same waiting room: the worker's socket sees the client; admitted, the call can start.
    worker_ws = await client.ws_connect(f"/ws/visits/{visit_id}", headers=w)
    await next_message(worker_ws, "welcome")
    client_ws = await client.ws_connect(f"/ws/visits/{visit_id}")
    await client_ws.send_json({"type": "hello", "token": joined["participant_token"]})
    assert (await next_message(client_ws, "welcome"))["participant_id"] == joined["participant_id"]
    await admit(client, w, visit_id, joined["participant_id"])
    await next_message(client_ws, "admitted")
    await ok(await client.post(f"/api/visits/{visit_id}/end", json={}, headers=w))
    assert (await next_message(client_ws, "ended"))["reason"] == "ended by the worker"

    with client.app[SERVICES].db.session() as s:
        events = [e for e in audit.events(s, case_id=detail["case_id"]) if e.action == "visit.walk_in"]
    (event,) = events
    assert event.actor_role == "client" and event.ip == "127.0.0.1"
    assert json.loads(event.detail) == {
        "consent": True,
        "device": "kiosk",
        "participant_id": joined["participant_id"],
        "via": "kiosk",
    }
    for ws in (feed, worker_ws, client_ws):
        await ws.close()


async def test_closed_unknown_and_bad_input_are_refused_plainly(
    make_client: AppMaker, staff: Staff, clock: Clock, database: Database
) -> None:
    client = await make_client()
    await _open_walk_in(client, staff, clock)
    assert staff.worker.id is not None and staff.other_worker.id is not None and staff.admin.id is not None
    worker_id = staff.worker.id

    def post(body: dict[str, Any], device: str = "k1") -> Any:
        return client.post("/api/kiosk/walk-in", json=body, headers=_kiosk(device))

    good = {"worker_id": worker_id, "name": "Ada Obi", "consent": False}
    # Unknown, inactive or caseload-less people have no queue; someone without open hours is closed.
    gone = add_user(database, "gone@agency.test", "worker")
    with database.session(write=True) as s:
        user = s.get(User, gone.id)
        assert user is not None
        user.active = False
        s.add(user)
    for n, unknown in enumerate((999_999, gone.id, staff.admin.id)):
        body = await problem(await post({**good, "worker_id": unknown}, f"u{n}"), 404)
        assert "no walk-in queue" in body["detail"]
        page = await client.get(f"/kiosk/walk-in/{unknown}")
        assert page.status == 404 and "There is no such walk-in queue" in await page.text()
    for raw in ("abc", "0", "%C2%B2", "99999999999", "-1"):
        page = await client.get(f"/kiosk/walk-in/{raw}")
        assert page.status == 404 and "Back to the start" in await page.text(), raw
    closed = await problem(await post({**good, "worker_id": staff.other_worker.id}, "c"), 409)
    assert closed["detail"] == "Worker2's walk-in hours are closed now"
    # Invalid input: 422 problems, nothing queued.
    for n, bad in enumerate(
        (
            {**good, "name": "x" * 101},
            {**good, "name": ""},
            {**good, "name": "   "},
            {**good, "phone": "call me maybe"},
            {**good, "phone": "1" * 33},
            {**good, "worker_id": 0},
            {**good, "worker_id": "1"},
            {**good, "name": "Ada\x00"},
            {**good, "device": "phone"},
            {"worker_id": worker_id, "name": "Ada Obi"},
        )
    ):
        await problem(await post(bad, f"b{n}"), 422)
    malformed = await client.post(
        "/api/kiosk/walk-in", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    await problem(malformed, 400)

    # After hours the queue is closed: the kiosk lists nobody; a stale tap gets a clear page.
    clock.now = clock.now.replace(day=4, hour=0, minute=5)  # 16:05 in Los Angeles
    kiosk = await client.get("/kiosk")
    assert "No walk-in hours are open right now." in await kiosk.text()
    page = await client.get(f"/kiosk/walk-in/{worker_id}")
    text = await page.text()
    assert page.status == 409 and "Worker&#39;s walk-in hours are closed" in text
    assert "They next open Tuesday 10 March, 14:00 PDT." in text and "Back to the start" in text
    await problem(await post(good, "late"), 409)
    with database.session() as s:
        assert not [e for e in audit.events(s) if e.action == "visit.walk_in"]


async def test_a_flood_from_one_kiosk_or_at_one_queue_is_slowed_down(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client = await make_client()
    await _open_walk_in(client, staff, clock)
    body = {"worker_id": staff.worker.id, "name": "Flood", "consent": False}
    statuses = []
    for _ in range(12):
        resp = await client.post("/api/kiosk/walk-in", json=body, headers=_kiosk("one-device"))
        statuses.append(resp.status)
        if resp.status == 429:
            slowed = await problem(resp, 429)
            assert slowed["retry_after"] >= 1
        else:
            await resp.read()
    assert statuses[:10] == [201] * 10 and statuses[10:] == [429, 429]
    # Unknown workers count too: probing is slowed down like codes.
    probe = await client.post(
        "/api/kiosk/walk-in", json={**body, "worker_id": 424242}, headers=_kiosk("one-device")
    )
    await problem(probe, 429)
    # Another kiosk still gets through, until one queue has taken 20 kiosk walk-ins in five minutes.
    more = []
    for n in range(12):
        resp = await client.post("/api/kiosk/walk-in", json=body, headers=_kiosk(f"device-{n}"))
        more.append(resp.status)
        await resp.read()
    assert more == [201] * 10 + [429, 429]


def test_open_walk_ins_across_workers(database: Database, staff: Staff) -> None:
    """One row per worker with walk-in hours open now, in the block's own zone; nobody else."""
    assert staff.worker.id is not None and staff.other_worker.id is not None
    now = TUESDAY_1430_LA

    def block(
        worker: User, start: str, end: str, tz: str = "America/Los_Angeles", mode: str = "walk_in"
    ) -> int:
        assert worker.id is not None
        with database.session(write=True) as s:
            spec = hours.BlockSpec(
                weekdays=("TU",),
                start_time=time.fromisoformat(start),
                end_time=time.fromisoformat(end),
                timezone=tz,
                slot_minutes=30,
                mode="walk_in" if mode == "walk_in" else "booked",
                starts_on=now.date().replace(day=1),
            )
            b = blocks.create_block(s, Actor(worker.id, "worker"), worker.id, spec)
            assert b.id is not None
            return b.id

    block(staff.worker, "14:00", "15:00")
    block(staff.worker, "15:00", "17:00")  # the next block: not open yet
    block(staff.other_worker, "22:00", "23:00", "Europe/London")  # 22:30 in London: open
    block(staff.supervisor, "14:00", "16:00", mode="booked")  # booked slots are no queue
    with database.session() as s:
        found = walk_ins.open_walk_ins(s, now)
        assert [(w.worker_id, w.end.strftime("%H:%M %Z")) for w in found] == [
            (staff.worker.id, "15:00 PST"),
            (staff.other_worker.id, "23:00 GMT"),
        ]
        assert walk_ins.walk_in_window(s, staff.worker.id, now) == (found[0].start, found[0].end)
        assert walk_ins.open_walk_ins(s, now.replace(day=4, hour=2)) == []
    with database.session(write=True) as s:
        user = s.get(User, staff.other_worker.id)
        assert user is not None
        user.active = False
        s.add(user)
    with database.session() as s:
        assert [w.worker_id for w in walk_ins.open_walk_ins(s, now)] == [staff.worker.id]
