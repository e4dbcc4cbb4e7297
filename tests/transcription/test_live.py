"""Speech sent up a real WebRTC uplink is transcribed while the visit runs, captioned and stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jiwer
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiortc import RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from tests.conftest import AppMaker, Clock, Staff, login
from tests.helpers import ok, open_case, publish
from tests.visits.audio_fixtures import make_speech_wav
from tests.visits.peers import offer_for, wait_for

SAID = "I lost my job last month and I need help paying the rent"


async def _next(ws: ClientWebSocketResponse, kind: str, within: float = 30.0) -> dict[str, Any]:
    while True:
        msg = await ws.receive(timeout=within)
        assert msg.type == WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] == kind:
            return data


async def test_a_clients_words_become_a_caption_and_a_transcript_line(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path
) -> None:
    clock.now = clock.now.replace(day=3, hour=16, minute=55)  # 08:55 in Los Angeles
    client = await make_client(data_dir=tmp_path / "var")
    w = await login(client, staff.worker.email)
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
    await ok(
        await client.post(
            f"/api/visits/{visit_id}/admit", json={"participant_id": joined["participant_id"]}, headers=w
        )
    )

    # The client's browser, played by aiortc: its microphone is a WAV of espeak-ng speech.
    wav = make_speech_wav(tmp_path / "said.wav", SAID, lead_silence=0.5, tail_silence=1.5)
    player = MediaPlayer(str(wav))
    assert player.audio is not None
    pc = await offer_for(player.audio)
    headers = {"X-Participant-Token": joined["participant_token"]}
    answer = await ok(
        await client.post(
            f"/api/visits/{visit_id}/uplink",
            json={"type": "offer", "sdp": pc.localDescription.sdp},
            headers=headers,
        )
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    await wait_for(lambda: pc.connectionState == "connected", what="the uplink")
    try:
        caption = await _next(worker_ws, "caption")  # live, while the visit runs
    finally:
        player.audio.stop()
        await pc.close()
    assert caption["speaker"] == "client"
    assert jiwer.wer(SAID.lower(), caption["text"].lower().strip(" .")) < 0.3, caption["text"]

    await ok(await client.post(f"/api/visits/{visit_id}/end", json={}, headers=w))
    lines = await ok(await client.get(f"/api/visits/{visit_id}/transcript", headers=w))
    assert [(line["speaker"], line["name"]) for line in lines] == [("client", "Maria Lopez")]
    assert lines[0]["text"] == caption["text"] and 0 <= lines[0]["start"] < lines[0]["end"]
    # Each line points into the speaker's own recording, which plays with seeking.
    audio = await client.get(lines[0]["audio_url"], headers={**w, "Range": "bytes=44-"})
    assert audio.status == 206 and audio.content_type == "audio/wav" and len(await audio.read()) > 16000
    assert 0 <= lines[0]["audio_at"] <= lines[0]["start"]
    # Only the caseload reads it.
    other = await login(client, staff.other_worker.email)
    resp = await client.get(f"/api/visits/{visit_id}/transcript", headers=other)
    assert resp.status == 403

    # The draft note was filed by the time "End visit" answered, from the transcript.
    note = await ok(await client.get(f"/api/visits/{visit_id}/note", headers=w))
    assert note["status"] == "draft" and note["generated"] is True and note["header"]["consent"] is True
    assert [q["text"] for q in note["transcript"]] == [caption["text"]]
    assert any("rent" in q["text"].lower() for q in note["sections"]["client_words"])
    assert (await client.get(f"/api/visits/{visit_id}/note", headers=other)).status == 403

    # The worker edits (with the version they saw), signs; a signed note is not edited in place.
    edited = await ok(
        await client.patch(
            f"/api/notes/{note['id']}", json={"version": 1, "analysis": "Needs rent help."}, headers=w
        )
    )
    assert edited["version"] == 2 and edited["sections"]["analysis"] == "Needs rent help."
    stale = await client.patch(f"/api/notes/{note['id']}", json={"version": 1, "analysis": "x"}, headers=w)
    assert stale.status == 409  # someone else's edit is never silently overwritten
    signed = await ok(await client.post(f"/api/notes/{note['id']}/sign", headers=w))
    assert signed["status"] == "signed" and signed["signed_at"]
    # With no retention set, the audio is deleted at signing, and the note says what and when.
    assert signed["audio_deleted_at"] and any(name.endswith(".wav") for name in signed["audio_deleted"])
    assert not list((tmp_path / "var" / "audio" / str(visit_id)).glob("*"))
    gone = await client.get(lines[0]["audio_url"], headers=w)
    assert gone.status == 410
    late = await client.patch(f"/api/notes/{note['id']}", json={"version": 2, "analysis": "x"}, headers=w)
    assert late.status == 409
    # The supervisor reviews; returning needs a comment.
    sup = await login(client, staff.supervisor.email)
    assert (await client.post(f"/api/notes/{note['id']}/return", json={}, headers=sup)).status == 422
    assert (await client.post(f"/api/notes/{note['id']}/approve", json={}, headers=other)).status == 403
    approved = await ok(
        await client.post(f"/api/notes/{note['id']}/approve", json={"comment": "ok"}, headers=sup)
    )
    assert approved["status"] == "approved"
