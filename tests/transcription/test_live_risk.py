"""A risk said in a visit reaches the worker at once; confirmed, it alerts the supervisor and the note."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import ClientWebSocketResponse, WSMsgType
from sqlmodel import select

from caserecord.models import RiskAlert
from tests.conftest import AppMaker, Clock, Staff
from tests.helpers import admit, logins, next_message, ok
from tests.transcription.live_visit import speak, waiting_visit
from tests.visits.audio_fixtures import make_speech_wav
from web.services import SERVICES

SAID = "My landlord says we will be evicted next week"


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
    visit = await waiting_visit(make_client, staff, clock, tmp_path, within=60)
    client, w, visit_id, joined = visit.client, visit.worker, visit.visit_id, visit.joined
    sup, other = await logins(client, staff, "supervisor", "other_worker")
    client_ws = await client.ws_connect(f"/ws/visits/{visit_id}")
    await client_ws.send_json({"type": "hello", "token": joined["participant_token"]})
    await next_message(client_ws, "welcome", within=60)
    supervisor_ws = await client.ws_connect("/ws/supervisor", headers=sup)
    await admit(client, w, visit_id, joined["participant_id"])

    wav = make_speech_wav(tmp_path / "said.wav", SAID, lead_silence=0.5, tail_silence=1.5)
    uplink = await speak(visit, wav)
    try:
        risk = await next_message(visit.worker_ws, "risk", within=60)  # while the visit runs
    finally:
        await uplink.close()
    assert risk["category"] == "eviction_or_homelessness" and "evicted" in risk["quote"].lower()
    # The client has the caption by now, and never the risk.
    await next_message(client_ws, "caption", within=60)
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
    await next_message(supervisor_ws, "risk", within=60)
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
    for ws in (visit.worker_ws, client_ws, supervisor_ws):
        await ws.close()
