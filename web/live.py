"""Live views for supervisors: the team's visits as they happen and risk flags as they are confirmed.

Pages subscribe to `/ws/supervisor`; the server only sends nudges ("visits" or "risk" changed) and
the page fetches the authoritative lists from the API, so a missed nudge costs nothing but a delay
(the page also refreshes every 30 s) and the socket never carries case data.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints
from sqlmodel import Session, col, select

from caserecord import audit, notes
from caserecord.access import require_role, visible_worker_ids
from caserecord.audit import Actor
from caserecord.models import Booking, Case, Client, RiskAlert, User, Visit, VisitParticipant
from caserecord.visit_status import ON_NOW
from transcription.risk import RISK_LABELS, RiskCategory
from web.api import api
from web.problems import ProblemError
from web.routing import Call, json_response
from web.runtime import IDENTITY, RUNTIME, Runtime

log = logging.getLogger(__name__)
REVIEWERS = ("admin", "supervisor")


@dataclass
class TeamFeeds:
    """Open `/ws/supervisor` sockets by user; admins hear about every worker."""

    feeds: dict[int, tuple[str, set[web.WebSocketResponse]]] = field(default_factory=dict)

    def add(self, user_id: int, role: str, ws: web.WebSocketResponse) -> None:
        self.feeds.setdefault(user_id, (role, set()))[1].add(ws)

    def discard(self, user_id: int, ws: web.WebSocketResponse) -> None:
        entry = self.feeds.get(user_id)
        if entry is not None:
            entry[1].discard(ws)
            if not entry[1]:
                del self.feeds[user_id]

    async def notify(self, rt: Runtime, worker_id: int, message: dict[str, Any]) -> None:
        """Nudge the pages of `worker_id`'s supervisor and of every admin."""
        if not self.feeds:
            return

        def supervisor_of(s: Session) -> int | None:
            user = s.get(User, worker_id)
            return user.supervisor_id if user is not None else None

        boss = await rt.db.read(supervisor_of)
        for user_id, (role, sockets) in list(self.feeds.items()):
            if role == "admin" or user_id == boss:
                for ws in list(sockets):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await ws.send_json(message)


LIVE = web.AppKey("live", TeamFeeds)


async def notify_team(app: web.Application, worker_id: int, kind: str) -> None:
    """Tell the supervisors watching `worker_id` that their `kind` ("visits" or "risk") changed."""
    feeds = app.get(LIVE)
    if feeds is not None:
        try:
            await feeds.notify(app[RUNTIME], worker_id, {"type": kind})
        except Exception:  # a nudge must never break the action that caused it
            log.exception("could not notify the team page")


# --- what the pages show ----------------------------------------------------------------------


class LiveParticipantOut(BaseModel):
    kind: str
    name: str
    state: str
    presence: str
    device: str
    via: str


class LiveVisitOut(BaseModel):
    id: int
    status: str
    case_id: int
    worker_id: int
    worker_name: str
    client_name: str
    starts_at: datetime | None
    started_at: datetime | None
    waiting_since: datetime | None
    worker_present: bool
    recording: bool
    participants: list[LiveParticipantOut]


class RiskAlertOut(BaseModel):
    id: int
    visit_id: int
    note_id: int | None
    case_id: int
    worker_id: int
    worker_name: str
    client_name: str
    category: str
    label: str
    quote: str
    at_seconds: float
    confirmed_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None


def client_names(s: Session, case_ids: set[int]) -> dict[int, str]:
    if not case_ids:
        return {}
    rows = s.exec(select(Case.id, Client.name).join(Client).where(col(Case.id).in_(case_ids)))
    return {case_id: name for case_id, name in rows if case_id is not None}


def user_names(s: Session, worker_ids: set[int]) -> dict[int, str]:
    if not worker_ids:
        return {}
    rows = s.exec(select(User.id, User.name).where(col(User.id).in_(worker_ids)))
    return {user_id: name for user_id, name in rows if user_id is not None}


Presence = tuple[set[int], set[int]]  # connected, reconnecting participant ids
PresenceOf = Callable[[int], Presence]


def live_visits(s: Session, actor: Actor, presence_of: PresenceOf) -> list[LiveVisitOut]:
    """The team's visits that are waiting or in progress, with who is there; the read is audited."""
    require_role(actor, *REVIEWERS)
    q = select(Visit).where(col(Visit.status).in_(ON_NOW))
    ids = visible_worker_ids(s, actor)
    if ids is not None:
        q = q.where(col(Visit.worker_id).in_(ids))
    visits = list(s.exec(q.order_by(col(Visit.id))))
    if not visits:
        return []
    clients = client_names(s, {v.case_id for v in visits})
    workers = user_names(s, {v.worker_id for v in visits})
    parts: dict[int, list[VisitParticipant]] = {}
    q_parts = select(VisitParticipant).where(col(VisitParticipant.visit_id).in_([v.id for v in visits]))
    for p in s.exec(q_parts.order_by(col(VisitParticipant.id))):
        parts.setdefault(p.visit_id, []).append(p)
    out = []
    booking_ids = [v.booking_id for v in visits if v.booking_id is not None]
    starts = {
        b: at
        for b, at in s.exec(select(Booking.id, Booking.start_at).where(col(Booking.id).in_(booking_ids)))
    }
    for v in visits:
        assert v.id is not None
        connected, reconnecting = presence_of(v.id)
        people = []
        for p in parts.get(v.id, []):
            pid = p.id or 0
            state = (
                "left"
                if p.state == "left"
                else "connected"
                if pid in connected
                else "reconnecting"
                if pid in reconnecting
                else "away"
            )
            people.append(
                LiveParticipantOut(
                    kind=p.kind, name=p.name, state=p.state, presence=state, device=p.device, via=p.via
                )
            )
        waiting = [p.joined_at for p in parts.get(v.id, []) if p.kind == "client" and p.state == "waiting"]
        out.append(
            LiveVisitOut(
                id=v.id,
                status=v.status,
                case_id=v.case_id,
                worker_id=v.worker_id,
                worker_name=workers.get(v.worker_id, ""),
                client_name=clients.get(v.case_id, ""),
                starts_at=starts.get(v.booking_id) if v.booking_id is not None else None,
                started_at=v.started_at,
                waiting_since=min(waiting) if waiting else None,
                worker_present=any(
                    p.kind == "worker" and (p.id or 0) in connected for p in parts.get(v.id, [])
                ),
                recording=bool(v.recording),
                participants=people,
            )
        )
        audit.record(s, actor, "visit.live.read", "visit", v.id, case_id=v.case_id)
    return out


def alerts_out(s: Session, alerts: list[RiskAlert]) -> list[RiskAlertOut]:
    clients = client_names(s, {a.case_id for a in alerts})
    workers = user_names(s, {a.worker_id for a in alerts})
    return [
        RiskAlertOut(
            id=a.id or 0,
            visit_id=a.visit_id,
            note_id=a.note_id,
            case_id=a.case_id,
            worker_id=a.worker_id,
            worker_name=workers.get(a.worker_id, ""),
            client_name=clients.get(a.case_id, ""),
            category=a.category,
            label=a.label,
            quote=a.quote,
            at_seconds=a.at_ms / 1000,
            confirmed_at=a.confirmed_at,
            acknowledged_at=a.acknowledged_at,
            acknowledged_by=a.acknowledged_by,
        )
        for a in alerts
    ]


# --- API ---------------------------------------------------------------------------------------


def presence_for(app: web.Application) -> PresenceOf:
    from web.visits import VISITS  # the visit services own presence

    services = app.get(VISITS)
    if services is None:
        return lambda visit_id: (set(), set())
    hub = services.hub
    return lambda visit_id: (set(hub.connected(visit_id)), hub.reconnecting(visit_id))


@api.add(
    "GET",
    "/api/live-visits",
    summary="The team's visits that are waiting or in progress, with who is connected",
    roles=REVIEWERS,
    response=LiveVisitOut,
    many=True,
    tag="supervision",
)
async def get_live_visits(call: Call) -> web.StreamResponse:
    presence = presence_for(call.request.app)
    return json_response(await call.rt.db.write(live_visits, call.actor, presence))


class AlertsQuery(BaseModel):
    model_config = {"extra": "forbid"}
    state: Literal["open", "all"] = "open"


@api.add(
    "GET",
    "/api/risk-alerts",
    summary="Risk flags confirmed in the team's notes (open ones, or all)",
    roles=REVIEWERS,
    query=AlertsQuery,
    response=RiskAlertOut,
    many=True,
    tag="supervision",
)
async def get_risk_alerts(call: Call) -> web.StreamResponse:
    open_only = call.query.state == "open"

    def run(s: Session) -> list[RiskAlertOut]:
        return alerts_out(s, notes.risk_alerts(s, call.actor, open_only=open_only))

    return json_response(await call.rt.db.write(run))


@api.add(
    "POST",
    "/api/risk-alerts/{alert_id}/acknowledge",
    summary="Mark a risk alert as seen and acted on",
    roles=REVIEWERS,
    response=RiskAlertOut,
    errors=(409,),
    tag="supervision",
)
async def acknowledge_risk_alert(call: Call) -> web.StreamResponse:
    now = call.rt.clock()

    def run(s: Session) -> RiskAlertOut:
        return alerts_out(s, [notes.acknowledge_alert(s, call.actor, call.path["alert_id"], now)])[0]

    out = await call.rt.db.write(run)
    await notify_team(call.request.app, out.worker_id, "risk")
    return json_response(out)


class LiveFlagIn(BaseModel):
    model_config = {"extra": "forbid"}
    category: RiskCategory
    quote: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    start: Annotated[float, Field(ge=0, le=86_400, description="Seconds into the visit the words were said")]


@api.add(
    "POST",
    "/api/visits/{visit_id}/risk-flags",
    summary="Confirm, during the visit, a risk heard in what was said (the supervisor is alerted)",
    roles=("admin", "worker"),
    body=LiveFlagIn,
    response=RiskAlertOut,
    status=201,
    tag="supervision",
)
async def confirm_live_flag(call: Call) -> web.StreamResponse:
    body: LiveFlagIn = call.body
    now = call.rt.clock()

    def run(s: Session) -> RiskAlertOut:
        alert = notes.confirm_live_flag(
            s,
            call.actor,
            call.path["visit_id"],
            body.category.value,
            RISK_LABELS[body.category],
            body.quote,
            round(body.start * 1000),
            now,
        )
        return alerts_out(s, [alert])[0]

    out = await call.rt.db.write(run)
    await notify_team(call.request.app, out.worker_id, "risk")
    return json_response(out, 201)


# --- socket ------------------------------------------------------------------------------------


async def supervisor_socket(request: web.Request) -> web.StreamResponse:
    """GET /ws/supervisor: nudges for a supervisor's (or admin's) team page."""
    identity = request.get(IDENTITY)
    if identity is None or identity.actor.user_id is None:
        raise ProblemError(401, "Sign-in required", "sign in first")
    if identity.actor.role not in REVIEWERS:
        raise ProblemError(403, "Forbidden", "the team page is for supervisors and admins")
    feeds = request.app[LIVE]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    feeds.add(identity.actor.user_id, identity.actor.role, ws)
    try:
        async for _ in ws:
            pass  # the page only listens
    finally:
        feeds.discard(identity.actor.user_id, ws)
    return ws


async def _live_ctx(app: web.Application) -> AsyncIterator[None]:
    app[LIVE] = TeamFeeds()
    yield
    for _, sockets in list(app[LIVE].feeds.values()):
        for ws in list(sockets):
            with contextlib.suppress(Exception):
                await ws.close(message=b"server shutting down")


def install_live(app: web.Application) -> None:
    """Mount the supervisor socket (the API routes are in the shared route table)."""
    app.cleanup_ctx.append(_live_ctx)
    app.router.add_get("/ws/supervisor", supervisor_socket)
