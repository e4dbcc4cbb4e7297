"""The team's visits as they happen, as a supervisor's page and the live-visits API show them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, col, select

from caserecord import audit
from caserecord.access import REVIEWERS, in_caseload, require_role
from caserecord.audit import Actor
from caserecord.models import Booking, Visit, VisitParticipant
from caserecord.names import client_names, user_names
from caserecord.visit_status import ON_NOW
from visits.hub import Presence

PresenceOf = Callable[[int], Presence]


class LiveParticipantOut(BaseModel):
    kind: str
    name: str
    state: str
    presence: str
    device: str
    via: str


class LiveVisitOut(BaseModel):
    """A visit someone is waiting in or talking in, with who is there."""

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


def live_visits(s: Session, actor: Actor, presence_of: PresenceOf) -> list[LiveVisitOut]:
    """The team's visits that are waiting or in progress, with who is there; the read is audited."""
    require_role(actor, *REVIEWERS)
    q = in_caseload(s, actor, select(Visit).where(col(Visit.status).in_(ON_NOW)), Visit.worker_id)
    visits = list(s.exec(q.order_by(col(Visit.id))))
    if not visits:
        return []
    clients = client_names(s, {v.case_id for v in visits})
    workers = user_names(s, {v.worker_id for v in visits})
    parts: dict[int, list[VisitParticipant]] = {}
    q_parts = select(VisitParticipant).where(col(VisitParticipant.visit_id).in_([v.id for v in visits]))
    for p in s.exec(q_parts.order_by(col(VisitParticipant.id))):
        parts.setdefault(p.visit_id, []).append(p)
    booking_ids = [v.booking_id for v in visits if v.booking_id is not None]
    starts = {
        b: at
        for b, at in s.exec(select(Booking.id, Booking.start_at).where(col(Booking.id).in_(booking_ids)))
    }
    out = []
    for v in visits:
        assert v.id is not None
        presence = presence_of(v.id)
        here = parts.get(v.id, [])
        waiting = [p.joined_at for p in here if p.kind == "client" and p.state == "waiting"]
        people = [p.model_dump() | {"presence": presence.of(p.id or 0, p.state)} for p in here]
        facts = {
            "worker_name": workers.get(v.worker_id, ""),
            "client_name": clients.get(v.case_id, ""),
            "starts_at": starts.get(v.booking_id) if v.booking_id is not None else None,
            "waiting_since": min(waiting) if waiting else None,
            "worker_present": any(p.kind == "worker" and (p.id or 0) in presence.connected for p in here),
            "recording": bool(v.recording),
            "participants": people,
        }
        out.append(LiveVisitOut.model_validate(v.model_dump() | facts))
        audit.record(s, actor, "visit.live.read", "visit", v.id, case_id=v.case_id)
    return out
