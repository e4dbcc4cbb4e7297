"""What the live-transcription tests share: a visit with its client waiting, and a client who speaks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientWebSocketResponse
from aiortc import RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from tests.conftest import AppMaker, Clock, Staff
from tests.helpers import Client, check_in, next_message, ok, tuesday_visit
from tests.visits.peers import ClientUplink, offer_for, wait_for


@dataclass
class WaitingVisit:
    """A booked visit whose client has checked in, and the worker's socket on it."""

    client: Client
    worker: dict[str, str]  # the worker's bearer headers
    visit_id: int
    joined: dict[str, Any]  # the check-in's answer: participant_id, participant_token
    worker_ws: ClientWebSocketResponse


async def waiting_visit(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path, within: float
) -> WaitingVisit:
    """Book Maria Lopez for 09:00, check her in (consenting, on a phone) and open the worker's socket.

    The app keeps its data in `tmp_path / "var"`; the socket's welcome is awaited for `within` seconds.
    """
    client, w, booking = await tuesday_visit(
        make_client, staff, clock, "Maria Lopez", data_dir=tmp_path / "var"
    )
    visit_id = int(booking["visit_id"])
    joined = await check_in(client, booking, consent=True, device="phone")
    worker_ws = await client.ws_connect(f"/ws/visits/{visit_id}", headers=w)
    await next_message(worker_ws, "welcome", within)
    return WaitingVisit(client, w, visit_id, joined, worker_ws)


async def speak(visit: WaitingVisit, wav: Path) -> ClientUplink:
    """The client's browser, played by aiortc: offer `wav` as their microphone and wait until it connects."""
    player = MediaPlayer(str(wav))
    assert player.audio is not None
    pc = await offer_for(player.audio)
    headers = {"X-Participant-Token": visit.joined["participant_token"]}
    answer = await ok(
        await visit.client.post(
            f"/api/visits/{visit.visit_id}/uplink",
            json={"type": "offer", "sdp": pc.localDescription.sdp},
            headers=headers,
        )
    )
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    await wait_for(lambda: pc.connectionState == "connected", what="the uplink")
    return ClientUplink(pc, player.audio)
