"""Visit notes in the case record: filed once per visit, edited while a draft, signed, reviewed."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from caserecord import audit
from caserecord.access import require_case, require_role, visible_worker_ids
from caserecord.audit import Actor
from caserecord.errors import Conflict, Forbidden, Invalid, NotFound
from caserecord.models import Note, Visit

EDITABLE = ("summary", "observations", "analysis", "action_items", "risk_flags", "follow_up", "client_words")


def file_note(s: Session, visit_id: int, drafter: str, draft: dict[str, Any], now: datetime) -> Note | None:
    """File the drafted note of a visit; a visit gets one note, so a second filing returns None."""
    visit = s.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    text = json.dumps(draft, sort_keys=True)
    note = Note(
        visit_id=visit_id,
        case_id=visit.case_id,
        worker_id=visit.worker_id,
        drafter=drafter[:80],
        draft=text,
        body=text,
        created_at=now,
        updated_at=now,
    )
    try:
        with s.begin_nested():
            s.add(note)
            s.flush()
    except IntegrityError:
        return None
    audit.record(s, Actor.system(), "note.draft", "note", note.id, case_id=visit.case_id, visit_id=visit_id)
    return note


def visits_without_note(s: Session) -> list[int]:
    """Return ended visits that have no note yet (to draft after a restart)."""
    q = (
        select(Visit.id)
        .where(Visit.status == "ended", col(Visit.id).not_in(select(Note.visit_id)))
        .order_by(col(Visit.id))
    )
    return [i for i in s.exec(q) if i is not None]


def read_note(s: Session, actor: Actor, visit_id: int) -> Note:
    """Return a visit's note if it is in `actor`'s caseload; the read is audited."""
    note = s.exec(select(Note).where(Note.visit_id == visit_id)).first()
    if note is None:
        visit = s.get(Visit, visit_id)
        if visit is not None:
            require_case(s, actor, visit.case_id)
        raise NotFound(f"visit {visit_id} has no note yet")
    require_case(s, actor, note.case_id)
    audit.record(s, actor, "note.read", "note", note.id, case_id=note.case_id)
    return note


def _own_note(s: Session, actor: Actor, note_id: int) -> Note:
    note = s.get(Note, note_id)
    if note is None:
        raise NotFound(f"no note {note_id}")
    require_case(s, actor, note.case_id)
    if actor.user_id != note.worker_id and actor.role != "admin":
        raise Forbidden("only the visit's worker edits and signs its note")
    return note


def update_note(
    s: Session, actor: Actor, note_id: int, changes: dict[str, Any], version: int, now: datetime
) -> Note:
    """Change a draft's sections; `version` must be the one the editor saw (no silent overwrite)."""
    note = _own_note(s, actor, note_id)
    if note.status not in ("draft", "returned"):
        raise Conflict(f"note {note_id} is {note.status}; add an addendum instead")
    if version != note.version:
        raise Conflict(f"note {note_id} changed since you opened it (version {note.version}); reload it")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise Invalid(f"these sections cannot be edited: {', '.join(unknown)}")
    body = json.loads(note.body)
    body.update(changes)
    note.body = json.dumps(body, sort_keys=True)
    note.version += 1
    note.updated_at = now
    s.add(note)
    audit.record(s, actor, "note.edit", "note", note_id, case_id=note.case_id, sections=sorted(changes))
    return note


def sign_note(s: Session, actor: Actor, note_id: int, now: datetime) -> Note:
    """Sign a draft: from now on it is never edited in place."""
    note = _own_note(s, actor, note_id)
    if note.status not in ("draft", "returned"):
        raise Conflict(f"note {note_id} is already {note.status}")
    note.status = "signed"
    note.signed_by = actor.user_id
    note.signed_at = now
    note.updated_at = now
    s.add(note)
    audit.record(s, actor, "note.sign", "note", note_id, case_id=note.case_id)
    return note


def review_note(s: Session, actor: Actor, note_id: int, approve: bool, comment: str, now: datetime) -> Note:
    """A supervisor (or admin) approves a signed note, or returns it to the worker with a comment."""
    require_role(actor, "supervisor", "admin")
    note = s.get(Note, note_id)
    if note is None:
        raise NotFound(f"no note {note_id}")
    ids = visible_worker_ids(s, actor)
    if ids is not None and note.worker_id not in ids:
        raise Forbidden(f"note {note_id} is not from your team")
    if note.status != "signed":
        raise Conflict(f"note {note_id} is {note.status}; only signed notes are reviewed")
    if not approve and not comment.strip():
        raise Invalid("say what to change when returning a note")
    note.status = "approved" if approve else "returned"
    note.reviewed_by = actor.user_id
    note.reviewed_at = now
    note.review_comment = comment.strip()[:2000] or None
    note.updated_at = now
    s.add(note)
    audit.record(
        s, actor, "note.approve" if approve else "note.return", "note", note_id, case_id=note.case_id
    )
    return note


def audio_due(s: Session, now: datetime, keep: timedelta) -> list[Note]:
    """Return signed notes whose visit audio is still kept and may now be deleted."""
    q = select(Note).where(
        col(Note.status).in_(("signed", "approved", "returned")),
        col(Note.audio_deleted_at).is_(None),
        col(Note.signed_at).is_not(None),
    )
    return [n for n in s.exec(q) if n.signed_at is not None and n.signed_at + keep <= now]


def record_audio_deleted(s: Session, note_id: int, files: list[str], now: datetime) -> None:
    """Write down on the note which audio files were deleted, and when."""
    note = s.get(Note, note_id)
    if note is None:
        return
    note.audio_deleted_at = now
    note.audio_deleted = json.dumps(sorted(files))
    s.add(note)
    audit.record(s, Actor.system(), "audio.delete", "note", note_id, case_id=note.case_id, files=len(files))
