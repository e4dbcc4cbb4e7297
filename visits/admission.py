"""How a client gets into a visit: the join link, the kiosk code, a walk-in queue, the socket's hello.

A client is never signed in: the join token, the kiosk code or the worker's walk-in link leads them
in, and their participant token (of which only a hash is stored) carries them from then on.
Functions take an open session; the caller runs them off the event loop.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlmodel import Session, select

from caserecord import audit
from caserecord.audit import Actor
from caserecord.cases import create_case
from caserecord.errors import Conflict, Forbidden, Invalid, NotFound
from caserecord.models import Booking, Case, Client, User, Visit, VisitParticipant
from caserecord.visit_status import (
    CANCELLED,
    OVER,
    SCHEDULED,
    WAITING,
    move,
)
from scheduler import walk_ins

JoinState = Literal["open", "early", "expired", "cancelled", "ended"]


DEVICES = ("phone", "tablet", "computer", "kiosk", "unknown")


def token_digest(token: str) -> str:
    """Return the hash under which a participant token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class JoinInfo:
    """What a client's join page needs to know, and nothing about the case."""

    visit_id: int
    state: JoinState
    status: str
    worker_name: str
    worker_timezone: str
    starts_at: datetime | None
    ends_at: datetime | None
    opens_at: datetime
    expires_at: datetime
    client_first_name: str


def _join_state(visit: Visit, now: datetime) -> JoinState:
    if visit.status == CANCELLED:
        return "cancelled"
    if visit.status in OVER:
        return "ended"
    if now < visit.join_opens_at:
        return "early"
    if now > visit.join_expires_at:
        return "expired"
    return "open"


def join_info(s: Session, token: str, now: datetime) -> JoinInfo:
    """Return the join page's facts for a client's secret link, or raise NotFound."""
    visit = s.exec(select(Visit).where(Visit.join_token == token)).first() if 20 <= len(token) <= 64 else None
    if visit is None or visit.id is None:
        raise NotFound("this visit link is not valid")
    return _info(s, visit, now)


def _info(s: Session, visit: Visit, now: datetime) -> JoinInfo:
    assert visit.id is not None
    worker = s.get(User, visit.worker_id)
    booking = s.get(Booking, visit.booking_id) if visit.booking_id is not None else None
    case = s.get(Case, visit.case_id)
    client = s.get(Client, case.client_id) if case is not None else None
    assert worker is not None
    return JoinInfo(
        visit_id=visit.id,
        state=_join_state(visit, now),
        status=visit.status,
        worker_name=worker.name,
        worker_timezone=worker.timezone,
        starts_at=booking.start_at if booking is not None else None,
        ends_at=booking.end_at if booking is not None else None,
        opens_at=visit.join_opens_at,
        expires_at=visit.join_expires_at,
        client_first_name=(client.name.split()[0] if client is not None and client.name else ""),
    )


def kiosk_lookup(s: Session, code: str, now: datetime) -> tuple[str, JoinInfo]:
    """Return the join token and facts for a kiosk code, or raise NotFound."""
    if not (code.isdigit() and len(code) == 6):
        raise Invalid("a kiosk code is six digits")
    visit = s.exec(select(Visit).where(Visit.kiosk_code == code)).first()
    if visit is None:
        raise NotFound("no visit has that code; check the number on your invitation")
    audit.record(s, Actor(None, "kiosk"), "visit.kiosk_lookup", "visit", visit.id, case_id=visit.case_id)
    return visit.join_token, _info(s, visit, now)


def check_in(
    s: Session,
    join_token: str,
    *,
    device: str,
    consent: bool,
    now: datetime,
    ip: str | None,
    participant_token: str | None = None,
) -> tuple[VisitParticipant, str, Visit]:
    """Check a client in to the waiting room; a known participant token rejoins instead.

    Returns the participant, its secret token (new or the same) and the visit.
    """
    info = join_info(s, join_token, now)
    if info.state != "open":
        raise Conflict(f"this visit is {info.state}; it cannot be joined now")
    visit = s.get(Visit, info.visit_id)
    assert visit is not None and visit.id is not None
    if participant_token:
        existing = s.exec(
            select(VisitParticipant).where(VisitParticipant.token_hash == token_digest(participant_token))
        ).first()
        if existing is not None and existing.visit_id == visit.id and existing.state != "left":
            audit.record(
                s,
                Actor(None, "client", ip),
                "visit.rejoin",
                "visit",
                visit.id,
                case_id=visit.case_id,
                participant_id=existing.id,
            )
            return existing, participant_token, visit
    case = s.get(Case, visit.case_id)
    client = s.get(Client, case.client_id) if case is not None else None
    name = client.name if client is not None else "Client"
    part, token = _new_client(s, visit, name, device=device, consent=consent, now=now, ip=ip)
    return part, token, visit


def _new_client(
    s: Session,
    visit: Visit,
    name: str,
    *,
    device: str,
    consent: bool,
    now: datetime,
    ip: str | None,
    action: str = "visit.check_in",
) -> tuple[VisitParticipant, str]:
    """Put a client in the visit's waiting room; their consent decides whether the visit is recorded.

    Returns the participant and its secret token (only its hash is stored). The arrival is audited
    as `action` (a check-in, or a walk-in).
    """
    assert visit.id is not None
    token = secrets.token_urlsafe(32)
    part = VisitParticipant(
        visit_id=visit.id,
        kind="client",
        name=name,
        via="kiosk" if device == "kiosk" else "link",  # a kiosk, or the client's own link
        device=device if device in DEVICES else "unknown",
        token_hash=token_digest(token),
        consent=consent,
        state="waiting",
        joined_at=now,
    )
    s.add(part)
    # One client who declines is enough: nobody's audio goes to the server.
    visit.recording = consent if visit.recording is None else (visit.recording and consent)
    if visit.status == SCHEDULED:
        move(visit, WAITING)
    s.add(visit)
    s.flush()
    audit.record(
        s,
        Actor(None, "client", ip),
        action,
        "visit",
        visit.id,
        case_id=visit.case_id,
        participant_id=part.id,
        consent=consent,
        via=part.via,
        device=part.device,
    )
    return part, token


def participant_by_token(s: Session, visit_id: int, token: str) -> VisitParticipant:
    """Return the client participant behind `token` in `visit_id`, or raise Forbidden."""
    part = s.exec(select(VisitParticipant).where(VisitParticipant.token_hash == token_digest(token))).first()
    if part is None or part.visit_id != visit_id or part.state == "left":
        raise Forbidden("you are not a participant of this visit")
    return part


def walk_in(
    s: Session,
    worker: User,
    now: datetime,
    *,
    name: str,
    phone: str | None,
    consent: bool,
    device: str,
    ip: str | None,
    grace: timedelta,
) -> tuple[VisitParticipant, str, Visit]:
    """Put a walk-in client in the worker's queue while it is open: a new client and case, and a
    visit they wait in; raise Conflict when the worker's walk-in hours are closed.

    The worker links the visit to the client's existing case later if there is one.
    """
    assert worker.id is not None
    window = walk_ins.walk_in_window(s, worker.id, now)
    if window is None:
        raise Conflict(f"{worker.name}'s walk-in hours are closed now")
    name = " ".join(name.split())
    if not 1 <= len(name) <= 100:
        raise Invalid("tell us your name (up to 100 characters)")
    # Cases are opened on the worker's behalf; the audit log names the walk-in as the source.
    case, client = create_case(
        s, Actor(worker.id, "worker", ip), worker_id=worker.id, client_name=name, phone=phone, title="Walk-in"
    )
    assert case.id is not None
    visit = Visit(
        case_id=case.id,
        worker_id=worker.id,
        status=SCHEDULED,
        join_token=secrets.token_urlsafe(32),
        join_opens_at=now,
        join_expires_at=window[1] + grace,
        created_at=now,
    )
    s.add(visit)
    s.flush()
    part, token = _new_client(
        s, visit, client.name, device=device, consent=consent, now=now, ip=ip, action="visit.walk_in"
    )
    return part, token, visit


def hello(s: Session, visit_id: int, token: str) -> tuple[VisitParticipant, Visit]:
    """Return the client behind the token a visit's socket was greeted with, and the visit."""
    part = participant_by_token(s, visit_id, token[:200])
    visit = s.get(Visit, visit_id)
    assert visit is not None
    return part, visit
