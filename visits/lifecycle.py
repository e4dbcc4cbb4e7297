"""The visit lifecycle in the case record once a client is in: staff join, admit, talk, end.

Statuses move through :mod:`caserecord.visit_status`; how clients get in is
:mod:`visits.admission`. Every change is an audit event. Functions take an open session; the
caller runs them off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from caserecord import audit
from caserecord.access import require_case, require_writable
from caserecord.audit import Actor
from caserecord.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from caserecord.models import Booking, Case, Client, Note, User, Visit, VisitMessage, VisitParticipant
from caserecord.visit_status import (
    ENDED,
    IN_PROGRESS,
    LIVE,
    ON_NOW,
    move,
)
from visits.admission import hello


def staff_participant(
    s: Session, actor: Actor, visit_id: int, now: datetime
) -> tuple[VisitParticipant, Visit]:
    """Return (creating it once) the worker's participant row; supervisors and admins may watch."""
    visit = s.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    require_case(s, actor, visit.case_id)
    user = s.get(User, actor.user_id) if actor.user_id is not None else None
    assert user is not None and user.id is not None
    part = s.exec(
        select(VisitParticipant).where(
            VisitParticipant.visit_id == visit_id, VisitParticipant.user_id == user.id
        )
    ).first()
    if part is None:
        part = VisitParticipant(
            visit_id=visit_id,
            kind="worker",
            user_id=user.id,
            name=user.name,
            via="staff",
            device="computer",
            consent=True,
            state="admitted",
            joined_at=now,
            admitted_at=now,
        )
        s.add(part)
        s.flush()
    elif part.state == "left":
        part.state = "admitted"
        part.left_at = None
        s.add(part)
    audit.record(s, actor, "visit.open", "visit", visit_id, case_id=visit.case_id)
    return part, visit


def admit(
    s: Session, actor: Actor, visit_id: int, participant_id: int, now: datetime
) -> tuple[Visit, VisitParticipant]:
    """Admit a waiting client; the visit is then in progress."""
    visit = require_writable(s, actor, Visit, visit_id)
    if visit.status not in ON_NOW:
        raise Conflict(f"visit {visit_id} is {visit.status}")
    part = s.get(VisitParticipant, participant_id)
    if part is None or part.visit_id != visit_id or part.kind != "client":
        raise NotFound(f"no waiting client {participant_id} in visit {visit_id}")
    if part.state != "waiting":
        raise Conflict(f"participant {participant_id} is {part.state}")
    part.state = "admitted"
    part.admitted_at = now
    s.add(part)
    if visit.status != IN_PROGRESS:
        move(visit, IN_PROGRESS)
        visit.started_at = visit.started_at or now
    s.add(visit)
    audit.record(
        s, actor, "visit.admit", "visit", visit_id, case_id=visit.case_id, participant_id=participant_id
    )
    return visit, part


def end(s: Session, actor: Actor, visit_id: int, reason: str, now: datetime, *, check: bool = True) -> Visit:
    """End a visit for everyone (the worker's button, or the system when all have left)."""
    visit = require_writable(s, actor, Visit, visit_id) if check else s.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    if visit.status not in LIVE:
        raise Conflict(f"visit {visit_id} is already {visit.status}")
    move(visit, ENDED)
    visit.ended_at = now
    visit.ended_by = actor.user_id
    visit.end_reason = reason[:200]
    visit.kiosk_code = None
    s.add(visit)
    for part in s.exec(select(VisitParticipant).where(VisitParticipant.visit_id == visit_id)):
        if part.state != "left":
            part.state = "left"
            part.left_at = now
            s.add(part)
    audit.record(s, actor, "visit.end", "visit", visit_id, case_id=visit.case_id, reason=reason)
    return visit


def leave(s: Session, participant_id: int, now: datetime) -> VisitParticipant | None:
    """Mark a participant gone (their connection did not come back)."""
    part = s.get(VisitParticipant, participant_id)
    if part is None or part.state == "left":
        return None
    part.state = "left"
    part.left_at = now
    s.add(part)
    _audit(s, Actor(part.user_id, part.kind), "visit.leave", part)
    return part


def _audit(s: Session, actor: Actor, action: str, part: VisitParticipant) -> None:
    """Audit something a participant did in their visit."""
    visit = s.get(Visit, part.visit_id)
    case_id = visit.case_id if visit is not None else None
    audit.record(s, actor, action, "visit", part.visit_id, case_id=case_id, participant_id=part.id)


def add_message(s: Session, participant_id: int, text: str, now: datetime) -> VisitMessage:
    """Store a waiting client's text message for the worker."""
    text = text.strip()
    if not text:
        raise Invalid("the message is empty")
    if len(text) > 1000:
        raise Invalid("a message has at most 1000 characters")
    part = s.get(VisitParticipant, participant_id)
    if part is None:
        raise NotFound("no such participant")
    msg = VisitMessage(visit_id=part.visit_id, participant_id=participant_id, text=text, at=now)
    s.add(msg)
    s.flush()
    _audit(s, Actor(None, part.kind), "visit.message", part)
    return msg


@dataclass(frozen=True, slots=True)
class VisitSnapshot:
    """Everything the worker's call page shows, read in one transaction."""

    visit: Visit
    client_name: str
    case_id: int
    worker_name: str
    worker_timezone: str
    starts_at: datetime | None
    ends_at: datetime | None
    participants: list[VisitParticipant]
    messages: list[VisitMessage]


def snapshot(s: Session, visit_id: int) -> VisitSnapshot:
    """Read a visit with its participants and messages (no access check: callers check)."""
    visit = s.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    case = s.get(Case, visit.case_id)
    client = s.get(Client, case.client_id) if case is not None else None
    worker = s.get(User, visit.worker_id)
    booking = s.get(Booking, visit.booking_id) if visit.booking_id is not None else None
    parts = list(
        s.exec(
            select(VisitParticipant)
            .where(VisitParticipant.visit_id == visit_id)
            .order_by(col(VisitParticipant.id))
        )
    )
    msgs = list(
        s.exec(select(VisitMessage).where(VisitMessage.visit_id == visit_id).order_by(col(VisitMessage.id)))
    )
    assert worker is not None
    return VisitSnapshot(
        visit=visit,
        client_name=client.name if client is not None else "",
        case_id=visit.case_id,
        worker_name=worker.name,
        worker_timezone=worker.timezone,
        starts_at=booking.start_at if booking is not None else None,
        ends_at=booking.end_at if booking is not None else None,
        participants=parts,
        messages=msgs,
    )


def read_visit(s: Session, actor: Actor, visit_id: int) -> VisitSnapshot:
    """Return a visit's snapshot if it is in `actor`'s caseload; the read is audited."""
    snap = snapshot(s, visit_id)
    require_case(s, actor, snap.case_id)
    audit.record(s, actor, "visit.read", "visit", visit_id, case_id=snap.case_id)
    return snap


def is_admitted(s: Session, participant_id: int) -> bool:
    """Return whether the participant has been admitted (media flows to admitted clients only)."""
    part = s.get(VisitParticipant, participant_id)
    return part is not None and part.state == "admitted"


def uplink_speaker(
    s: Session, visit_id: int, now: datetime, *, participant_token: str, actor: Actor | None
) -> tuple[VisitParticipant, Visit]:
    """Return who asks to send their microphone to the server, or raise why they may not.

    A client (by participant token) once admitted and consenting; the visit's own worker (their
    opening the visit is recorded even if the call then turns out not to be on: `check_call_on`).
    """
    if participant_token:
        part, visit = hello(s, visit_id, participant_token)
        if part.state != "admitted":
            raise Conflict("wait until the worker admits you")
        if not part.consent:
            raise Forbidden("no recording consent: no audio is sent to the server")
    elif actor is None:
        raise Unauthenticated("sign in, or send X-Participant-Token")
    else:
        part, visit = staff_participant(s, actor, visit_id, now)
        if actor.user_id != visit.worker_id:
            raise Forbidden("only the visit's worker sends audio")
    return part, visit


def check_call_on(visit: Visit) -> None:
    """Raise unless audio may go to the server now: the call is on and the client agreed to recording."""
    if visit.status != IN_PROGRESS or visit.started_at is None:
        raise Conflict(f"visit {visit.id} is {visit.status}; audio goes to the server only during the call")
    if not visit.recording:
        raise Forbidden("the client did not consent to recording: no audio is sent to the server")


def end_stale(s: Session, now: datetime) -> list[int]:
    """End visits left live past their join window (the server stopped during them)."""
    stale = s.exec(select(Visit).where(col(Visit.status).in_(ON_NOW), col(Visit.join_expires_at) < now))
    ended = []
    for visit in stale:
        assert visit.id is not None
        end(s, Actor.system(), visit.id, "ended after the server restarted", now, check=False)
        ended.append(visit.id)
    return ended


def calls_in_progress(s: Session) -> list[int]:
    """Return the visits whose call is on (admitted, not ended)."""
    q = select(Visit.id).where(Visit.status == IN_PROGRESS).order_by(col(Visit.id))
    return [i for i in s.exec(q) if i is not None]


def audio_access(s: Session, actor: Actor, visit_id: int, participant_id: int) -> bool:
    """Check the caseload for a recording and audit the listen; return whether the audio was deleted."""
    visit = s.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    require_case(s, actor, visit.case_id)
    note = s.exec(select(Note).where(Note.visit_id == visit_id)).first()
    audit.record(
        s, actor, "audio.read", "visit", visit_id, case_id=visit.case_id, participant_id=participant_id
    )
    return note is not None and note.audio_deleted_at is not None
