"""The visit lifecycle over the real server: join link, kiosk, waiting room socket, admit, end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType

from caserecord import audit
from tests.conftest import AppMaker, Clock, Staff, login
from tests.helpers import (
    Client,
    admit,
    book_tuesday,
    check_in,
    join_token,
    next_message,
    ok,
    problem,
    publish,
    tuesday_visit,
)
from web.services import SERVICES

Role = Callable[[str], Awaitable[dict[str, str]]]
CLIENT = "Maria Lopez"


async def _state_where(ws: ClientWebSocketResponse, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    while True:
        state = await next_message(ws, "state")
        if pred(state):
            return state


async def test_join_page_opens_shortly_before_and_closes_after(
    client: Client, staff: Staff, as_role: Role, clock: Clock
) -> None:
    w = await as_role("worker")
    booking = await book_tuesday(client, w, staff.worker, CLIENT)
    path = "/j/" + join_token(booking)
    early = await client.get(path)
    assert early.status == 200 and "has not opened yet" in await early.text()
    clock.now = clock.now.replace(day=3, hour=16, minute=50)  # 08:50 local, 10 minutes before
    page = await client.get(path)
    html = await page.text()
    assert page.status == 200 and "recorded and transcribed" in html and "Join visit" in html
    clock.now = clock.now.replace(hour=18, minute=1)  # 10:01 local: past the end plus 30 minutes
    late = await client.get(path)
    assert late.status == 410 and "expired" in await late.text()
    bogus = await client.get("/j/not-a-real-token-at-all-xxxxxxxx")
    assert bogus.status == 404 and "does not work" in await bogus.text()


async def test_waiting_room_admit_message_and_end(make_client: AppMaker, staff: Staff, clock: Clock) -> None:
    # At 08:55 local, five minutes before the visit:
    client, w, booking = await tuesday_visit(
        make_client, staff, clock, CLIENT, visit_grace_seconds=0.3, visit_empty_seconds=60
    )
    token = join_token(booking)
    visit_id = booking["visit_id"]

    worker_ws = await client.ws_connect(f"/ws/visits/{visit_id}", headers=w)
    welcome = await next_message(worker_ws, "welcome")
    assert welcome["kind"] == "worker"
    joined = await check_in(client, booking, consent=True, device="phone")
    pid = joined["participant_id"]
    # The worker hears of the waiting client at once, with device and consent. (A state pushed while
    # the check-in commits may show the client before the visit's new status; the next one has both.)
    state = await _state_where(
        worker_ws,
        lambda s: any(p["kind"] == "client" for p in s["participants"]) and s["visit"]["status"] == "waiting",
    )
    (waiting,) = [p for p in state["participants"] if p["kind"] == "client"]
    assert waiting["state"] == "waiting" and waiting["device"] == "phone" and waiting["consent"] is True
    assert state["visit"]["status"] == "waiting"

    client_ws = await client.ws_connect(f"/ws/visits/{visit_id}")
    await client_ws.send_json({"type": "hello", "token": joined["participant_token"]})
    assert (await next_message(client_ws, "welcome"))["participant_id"] == pid
    told = await _state_where(client_ws, lambda s: True)
    assert told["worker_present"] is True and told["admitted"] is False
    await client_ws.send_json({"type": "message", "text": "I may be two minutes late to the camera"})
    state = await _state_where(worker_ws, lambda s: bool(s["messages"]))
    assert state["messages"][0]["text"] == "I may be two minutes late to the camera"

    # A client cannot signal before being admitted.
    await client_ws.send_json({"type": "signal", "to": welcome["participant_id"], "data": {"sdp": {}}})
    assert "admits you" in (await next_message(client_ws, "error"))["detail"]

    detail = await admit(client, w, visit_id, pid)
    assert detail["status"] == "in_progress" and detail["started_at"]
    await next_message(client_ws, "admitted")
    await client_ws.send_json({"type": "ready"})
    assert (await next_message(worker_ws, "ready"))["from"] == pid
    # Signalling flows both ways once admitted.
    await worker_ws.send_json({"type": "signal", "to": pid, "data": {"sdp": {"type": "offer", "sdp": "v=0"}}})
    relayed = await next_message(client_ws, "signal")
    assert relayed["from"] == welcome["participant_id"] and relayed["data"]["sdp"]["type"] == "offer"

    ended = await ok(await client.post(f"/api/visits/{visit_id}/end", json={}, headers=w))
    assert ended["status"] == "ended" and ended["end_reason"] == "ended by the worker"
    assert (await next_message(client_ws, "ended"))["reason"] == "ended by the worker"
    await next_message(worker_ws, "ended")
    # The link is dead now, and the visit cannot be ended twice.
    page = await client.get(f"/j/{token}")
    assert page.status == 410 and "has ended" in await page.text()
    await problem(await client.post(f"/api/visits/{visit_id}/end", json={}, headers=w), 409)
    with client.app[SERVICES].db.session() as s:
        actions = [e.action for e in audit.events(s, case_id=booking["case_id"])]
    for action in ("visit.check_in", "visit.message", "visit.admit", "visit.end"):
        assert action in actions


async def test_rejoin_with_the_participant_token_needs_no_new_check_in(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client, w, booking = await tuesday_visit(make_client, staff, clock, CLIENT, visit_grace_seconds=5)
    first = await check_in(client, booking, consent=False)
    again = await check_in(client, booking, consent=False, participant_token=first["participant_token"])
    assert again["participant_id"] == first["participant_id"] and again["recording"] is False
    detail = await ok(await client.get(f"/api/visits/{booking['visit_id']}", headers=w))
    assert len([p for p in detail["participants"] if p["kind"] == "client"]) == 1
    assert detail["recording"] is False


async def test_dropped_socket_is_reconnecting_then_left(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client, w, booking = await tuesday_visit(make_client, staff, clock, CLIENT, visit_grace_seconds=6)
    joined = await check_in(client, booking, consent=True)
    worker_ws = await client.ws_connect(f"/ws/visits/{booking['visit_id']}", headers=w)
    client_ws = await client.ws_connect(f"/ws/visits/{booking['visit_id']}")
    await client_ws.send_json({"type": "hello", "token": joined["participant_token"]})
    await next_message(client_ws, "welcome")
    await client_ws.close()

    def presence(s: dict[str, Any]) -> str:
        return str(next(p["presence"] for p in s["participants"] if p["kind"] == "client"))

    seen: list[str] = []
    async with asyncio.timeout(30):
        while not seen or seen[-1] != "left":
            msg = await worker_ws.receive()
            data = json.loads(msg.data)
            if data["type"] == "state":
                seen.append(presence(data))
    # Connected, then reconnecting for the grace period, then gone: never straight to gone.
    assert "reconnecting" in seen and seen.index("reconnecting") < seen.index("left"), seen


async def test_bad_socket_messages_close_with_a_reason_and_harm_nothing(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client, w, booking = await tuesday_visit(make_client, staff, clock, CLIENT)
    visit_id = booking["visit_id"]
    # No hello: refused with a reason.
    ws = await client.ws_connect(f"/ws/visits/{visit_id}")
    await ws.send_str("not json")
    assert "hello" in (await next_message(ws, "error"))["detail"]
    msg = await ws.receive()
    assert msg.type == WSMsgType.CLOSE and ws.close_code == 4403
    # A wrong token: refused.
    ws = await client.ws_connect(f"/ws/visits/{visit_id}")
    await ws.send_json({"type": "hello", "token": "x" * 40})
    assert "not a participant" in (await next_message(ws, "error"))["detail"]
    # Wrong shapes from the worker: closed with 4400 and a reason.
    for bad in ('{"type": "signal", "to": "me"}', "[1, 2]", '{"type": "dance"}', "{"):
        ws = await client.ws_connect(f"/ws/visits/{visit_id}", headers=w)
        await next_message(ws, "welcome")
        await ws.send_str(bad)
        err = await next_message(ws, "error")
        assert err["detail"]
        msg = await ws.receive()
        assert msg.type == WSMsgType.CLOSE and ws.close_code == 4400, bad
    # An oversized message closes the socket too.
    ws = await client.ws_connect(f"/ws/visits/{visit_id}", headers=w)
    await next_message(ws, "welcome")
    await ws.send_str(json.dumps({"type": "message", "text": "x" * 100_000}))
    while (msg := await ws.receive()).type == WSMsgType.TEXT:
        pass
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)
    # The visit is unharmed.
    detail = await ok(await client.get(f"/api/visits/{visit_id}", headers=w))
    assert detail["status"] == "scheduled"


async def test_kiosk_code_and_its_throttle(client: Client, staff: Staff, as_role: Role, clock: Clock) -> None:
    clock.now = clock.now.replace(day=3, hour=16, minute=55)
    w = await as_role("worker")
    booking = await book_tuesday(client, w, staff.worker, CLIENT)
    page = await client.get("/kiosk")
    assert page.status == 200 and "6-digit code" in await page.text()
    found = await ok(await client.post("/api/kiosk/check-in", json={"code": booking["kiosk_code"]}))
    assert found["join_token"] == join_token(booking) and found["state"] == "open"
    await problem(await client.post("/api/kiosk/check-in", json={"code": "12ab"}), 422)
    statuses = []
    for i in range(12):
        resp = await client.post(
            "/api/kiosk/check-in", json={"code": f"{(int(booking['kiosk_code']) + i + 1) % 10**6:06d}"}
        )
        statuses.append(resp.status)
        await resp.read()
    assert 429 in statuses and statuses.index(429) <= 9  # a flood from one kiosk is slowed down
    await asyncio.sleep(0)


async def test_only_the_caseload_sees_a_visit(client: Client, staff: Staff, as_role: Role) -> None:
    w = await as_role("worker")
    booking = await book_tuesday(client, w, staff.worker, CLIENT)
    visit_id = booking["visit_id"]
    await ok(await client.get(f"/api/visits/{visit_id}", headers=await as_role("supervisor")))
    await problem(await client.get(f"/api/visits/{visit_id}", headers=await as_role("other_worker")), 403)
    await problem(
        await client.post(f"/api/visits/{visit_id}/end", json={}, headers=await as_role("supervisor")), 403
    )
    ws = await client.ws_connect(f"/ws/visits/{visit_id}", headers=await as_role("other_worker"))
    assert "caseload" in (await next_message(ws, "error"))["detail"]
    page = await client.get(f"/visit/{visit_id}", headers=await as_role("other_worker"))
    assert page.status == 403


async def test_the_workers_own_page_hears_of_a_waiting_client(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client, w, booking = await tuesday_visit(make_client, staff, clock, CLIENT)
    feed = await client.ws_connect("/ws/worker", headers=w)
    other = await client.ws_connect("/ws/worker", headers=await login(client, staff.other_worker.email))
    await check_in(client, booking, consent=True, device="kiosk")
    notice = await next_message(feed, "waiting")
    assert (
        notice["visit_id"] == booking["visit_id"]
        and notice["name"] == "Maria Lopez"
        and notice["device"] == "kiosk"
    )
    try:
        msg = await other.receive(timeout=0.5)
    except TimeoutError:
        pass
    else:
        raise AssertionError(f"another worker heard of it: {msg}")
    resp = await client.get("/ws/worker")  # signed out
    assert resp.status == 401


async def test_walk_in_queue_during_walk_in_hours(make_client: AppMaker, staff: Staff, clock: Clock) -> None:
    clock.now = clock.now.replace(day=3, hour=22, minute=30)  # Tuesday 14:30 in Los Angeles
    client = await make_client()
    w = await login(client, staff.worker.email)
    assert staff.worker.id is not None
    await publish(
        client, w, staff.worker.id, weekdays=["TU"], start_time="14:00", end_time="16:00", mode="walk_in"
    )
    link = await ok(await client.post(f"/api/workers/{staff.worker.id}/walk-in-link", json=None, headers=w))
    again = await ok(await client.post(f"/api/workers/{staff.worker.id}/walk-in-link", json=None, headers=w))
    assert link == again and link["url"].startswith("http://lastmile.test/w/")
    token = link["url"].rsplit("/", 1)[1]
    page = await client.get(f"/w/{token}")
    html = await page.text()
    assert page.status == 200 and "Your name" in html and "recorded and transcribed" in html
    feed = await client.ws_connect("/ws/worker", headers=w)
    joined = await ok(
        await client.post(
            f"/api/walk-in/{token}", json={"name": "  Sam   Okafor ", "consent": False, "device": "phone"}
        ),
        201,
    )
    notice = await next_message(feed, "waiting")
    assert notice["walk_in"] is True and notice["name"] == "Sam Okafor"
    detail = await ok(await client.get(f"/api/visits/{joined['visit_id']}", headers=w))
    assert detail["status"] == "waiting" and detail["booking_id"] is None and detail["recording"] is False
    case = await ok(await client.get(f"/api/cases/{detail['case_id']}", headers=w))
    assert case["title"] == "Walk-in" and case["client"]["name"] == "Sam Okafor"
    # The same waiting room and admit as a booked visit.
    await admit(client, w, joined["visit_id"], joined["participant_id"])
    # Outside walk-in hours the link says when to come back, and the API refuses.
    clock.now = clock.now.replace(hour=23, minute=59)  # 15:59 local: still open
    assert (await client.get(f"/w/{token}")).status == 200
    clock.now = clock.now.replace(day=4, hour=0, minute=5)  # 16:05 local: closed
    closed = await client.get(f"/w/{token}")
    assert "closed" in await closed.text() and "Tuesday 10 March, 14:00" in await closed.text()
    await problem(await client.post(f"/api/walk-in/{token}", json={"name": "Late", "consent": True}), 409)
    bogus = await client.get("/w/not-a-real-walk-in-token-xxxxxx")
    assert bogus.status == 404
