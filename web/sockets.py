"""The WebSockets: a visit's (presence, waiting-room messages, WebRTC signalling), and the live
nudges of the worker's and the supervisors' pages.

The protocol of a visit's socket: a client's first message is `{"type": "hello", "token": ...}`
(staff are known by their session); then `ping`, `signal` (to one participant), and from clients
`ready` and `message`. Anything else closes the socket with 4400; a refusal at the start with 4403.
What each message may do is the visits runtime's to decide.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ValidationError

from caserecord.access import REVIEWERS
from caserecord.errors import RecordError
from visits.hub import Peer
from web.pages.common import path_id, services
from web.problems import ProblemError
from web.services import IDENTITY, Services

MAX_WS_MESSAGE = 64 * 1024
HELLO_TIMEOUT = 10.0


class _Signal(BaseModel):
    type: str
    to: int
    data: dict[str, Any]


class _Refused(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def _hello_token(ws: web.WebSocketResponse) -> str:
    """Wait for a client's hello and return the participant token it names."""
    try:
        msg = await ws.receive(timeout=HELLO_TIMEOUT)
    except TimeoutError as exc:
        raise _Refused("say hello with your participant token first") from exc
    if msg.type != WSMsgType.TEXT:
        raise _Refused("say hello with your participant token first")
    try:
        data = json.loads(msg.data)
    except ValueError as exc:
        raise _Refused("messages are JSON objects; say hello with your participant token first") from exc
    if not isinstance(data, dict) or data.get("type") != "hello" or not isinstance(data.get("token"), str):
        raise _Refused('the first message is {"type": "hello", "token": "..."}')
    return str(data["token"])


async def _refuse(ws: web.WebSocketResponse, detail: str, code: int = 4400) -> None:
    with contextlib.suppress(ConnectionError):
        await ws.send_json({"type": "error", "detail": detail})
        await ws.close(code=code, message=detail[:120].encode())


async def visit_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws/visits/{visit_id}: presence, waiting-room messages and WebRTC signalling."""
    svc = services(request)
    try:
        visit_id = path_id(request, "visit_id")
    except web.HTTPNotFound as exc:
        raise ProblemError(404, "Not found", "no such visit") from exc
    identity = request.get(IDENTITY)
    ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=MAX_WS_MESSAGE)
    await ws.prepare(request)
    try:
        actor = identity.actor if identity is not None else None
        hello = await _hello_token(ws) if actor is None else None
        part, visit = await svc.visits.open_socket(visit_id, actor=actor, hello_token=hello)
    except (RecordError, _Refused) as exc:
        await _refuse(ws, exc.detail, 4403)
        return ws
    if not svc.visits.is_live(visit):
        await ws.send_json({"type": "ended", "reason": visit.end_reason or visit.status})
        await ws.close(code=1000, message=b"visit is over")
        return ws
    assert part.id is not None
    peer = Peer(part.id, part.kind, part.name, ws)
    welcome = {
        "type": "welcome",
        "visit_id": visit_id,
        "participant_id": part.id,
        "kind": part.kind,
        "ice_servers": svc.browser_ice,
    }
    await svc.visits.attach(visit_id, peer, welcome)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                await _refuse(ws, "send JSON text messages")
                break
            if not await _handle(svc, visit_id, peer, msg.data):
                break
    finally:
        svc.visits.detach(visit_id, peer)
        if not ws.closed:
            await ws.close()
    return ws


async def _handle(svc: Services, visit_id: int, peer: Peer, text: str) -> bool:
    """Handle one message; return False after closing a socket that broke the protocol."""
    ws = peer.ws
    try:
        data = json.loads(text)
    except ValueError:
        await _refuse(ws, "messages are JSON objects")
        return False
    kind = data.get("type") if isinstance(data, dict) else None
    refused: str | None = None
    if kind == "ping":
        await ws.send_json({"type": "pong"})
    elif kind == "signal":
        try:
            sig = _Signal.model_validate(data, strict=True)
        except ValidationError:
            await _refuse(ws, 'a signal is {"type": "signal", "to": <participant id>, "data": {...}}')
            return False
        refused = await svc.visits.relay(visit_id, peer, sig.to, sig.data)
    elif kind == "ready" and peer.kind == "client":
        await svc.visits.client_ready(visit_id, peer)
    elif kind == "message" and peer.kind == "client" and isinstance(data.get("text"), str):
        refused = await svc.visits.client_message(visit_id, peer, data["text"])
    else:
        await _refuse(ws, f"unknown message type {kind!r}" if kind else "each message needs a type")
        return False
    if refused is not None:
        await ws.send_json({"type": "error", "detail": refused})
    return True


async def _listen(ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass  # the page only listens


async def worker_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws/worker: live notices for a signed-in worker's own page (a client is waiting)."""
    identity = request.get(IDENTITY)
    if identity is None or identity.actor.user_id is None:
        raise ProblemError(401, "Sign-in required", "sign in first")
    feeds = services(request).feeds
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    feeds.add_worker(identity.actor.user_id, ws)
    try:
        await _listen(ws)
    finally:
        feeds.discard_worker(identity.actor.user_id, ws)
    return ws


async def supervisor_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws/supervisor: nudges for a supervisor's (or admin's) team page."""
    identity = request.get(IDENTITY)
    if identity is None or identity.actor.user_id is None:
        raise ProblemError(401, "Sign-in required", "sign in first")
    if identity.actor.role not in REVIEWERS:
        raise ProblemError(403, "Forbidden", "the team page is for supervisors and admins")
    feeds = services(request).feeds
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    feeds.add_team(identity.actor.user_id, identity.actor.role, ws)
    try:
        await _listen(ws)
    finally:
        feeds.discard_team(identity.actor.user_id, ws)
    return ws


ROUTES = [
    web.get("/ws/visits/{visit_id}", visit_socket),
    web.get("/ws/worker", worker_socket),
    web.get("/ws/supervisor", supervisor_socket),
]
