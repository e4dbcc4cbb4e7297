"""A risk said in a visit reaches the worker at once; confirmed, it alerts the supervisor and the note."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType
from aiortc import RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from sqlmodel import select

from caserecord.models import RiskAlert
from tests.conftest import AppMaker, Clock, Staff, login
from tests.helpers import ok, open_case, publish
from tests.visits.audio_fixtures import make_speech_wav
from tests.visits.peers import offer_for, wait_for
from web.services import SERVICES

SAID = "My landlord says we will be evicted next week"


async def _next(ws: ClientWebSocketResponse, kind: str, within: float = 60.0) -> dict[str, Any]:
    while True:
        msg = await ws.receive(timeout=within)
        assert msg.type == WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] == kind:
            return data


async def _drain(ws: ClientWebSocketResponse) -> list[str]:
    """The types of the messages that arrive on a socket until it is quiet for a moment."""
    kinds: list[str] = []
    while True:
        try:
            msg = await ws.receive(timeout=1.0)
        except TimeoutError:
            return kinds
        if msg.type == WSMsgType.TEXT:
            kinds.append(json.loads(msg.data)["type"])


async def test_a_risk_heard_live_is_confirmed_by_the_worker_and_lands_in_the_note(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path
) -> None:
    clock.now = clock.now.replace(day=3, hour=16, minute=55)  # 08:55 in Los Angeles
    client = await make_client(data_dir=tmp_path / "var")
    w = await login(client, staff.worker.email)
    sup = await login(client, staff.supervisor.email)
    other = await login(client, staff.other_worker.email)
    assert staff.worker.id is not None
    await publish(client, w, staff.worker.id)
    case_id = await open_case(client, w, staff.worker.id, "Maria Lopez")
    body = {"worker_id": staff.worker.id, "case_id": case_id, "start": "2026-03-03T09:00:00-08:00"}
    booking = await ok(await client.post("/api/bookings", json=body, headers=w), 201)
    visit_id = booking["visit_id"]
    token = booking["client_join_url"].rsplit("/", 1)[1]
    joined = await ok(await client.post(f"/api/join/{token}", json={"consent": True, "device": "phone"}))
    worker_ws = await client.ws_connect(f"/ws/visits/{visit_id}", headers=w)
    await _next(worker_ws, "welcome")
    client_ws = await client.ws_connect(f"/ws/visits/{visit_id}")
    await client_ws.send_json({"type": "hello", "token": joined["participant_token"]})
    await _next(client_ws, "welcome")
    supervisor_ws = await client.ws_connect("/ws/supervisor", headers=sup)
    await ok(
        await client.post(
            f"/api/visits/{visit_id}/admit", json={"participant_id": joined["participant_id"]}, headers=w
        )
    )

    wav = make_speech_wav(tmp_path / "said.wav", SAID, lead_silence=0.5, tail_silence=1.5)
    player = MediaPlayer(str(wav))
    assert player.audio is not None
    pc = await offer_for(player.audio)
    answer = await ok(
        await client.post(
            f"/api/visits/{visit_id}/uplink",
            json={"type": "offer", "sdp": pc.localDescription.sdp},
            headers={"X-Participant-Token": joined["participant_token"]},
        )
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    await wait_for(lambda: pc.connectionState == "connected", what="the uplink")
    try:
        risk = await _next(worker_ws, "risk")  # while the visit runs
    finally:
        player.audio.stop()
        await pc.close()
    assert risk["category"] == "eviction_or_homelessness" and "evicted" in risk["quote"].lower()
    await _next(client_ws, "caption")  # the client has the caption by now, and never the risk
    assert "risk" not in await _drain(client_ws)

    flag = {"category": risk["category"], "quote": risk["quote"], "start": risk["start"]}
    # Only the visit's worker confirms, and only words that were said then.
    assert (await client.post(f"/api/visits/{visit_id}/risk-flags", json=flag, headers=other)).status == 403
    invented = {**flag, "quote": "She hits the children."}
    assert (await client.post(f"/api/visits/{visit_id}/risk-flags", json=invented, headers=w)).status == 422
    assert (
        await client.post(f"/api/visits/{visit_id}/risk-flags", json={**flag, "category": "x"}, headers=w)
    ).status == 422
    alert = await ok(await client.post(f"/api/visits/{visit_id}/risk-flags", json=flag, headers=w), 201)
    again = await ok(await client.post(f"/api/visits/{visit_id}/risk-flags", json=flag, headers=w), 201)
    assert again["id"] == alert["id"]  # a double click is one alert
    await _next(supervisor_ws, "risk")
    (seen,) = await ok(await client.get("/api/risk-alerts", headers=sup))
    assert seen["id"] == alert["id"] and seen["note_id"] is None and seen["client_name"] == "Maria Lopez"

    await ok(await client.post(f"/api/visits/{visit_id}/end", json={}, headers=w))
    note = await ok(await client.get(f"/api/visits/{visit_id}/note", headers=w))
    confirmed = [f for f in note["risk_flags"] if f["status"] == "confirmed"]
    assert [f["category"] for f in confirmed] == ["eviction_or_homelessness"]
    with client.app[SERVICES].db.session() as s:
        (row,) = s.exec(select(RiskAlert)).all()
        assert row.note_id == note["id"]
    # Un-confirming it in the note withdraws the alert it raised during the visit.
    confirmed[0]["status"] = "dismissed"
    await ok(
        await client.patch(
            f"/api/notes/{note['id']}", json={"version": 1, "risk_flags": note["risk_flags"]}, headers=w
        )
    )
    assert await ok(await client.get("/api/risk-alerts", headers=sup)) == []
    for ws in (worker_ws, client_ws, supervisor_ws):
        await ws.close()
