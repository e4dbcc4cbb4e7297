"""Visits on the web: join links, kiosk check-in, the waiting room socket, admit, end, uplink."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import WSMsgType, web
from aiortc import RTCIceServer
from pydantic import BaseModel, Field, StringConstraints, ValidationError
from sqlmodel import Session, select

from caserecord import audit, transcripts
from caserecord.access import require_case
from caserecord.audit import Actor
from caserecord.errors import Conflict, Forbidden, NotFound, RecordError
from caserecord.models import Note, User, Visit, VisitParticipant
from caserecord.visit_status import IN_PROGRESS, LIVE
from scheduler import walk_ins
from transcription import Engine, Segment, StreamingTranscriber
from transcription.risk import RISK_LABELS, find_risks
from visits import lifecycle
from visits.audio import AudioPart, AudioStore
from visits.hub import Peer, VisitHub
from visits.uplink import AudioSink, UplinkError, UplinkKey, UplinkRegistry
from web import schemas as S
from web.api import api
from web.live import notify_team
from web.notes import draft_visit_note
from web.pages import render
from web.problems import ProblemError
from web.routing import Call, client_ip, json_response
from web.runtime import IDENTITY, RUNTIME, Runtime
from web.throttle import Throttle

log = logging.getLogger(__name__)
MAX_WS_MESSAGE = 64 * 1024
HELLO_TIMEOUT = 10.0
KIOSK_COOKIE = "lastmile_kiosk"


@dataclass
class VisitServices:
    """The live side of visits: presence, media peers, audio files and the kiosk throttles."""

    hub: VisitHub
    uplinks: UplinkRegistry
    store: AudioStore
    ice_servers: list[dict[str, Any]]
    kiosk_device: Throttle
    kiosk_code: Throttle
    engine: Engine | None = None
    worker_feeds: dict[int, set[web.WebSocketResponse]] = field(default_factory=dict)

    background: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in a task the app waits for at shutdown (errors are logged)."""
        task = asyncio.ensure_future(coro)
        self.background.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self.background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)

    async def tell_worker(self, worker_id: int, message: dict[str, Any]) -> None:
        """Send a message to every open /worker page of one worker."""
        for ws in list(self.worker_feeds.get(worker_id, ())):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(message)


VISITS = web.AppKey("visits", VisitServices)


def parse_ice_servers(raw: str) -> list[dict[str, Any]]:
    """Parse LASTMILE_ICE_SERVERS: a JSON list like [{"urls": "stun:stun.example.org"}]."""
    try:
        value = json.loads(raw or "[]")
    except ValueError as exc:
        raise SystemExit(f"LASTMILE_ICE_SERVERS is not JSON: {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(v, dict) and "urls" in v for v in value):
        raise SystemExit('LASTMILE_ICE_SERVERS must be a JSON list of {"urls": ...} objects')
    return value


def _rtc_servers(servers: list[dict[str, Any]]) -> list[RTCIceServer]:
    return [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in servers
    ]


def visits_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: start the hub, the audio store and the uplink registry; stop them."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        rt = app[RUNTIME]
        settings = rt.settings
        ice = parse_ice_servers(settings.ice_servers)
        store = AudioStore(settings.data_dir / "audio")
        # The server's own ICE servers are separate from the browsers': an unreachable STUN
        # server would cost every uplink 5 s, and loopback or LAN needs none.
        server_ice = parse_ice_servers(settings.server_ice_servers)
        # One Whisper engine per process; the model loads on the first utterance, off the loop.
        engine = Engine(settings.whisper_options()) if settings.transcribe else None

        async def on_segment(visit_id: int, seg: Segment) -> None:
            words = [(w.start, w.end, w.text, w.probability) for w in seg.words]
            row = await rt.db.write(
                transcripts.add_segment, visit_id, seg.speaker, seg.start, seg.end, seg.text, words
            )
            if row is not None:
                caption = {
                    "type": "caption",
                    "speaker": seg.speaker.split(":")[0],
                    "start": seg.start,
                    "end": seg.end,
                    "text": row.text,
                }
                await app[VISITS].hub.broadcast(visit_id, caption)
                # Possible risks go to the worker at once (never to the client) to confirm or ignore.
                for risk in find_risks(row.text, seg.speaker.split(":")[0]):
                    suggestion = {
                        "type": "risk",
                        "category": risk.category.value,
                        "label": RISK_LABELS[risk.category],
                        "quote": row.text,
                        "start": row.start_ms / 1000,
                    }
                    await app[VISITS].hub.broadcast(visit_id, suggestion, kind="worker")

        def sink_for(visit_id: int) -> AudioSink | None:
            if engine is None:
                return None
            return StreamingTranscriber(engine, functools.partial(on_segment, visit_id))

        uplinks = UplinkRegistry(
            store, ice_servers=_rtc_servers(server_ice) or None, clock=rt.clock, sink_factory=sink_for
        )

        async def gone(visit_id: int, participant_id: int) -> None:
            await rt.db.write(lifecycle.leave, participant_id, rt.clock())
            await uplinks.close_participant(UplinkKey(visit_id, participant_id))
            await push_state(app, visit_id)

        async def empty(visit_id: int) -> None:
            await _end(app, Actor.system(), visit_id, "everyone left", check=False)

        hub = VisitHub(
            grace=settings.visit_grace_seconds,
            empty_timeout=settings.visit_empty_seconds,
            on_gone=gone,
            on_empty=empty,
        )
        app[VISITS] = VisitServices(
            hub=hub,
            uplinks=uplinks,
            store=store,
            ice_servers=ice,
            kiosk_device=Throttle(limit=10, window=300),
            kiosk_code=Throttle(limit=20, window=300),
            engine=engine,
        )
        yield
        await asyncio.gather(*app[VISITS].background, return_exceptions=True)
        await hub.close()
        await uplinks.close()  # finishes every visit's transcriber first
        store.close()
        if engine is not None:
            await asyncio.to_thread(engine.close)

    return ctx(app)


# --- live state -------------------------------------------------------------------------


def _presence(pid: int, connected: dict[int, Peer], reconnecting: set[int], part: VisitParticipant) -> str:
    if part.state == "left":
        return "left"
    if pid in connected:
        return "connected"
    if pid in reconnecting:
        return "reconnecting"
    return "away"


async def push_state(app: web.Application, visit_id: int) -> None:
    """Send each connected participant the visit's current state (staff see everyone)."""
    rt = app[RUNTIME]
    hub = app[VISITS].hub
    snap = await rt.db.read(lifecycle.snapshot, visit_id)
    connected = hub.connected(visit_id)
    reconnecting = hub.reconnecting(visit_id)
    people = [
        {
            "id": p.id,
            "kind": p.kind,
            "name": p.name,
            "state": p.state,
            "presence": _presence(p.id or 0, connected, reconnecting, p),
            "device": p.device,
            "via": p.via,
            "consent": p.consent,
            "joined_at": p.joined_at.isoformat(),
        }
        for p in snap.participants
    ]
    names = {p.id: p.name for p in snap.participants}
    staff_state = {
        "type": "state",
        "visit": {"id": visit_id, "status": snap.visit.status, "recording": snap.visit.recording},
        "participants": people,
        "messages": [
            {
                "participant_id": m.participant_id,
                "name": names.get(m.participant_id, ""),
                "text": m.text,
                "at": m.at.isoformat(),
            }
            for m in snap.messages
        ],
    }
    worker_here = any(p.kind == "worker" and (p.id or 0) in connected for p in snap.participants)
    for pid, peer in connected.items():
        if peer.kind == "worker":
            await hub.send(visit_id, pid, staff_state)
            continue
        me = next((p for p in snap.participants if p.id == pid), None)
        await hub.send(
            visit_id,
            pid,
            {
                "type": "state",
                "visit": {"id": visit_id, "status": snap.visit.status},
                "worker_present": worker_here,
                "worker_name": snap.worker_name,
                "admitted": me is not None and me.state == "admitted",
                "workers": [
                    p["id"] for p in people if p["kind"] == "worker" and p["presence"] == "connected"
                ],
            },
        )

    # The people in the visit first; then the supervisors' pages (a database read to find them).
    await notify_team(app, snap.visit.worker_id, "visits")


async def _end(
    app: web.Application, actor: Actor, visit_id: int, reason: str, *, check: bool = True
) -> Visit:
    rt = app[RUNTIME]
    services = app[VISITS]
    visit = await rt.db.write(lifecycle.end, actor, visit_id, reason, rt.clock(), check=check)
    await services.hub.close_room(visit_id, {"type": "ended", "reason": reason})
    await notify_team(app, visit.worker_id, "visits")
    log.info("visit ended", extra={"visit_id": visit_id, "reason": reason})
    # Finishing the uplinks transcribes each speaker's last utterance; then the note is drafted.
    await services.uplinks.close_visit(visit_id)
    try:
        await draft_visit_note(app, visit_id)
    except Exception:  # the visit has ended either way; the note is drafted again after a restart
        log.exception("drafting the note failed", extra={"visit_id": visit_id})
    return visit


# --- pages ------------------------------------------------------------------------------


def _local(dt: datetime | None, tz: str) -> str:
    return dt.astimezone(ZoneInfo(tz)).strftime("%A %-d %B, %H:%M") if dt is not None else ""


async def join_page(request: web.Request) -> web.StreamResponse:
    """GET /j/{token}: the client's page: device check, consent, waiting room, call."""
    rt = request.app[RUNTIME]
    token = request.match_info["token"]
    try:
        info = await rt.db.read(lifecycle.join_info, token, rt.clock())
    except RecordError:
        return render(
            "join_closed.html",
            status=404,
            title="This link does not work",
            detail="Check that you opened the whole link from your invitation, or call the office.",
        )
    if info.state != "open":
        messages = {
            "early": (
                "Your visit has not opened yet",
                f"You can join from {_local(info.opens_at, info.worker_timezone)} ({info.worker_timezone}).",
            ),
            "expired": (
                "This link has expired",
                "The time for this visit has passed. Call the office to book again.",
            ),
            "cancelled": ("This visit was cancelled", "Call the office or use your latest invitation."),
            "ended": ("This visit has ended", "Thank you. You can close this page."),
        }
        title, detail = messages[info.state]
        return render(
            "join_closed.html", status=410 if info.state != "early" else 200, title=title, detail=detail
        )
    return render(
        "join.html",
        info=info,
        token=token,
        starts=_local(info.starts_at, info.worker_timezone),
        tz=info.worker_timezone,
        kiosk=False,
    )


@dataclass(frozen=True, slots=True)
class _KioskQueue:
    """One walk-in queue as the kiosk shows it: the worker's name and until when, nothing else."""

    worker_id: int
    worker_name: str
    until: str


def _until(end: datetime) -> str:
    return end.strftime("%H:%M %Z").strip()


def _kiosk_cookie(request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
    if KIOSK_COOKIE not in request.cookies:
        resp.set_cookie(
            KIOSK_COOKIE, secrets.token_urlsafe(12), httponly=True, samesite="Strict", max_age=365 * 86400
        )
    return resp


async def kiosk_page(request: web.Request) -> web.StreamResponse:
    """GET /kiosk: a public kiosk enters the code from the invitation, or joins a walk-in queue."""
    rt = request.app[RUNTIME]
    open_now = await rt.db.read(walk_ins.open_walk_ins, rt.clock())
    queues = [_KioskQueue(w.worker_id, w.worker_name, _until(w.end)) for w in open_now]
    return _kiosk_cookie(request, render("kiosk.html", walk_ins=queues))


async def visit_page(request: web.Request) -> web.StreamResponse:
    """GET /visit/{id}: the worker's call page with the waiting room."""
    ident = request.get(IDENTITY)
    if ident is None:
        raise web.HTTPSeeOther(f"/?next={request.path}")
    rt = request.app[RUNTIME]
    raw = request.match_info["visit_id"]
    if not raw.isdigit() or not 1 <= int(raw) < 2**31:
        raise web.HTTPNotFound()
    try:
        snap = await rt.db.write(lifecycle.read_visit, ident.actor, int(raw))
    except RecordError as exc:
        return render(
            "error.html",
            status=exc.status,
            me=ident.user,
            csrf=ident.csrf_token,
            title=exc.title,
            detail=exc.detail,
        )
    can_act = ident.actor.role == "admin" or ident.actor.user_id == snap.visit.worker_id
    return render(
        "visit.html",
        me=ident.user,
        csrf=ident.csrf_token,
        snap=snap,
        can_act=can_act,
        starts=_local(snap.starts_at, snap.worker_timezone),
        tz=snap.worker_timezone,
    )


# --- API --------------------------------------------------------------------------------


class JoinIn(S.In):
    consent: bool = Field(description="The client agrees that the visit is recorded and transcribed")
    device: Literal["phone", "tablet", "computer", "kiosk", "unknown"] = "unknown"
    participant_token: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="Given at the first check-in; send it again to rejoin after a drop"
    )


class JoinOut(BaseModel):
    visit_id: int
    participant_id: int
    participant_token: str
    recording: bool
    ice_servers: list[dict[str, Any]]


class KioskIn(S.In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=20)]


class KioskOut(BaseModel):
    join_token: str
    worker_name: str
    state: str


class AdmitIn(S.In):
    participant_id: Annotated[int, Field(ge=1, le=2**31 - 1)]


class EndIn(S.In):
    reason: Annotated[str, StringConstraints(max_length=200)] = "ended by the worker"


class SdpIn(S.In):
    type: Literal["offer"]
    sdp: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class SdpOut(BaseModel):
    type: str
    sdp: str


class ParticipantOut(BaseModel):
    id: int
    kind: str
    name: str
    state: str
    via: str
    device: str
    consent: bool | None


class VisitDetailOut(BaseModel):
    id: int
    booking_id: int | None
    case_id: int
    worker_id: int
    status: str
    recording: bool | None
    starts_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    participants: list[ParticipantOut]


def _detail(snap: lifecycle.VisitSnapshot) -> VisitDetailOut:
    v = snap.visit
    assert v.id is not None
    return VisitDetailOut(
        id=v.id,
        booking_id=v.booking_id,
        case_id=v.case_id,
        worker_id=v.worker_id,
        status=v.status,
        recording=v.recording,
        starts_at=snap.starts_at,
        started_at=v.started_at,
        ended_at=v.ended_at,
        end_reason=v.end_reason,
        participants=[
            ParticipantOut(
                id=p.id or 0,
                kind=p.kind,
                name=p.name,
                state=p.state,
                via=p.via,
                device=p.device,
                consent=p.consent,
            )
            for p in snap.participants
        ],
    )


@api.add(
    "POST",
    "/api/kiosk/check-in",
    summary="A kiosk trades a visit code for the join link",
    roles=None,
    body=KioskIn,
    response=KioskOut,
    errors=(404, 429),
    tag="visits",
)
async def kiosk_check_in(call: Call) -> web.StreamResponse:
    request = call.request
    services = request.app[VISITS]
    body: KioskIn = call.body
    device = f"{client_ip(request)}|{request.cookies.get(KIOSK_COOKIE, '')}"
    for throttle, key in ((services.kiosk_device, device), (services.kiosk_code, body.code)):
        if not throttle.allow(key):
            raise ProblemError(
                429,
                "Too Many Requests",
                "too many tries; wait a few minutes and try again",
                retry_after=throttle.retry_after(key),
            )
    token, info = await call.rt.db.write(lifecycle.kiosk_lookup, body.code.strip(), call.rt.clock())
    return json_response(KioskOut(join_token=token, worker_name=info.worker_name, state=info.state))


@api.add(
    "POST",
    "/api/join/{join_token}",
    summary="A client checks in to the waiting room",
    roles=None,
    body=JoinIn,
    response=JoinOut,
    errors=(404, 409),
    tag="visits",
)
async def join_visit(call: Call) -> web.StreamResponse:
    rt = call.rt
    body: JoinIn = call.body
    via = "kiosk" if body.device == "kiosk" else "link"
    part, ptoken, visit = await rt.db.write(
        lifecycle.check_in,
        call.tokens["join_token"],
        via=via,
        device=body.device,
        consent=body.consent,
        now=rt.clock(),
        ip=client_ip(call.request),
        participant_token=body.participant_token,
    )
    assert visit.id is not None and part.id is not None
    await push_state(call.request.app, visit.id)
    await call.request.app[VISITS].tell_worker(
        visit.worker_id,
        {
            "type": "waiting",
            "visit_id": visit.id,
            "name": part.name,
            "device": part.device,
            "since": part.joined_at.isoformat(),
        },
    )
    return json_response(
        JoinOut(
            visit_id=visit.id,
            participant_id=part.id,
            participant_token=ptoken,
            recording=bool(part.consent),
            ice_servers=call.request.app[VISITS].ice_servers,
        )
    )


@api.add(
    "GET",
    "/api/visits/{visit_id}",
    summary="A visit with its participants",
    roles=("admin", "supervisor", "worker"),
    response=VisitDetailOut,
    tag="visits",
)
async def get_visit(call: Call) -> web.StreamResponse:
    snap = await call.rt.db.write(lifecycle.read_visit, call.actor, call.path["visit_id"])
    return json_response(_detail(snap))


@api.add(
    "POST",
    "/api/visits/{visit_id}/admit",
    summary="Admit a waiting client",
    roles=("admin", "worker"),
    body=AdmitIn,
    response=VisitDetailOut,
    errors=(409,),
    tag="visits",
)
async def admit_client(call: Call) -> web.StreamResponse:
    visit_id = call.path["visit_id"]
    body: AdmitIn = call.body
    await call.rt.db.write(lifecycle.admit, call.actor, visit_id, body.participant_id, call.rt.clock())
    hub = call.request.app[VISITS].hub
    await hub.send(visit_id, body.participant_id, {"type": "admitted"})
    await push_state(call.request.app, visit_id)
    snap = await call.rt.db.read(lifecycle.snapshot, visit_id)
    return json_response(_detail(snap))


@api.add(
    "POST",
    "/api/visits/{visit_id}/end",
    summary="End the visit for everyone",
    roles=("admin", "worker"),
    body=EndIn,
    response=VisitDetailOut,
    errors=(409,),
    tag="visits",
)
async def end_visit(call: Call) -> web.StreamResponse:
    visit_id = call.path["visit_id"]
    await _end(
        call.request.app, call.actor, visit_id, call.body.reason.strip()[:200] or "ended by the worker"
    )
    snap = await call.rt.db.read(lifecycle.snapshot, visit_id)
    return json_response(_detail(snap))


@api.add(
    "POST",
    "/api/visits/{visit_id}/uplink",
    summary="Send one's microphone to the server (SDP offer in, answer out; clients: X-Participant-Token)",
    roles=None,
    body=SdpIn,
    response=SdpOut,
    errors=(401, 403, 404, 409),
    tag="visits",
)
async def uplink(call: Call) -> web.StreamResponse:
    request = call.request
    rt = call.rt
    services = request.app[VISITS]
    visit_id = call.path["visit_id"]
    body: SdpIn = call.body
    ptoken = request.headers.get("X-Participant-Token", "")
    identity = call.identity
    now = rt.clock()

    def resolve(s: Session) -> tuple[VisitParticipant, Visit]:
        if ptoken:
            part = lifecycle.participant_by_token(s, visit_id, ptoken)
            visit = s.get(Visit, visit_id)
            assert visit is not None
            if part.state != "admitted":
                raise Conflict("wait until the worker admits you")
            if not part.consent:
                raise Forbidden("no recording consent: no audio is sent to the server")
            return part, visit
        if identity is None:
            raise RecordError("sign in, or send X-Participant-Token")
        part, visit = lifecycle.staff_participant(s, identity.actor, visit_id, now)
        if identity.actor.user_id != visit.worker_id:
            raise Forbidden("only the visit's worker sends audio")
        return part, visit

    try:
        part, visit = await rt.db.write(resolve)
    except RecordError as exc:
        if type(exc) is RecordError:
            raise ProblemError(401, "Sign-in required", exc.detail) from exc
        raise
    if visit.status != IN_PROGRESS or visit.started_at is None:
        raise Conflict(f"visit {visit_id} is {visit.status}; audio goes to the server only during the call")
    if not visit.recording:
        raise Forbidden("the client did not consent to recording: no audio is sent to the server")
    assert part.id is not None
    speaker = f"{part.kind}:{part.id}"
    try:
        answer = await services.uplinks.accept(
            UplinkKey(visit_id, part.id), speaker, visit.started_at, body.sdp
        )
    except UplinkError as exc:
        raise ProblemError(422, "Unprocessable request", f"sdp: {exc}") from exc
    return json_response(SdpOut(type="answer", sdp=answer))


class TranscriptLineOut(BaseModel):
    speaker: Literal["worker", "client"]
    name: str
    start: float
    end: float
    text: str
    audio_url: str | None = Field(default=None, description="The speaker's recording holding this line")
    audio_at: float | None = Field(
        default=None, description="Where in that recording the line starts, seconds"
    )


def _audio_of(parts: list[AudioPart], participant_id: int, start: float) -> tuple[str | None, float | None]:
    for p in parts:
        if p.participant_id == participant_id and p.offset - 0.5 <= start <= p.end + 0.5:
            url = f"/api/visits/{p.visit_id}/audio/{p.participant_id}/{p.part}"
            return url, round(max(0.0, start - p.offset), 2)
    return None, None


@api.add(
    "GET",
    "/api/visits/{visit_id}/transcript",
    summary="The visit's transcript, one timeline",
    roles=("admin", "supervisor", "worker"),
    response=TranscriptLineOut,
    many=True,
    tag="visits",
)
async def get_transcript(call: Call) -> web.StreamResponse:
    visit_id = call.path["visit_id"]
    rows = await call.rt.db.write(transcripts.read_transcript, call.actor, visit_id)
    parts = await asyncio.to_thread(call.request.app[VISITS].store.parts, visit_id)
    lines = []
    for row, who in rows:
        url, at = _audio_of(parts, row.participant_id, row.start_ms / 1000)
        lines.append(
            TranscriptLineOut(
                speaker="worker" if row.speaker.startswith("worker") else "client",
                name=who.name if who is not None else "",
                start=row.start_ms / 1000,
                end=row.end_ms / 1000,
                text=row.text,
                audio_url=url,
                audio_at=at,
            )
        )
    return json_response(lines)


def _audio_access(s: Session, actor: Actor, visit_id: int, participant_id: int) -> bool:
    """Check the caseload for a recording and audit the listen; return whether audio was deleted."""
    visit = s.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    require_case(s, actor, visit.case_id)
    note = s.exec(select(Note).where(Note.visit_id == visit_id)).first()
    audit.record(
        s, actor, "audio.read", "visit", visit_id, case_id=visit.case_id, participant_id=participant_id
    )
    return note is not None and note.audio_deleted_at is not None


@api.add(
    "GET",
    "/api/visits/{visit_id}/audio/{participant_id}/{part}",
    summary="One part of a speaker's recording (WAV; range requests for seeking)",
    roles=("admin", "supervisor", "worker"),
    media="audio/wav",
    errors=(410,),
    tag="visits",
)
async def get_audio(call: Call) -> web.StreamResponse:
    visit_id, pid, part = call.path["visit_id"], call.path["participant_id"], call.path["part"]
    deleted = await call.rt.db.write(_audio_access, call.actor, visit_id, pid)
    path = call.request.app[VISITS].store.visit_dir(visit_id) / f"{pid}-{part}.wav"
    if not path.is_file():
        if deleted:
            raise ProblemError(410, "Gone", "this recording was deleted under the agency's retention rules")
        raise NotFound("no such recording")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "private, no-store"})


# --- walk-in hours ----------------------------------------------------------------------


class WalkInIn(S.In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    consent: bool
    device: Literal["phone", "tablet", "computer", "kiosk", "unknown"] = "unknown"


class KioskWalkInIn(S.In):
    worker_id: Annotated[int, Field(ge=1, le=2**31 - 1, description="A worker from the kiosk's open queues")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    consent: bool = Field(description="The client agrees that the visit is recorded and transcribed")


class WalkInLinkOut(BaseModel):
    url: str


@api.add(
    "POST",
    "/api/workers/{worker_id}/walk-in-link",
    summary="The worker's walk-in link (made once)",
    roles=("admin", "worker"),
    response=WalkInLinkOut,
    tag="visits",
)
async def walk_in_link(call: Call) -> web.StreamResponse:
    token = await call.rt.db.write(lifecycle.walkin_link_token, call.actor, call.path["worker_id"])
    return json_response(WalkInLinkOut(url=f"{call.rt.settings.base_url}/w/{token}"))


def _throttle(throttle: Throttle, key: str) -> None:
    if not throttle.allow(key):
        raise ProblemError(
            429,
            "Too Many Requests",
            "too many tries; wait a few minutes and try again",
            retry_after=throttle.retry_after(key),
        )


def _queue_walk_in(
    s: Session,
    worker: User,
    now: datetime,
    *,
    name: str,
    phone: str | None,
    consent: bool,
    device: str,
    via: str,
    ip: str | None,
    grace: timedelta,
) -> tuple[VisitParticipant, str, Visit]:
    """Put a client in `worker`'s walk-in queue if it is open now, or raise Conflict."""
    assert worker.id is not None
    window = walk_ins.walk_in_window(s, worker.id, now)
    if window is None:
        raise Conflict(f"{worker.name}'s walk-in hours are closed now")
    return lifecycle.walk_in(
        s,
        worker,
        window[1],
        name=name,
        phone=phone,
        consent=consent,
        device=device,
        via=via,
        now=now,
        ip=ip,
        grace=grace,
    )


async def _walked_in(
    services: VisitServices, part: VisitParticipant, ptoken: str, visit: Visit
) -> web.StreamResponse:
    """Tell the worker's page a walk-in waits and hand the client its participant token."""
    assert visit.id is not None and part.id is not None
    await services.tell_worker(
        visit.worker_id,
        {
            "type": "waiting",
            "visit_id": visit.id,
            "name": part.name,
            "device": part.device,
            "via": part.via,
            "since": part.joined_at.isoformat(),
            "walk_in": True,
        },
    )
    out = JoinOut(
        visit_id=visit.id,
        participant_id=part.id,
        participant_token=ptoken,
        recording=bool(part.consent),
        ice_servers=services.ice_servers,
    )
    return json_response(out, 201)


@api.add(
    "POST",
    "/api/walk-in/{walkin_token}",
    summary="A client joins the worker's walk-in queue",
    roles=None,
    body=WalkInIn,
    response=JoinOut,
    status=201,
    errors=(404, 409, 429),
    tag="visits",
)
async def walk_in(call: Call) -> web.StreamResponse:
    request = call.request
    rt = call.rt
    services = request.app[VISITS]
    body: WalkInIn = call.body
    _throttle(services.kiosk_device, f"walkin|{client_ip(request)}|{request.cookies.get(KIOSK_COOKIE, '')}")
    now = rt.clock()

    def run(s: Session) -> tuple[VisitParticipant, str, Visit]:
        worker = lifecycle.walkin_worker(s, call.tokens["walkin_token"])
        return _queue_walk_in(
            s,
            worker,
            now,
            name=body.name,
            phone=body.phone,
            consent=body.consent,
            device=body.device,
            via="kiosk" if body.device == "kiosk" else "link",
            ip=client_ip(request),
            grace=rt.join_policy.grace,
        )

    part, ptoken, visit = await rt.db.write(run)
    return await _walked_in(services, part, ptoken, visit)


@api.add(
    "POST",
    "/api/kiosk/walk-in",
    summary="A kiosk client joins a walk-in queue open now (picked from the kiosk's list)",
    roles=None,
    body=KioskWalkInIn,
    response=JoinOut,
    status=201,
    errors=(404, 409, 429),
    tag="visits",
)
async def kiosk_walk_in(call: Call) -> web.StreamResponse:
    request = call.request
    rt = call.rt
    services = request.app[VISITS]
    body: KioskWalkInIn = call.body
    # Like codes: each kiosk device is slowed down, and so is a flood aimed at one worker's queue.
    _throttle(
        services.kiosk_device, f"kiosk-walkin|{client_ip(request)}|{request.cookies.get(KIOSK_COOKIE, '')}"
    )
    _throttle(services.kiosk_code, f"kiosk-walkin-worker|{body.worker_id}")
    now = rt.clock()

    def run(s: Session) -> tuple[VisitParticipant, str, Visit]:
        worker = lifecycle.kiosk_walkin_worker(s, body.worker_id)
        return _queue_walk_in(
            s,
            worker,
            now,
            name=body.name,
            phone=body.phone,
            consent=body.consent,
            device="kiosk",
            via="kiosk",
            ip=client_ip(request),
            grace=rt.join_policy.grace,
        )

    part, ptoken, visit = await rt.db.write(run)
    log.info("kiosk walk-in", extra={"visit_id": visit.id, "worker_id": visit.worker_id})
    return await _walked_in(services, part, ptoken, visit)


async def walk_in_page(request: web.Request) -> web.StreamResponse:
    """GET /w/{token}: a worker's walk-in link; open during their walk-in hours."""
    rt = request.app[RUNTIME]
    token = request.match_info["token"]
    now = rt.clock()

    def run(s: Session) -> tuple[str, str, tuple[datetime, datetime] | None, datetime | None]:
        worker = lifecycle.walkin_worker(s, token)
        assert worker.id is not None
        return (
            worker.name,
            worker.timezone,
            walk_ins.walk_in_window(s, worker.id, now),
            walk_ins.next_walk_in(s, worker.id, now),
        )

    try:
        name, tz, window, upcoming = await rt.db.read(run)
    except RecordError:
        return render(
            "join_closed.html",
            status=404,
            title="This link does not work",
            detail="Check the address, or ask at the front desk.",
        )
    if window is None:
        later = f" They next open {_local(upcoming, tz)} ({tz})." if upcoming else ""
        return render(
            "join_closed.html", title=f"{name}'s walk-in hours are closed", detail=f"Come back then.{later}"
        )
    resp = render(
        "walk_in.html", worker_name=name, token=token, until=_local(window[1], tz), tz=tz, walkin=True
    )
    if KIOSK_COOKIE not in request.cookies:
        resp.set_cookie(
            KIOSK_COOKIE, secrets.token_urlsafe(12), httponly=True, samesite="Strict", max_age=86400
        )
    return resp


async def kiosk_walk_in_page(request: web.Request) -> web.StreamResponse:
    """GET /kiosk/walk-in/{worker_id}: a kiosk client picked a walk-in queue: name, check, consent."""
    rt = request.app[RUNTIME]
    raw = request.match_info["worker_id"]
    now = rt.clock()

    def run(s: Session) -> tuple[str, tuple[datetime, datetime] | None, datetime | None]:
        if not re.fullmatch(r"[0-9]{1,10}", raw) or not 1 <= int(raw) < 2**31:
            raise NotFound("no such worker")
        worker = lifecycle.kiosk_walkin_worker(s, int(raw))
        assert worker.id is not None
        return (
            worker.name,
            walk_ins.walk_in_window(s, worker.id, now),
            walk_ins.next_walk_in(s, worker.id, now),
        )

    try:
        name, window, upcoming = await rt.db.read(run)
    except RecordError:
        page = render(
            "kiosk_closed.html",
            status=404,
            title="There is no such walk-in queue",
            detail="Go back to the start and pick a name from the list, or ask at the front desk.",
        )
        return _kiosk_cookie(request, page)
    if window is None:
        later = f" They next open {upcoming.strftime('%A %-d %B, %H:%M %Z')}." if upcoming else ""
        page = render(
            "kiosk_closed.html",
            status=409,
            title=f"{name}'s walk-in hours are closed",
            detail=f"Nobody can join this queue now.{later} Go back to the start to see who is open.",
        )
        return _kiosk_cookie(request, page)
    resp = render("walk_in.html", worker_name=name, worker_id=int(raw), until=_until(window[1]), kiosk=True)
    return _kiosk_cookie(request, resp)


# --- the visit's WebSocket --------------------------------------------------------------


class _Signal(BaseModel):
    type: str
    to: int
    data: dict[str, Any]


async def visit_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws/visits/{visit_id}: presence, waiting-room messages and WebRTC signalling."""
    app = request.app
    rt = app[RUNTIME]
    services = app[VISITS]
    raw = request.match_info["visit_id"]
    if not raw.isdigit() or not 1 <= int(raw) < 2**31:
        raise ProblemError(404, "Not found", "no such visit")
    visit_id = int(raw)
    identity = request.get(IDENTITY)
    ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=MAX_WS_MESSAGE)
    await ws.prepare(request)
    try:
        if identity is not None:
            part, visit = await rt.db.write(lifecycle.staff_participant, identity.actor, visit_id, rt.clock())
        else:
            part, visit = await _hello(ws, rt, visit_id)
    except (RecordError, _Refused) as exc:
        detail = str(getattr(exc, "detail", exc))
        with contextlib.suppress(ConnectionError):
            await ws.send_json({"type": "error", "detail": detail})
            await ws.close(code=4403, message=detail[:120].encode())
        return ws
    if visit.status not in LIVE:
        await ws.send_json({"type": "ended", "reason": visit.end_reason or visit.status})
        await ws.close(code=1000, message=b"visit is over")
        return ws
    assert part.id is not None
    peer = Peer(part.id, part.kind, part.name, ws)
    await services.hub.attach(visit_id, peer)
    await ws.send_json(
        {
            "type": "welcome",
            "visit_id": visit_id,
            "participant_id": part.id,
            "kind": part.kind,
            "ice_servers": services.ice_servers,
        }
    )
    await push_state(app, visit_id)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                await _refuse(ws, "send JSON text messages")
                break
            if not await _handle(app, visit_id, peer, msg.data):
                break
    finally:
        services.hub.detach(visit_id, peer)
        # aiohttp may cancel this handler when the connection drops, so the others are told
        # from a task of its own rather than by awaiting here.
        services.spawn(push_state(app, visit_id))
        if not ws.closed:
            await ws.close()
    return ws


class _Refused(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def _hello(ws: web.WebSocketResponse, rt: Runtime, visit_id: int) -> tuple[VisitParticipant, Visit]:
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

    def run(s: Session) -> tuple[VisitParticipant, Visit]:
        part = lifecycle.participant_by_token(s, visit_id, data["token"][:200])
        visit = s.get(Visit, visit_id)
        assert visit is not None
        return part, visit

    return await rt.db.read(run)


async def _refuse(ws: web.WebSocketResponse, detail: str) -> None:
    with contextlib.suppress(ConnectionError):
        await ws.send_json({"type": "error", "detail": detail})
        await ws.close(code=4400, message=detail[:120].encode())


async def _handle(app: web.Application, visit_id: int, peer: Peer, text: str) -> bool:
    """Handle one message; return False after closing a socket that broke the protocol."""
    rt = app[RUNTIME]
    hub = app[VISITS].hub
    ws = peer.ws
    try:
        data = json.loads(text)
    except ValueError:
        await _refuse(ws, "messages are JSON objects")
        return False
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "ping":
        await ws.send_json({"type": "pong"})
        return True
    if kind == "signal":
        try:
            sig = _Signal.model_validate(data, strict=True)
        except ValidationError:
            await _refuse(ws, 'a signal is {"type": "signal", "to": <participant id>, "data": {...}}')
            return False
        target = hub.connected(visit_id).get(sig.to)
        # Media flows between the worker and admitted clients only.
        if target is None or target.kind == peer.kind:
            await ws.send_json({"type": "error", "detail": f"participant {sig.to} is not reachable"})
            return True
        if peer.kind == "client" and not await _admitted(rt, peer.participant_id):
            await ws.send_json({"type": "error", "detail": "wait until the worker admits you"})
            return True
        await hub.send(visit_id, sig.to, {"type": "signal", "from": peer.participant_id, "data": sig.data})
        return True
    if kind == "ready" and peer.kind == "client":
        await hub.broadcast(visit_id, {"type": "ready", "from": peer.participant_id}, kind="worker")
        return True
    if kind == "message" and peer.kind == "client" and isinstance(data.get("text"), str):
        try:
            await rt.db.write(lifecycle.add_message, peer.participant_id, data["text"], rt.clock())
        except RecordError as exc:
            await ws.send_json({"type": "error", "detail": exc.detail})
            return True
        await push_state(app, visit_id)
        return True
    await _refuse(ws, f"unknown message type {kind!r}" if kind else "each message needs a type")
    return False


async def _admitted(rt: Runtime, participant_id: int) -> bool:
    def run(s: Session) -> bool:
        part = s.get(VisitParticipant, participant_id)
        return part is not None and part.state == "admitted"

    return await rt.db.read(run)


async def worker_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws/worker: live notices for a signed-in worker's own page (a client is waiting)."""
    identity = request.get(IDENTITY)
    if identity is None or identity.actor.user_id is None:
        raise ProblemError(401, "Sign-in required", "sign in first")
    services = request.app[VISITS]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    feeds = services.worker_feeds.setdefault(identity.actor.user_id, set())
    feeds.add(ws)
    try:
        async for _ in ws:
            pass  # the page only listens
    finally:
        feeds.discard(ws)
    return ws


def install_visits(app: web.Application) -> None:
    """Mount the visit pages, socket and hand-routed endpoints; start the live services."""
    app.cleanup_ctx.append(visits_ctx)
    app.router.add_get("/j/{token}", join_page)
    app.router.add_get("/kiosk", kiosk_page)
    app.router.add_get("/w/{token}", walk_in_page)
    app.router.add_get("/kiosk/walk-in/{worker_id}", kiosk_walk_in_page)
    app.router.add_get("/visit/{visit_id}", visit_page)
    app.router.add_get("/ws/visits/{visit_id}", visit_socket)
    app.router.add_get("/ws/worker", worker_socket)
