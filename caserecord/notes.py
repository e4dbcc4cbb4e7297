"""Visit notes in the case record: filed once per visit, edited while a draft, signed, reviewed."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from caserecord import audit
from caserecord.access import REVIEWERS, in_caseload, require_case, require_role, sees
from caserecord.audit import Actor
from caserecord.errors import Conflict, Forbidden, Invalid, NotFound
from caserecord.models import Note, NoteAddendum, NoteRevision, RiskAlert, TranscriptSegment, Visit
from caserecord.note_body import NoteBody, NoteEdit, QuoteBody, RiskFlagBody
from caserecord.visit_status import ENDED

MAX_ADDENDUM = 20_000


def body_of(note: Note) -> NoteBody:
    """Return the note's body, typed."""
    return NoteBody.read(note.body)


def _store(body: NoteBody) -> str:
    return body.model_dump_json()


def file_note(s: Session, visit_id: int, drafter: str, body: NoteBody, now: datetime) -> Note | None:
    """File the drafted note of a visit; a visit gets one note, so a second filing returns None."""
    visit = s.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    text = _store(body)
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
    assert note.id is not None
    with_live = _apply_live_flags(s, note, body)
    if with_live is not body:
        note.body = _store(with_live)
        s.add(note)
    s.add(
        NoteRevision(
            note_id=note.id, version=1, body=note.body, author_id=None, sections="[]", created_at=now
        )
    )
    audit.record(s, Actor.system(), "note.draft", "note", note.id, case_id=visit.case_id, visit_id=visit_id)
    return note


def visits_without_note(s: Session) -> list[int]:
    """Return ended visits that have no note yet (to draft after a restart)."""
    q = (
        select(Visit.id)
        .where(Visit.status == ENDED, col(Visit.id).not_in(select(Note.visit_id)))
        .order_by(col(Visit.id))
    )
    return [i for i in s.exec(q) if i is not None]


def get_note(s: Session, note_id: int) -> Note:
    """Return a note by id (no access check: for reading back what the caller just changed)."""
    note = s.get(Note, note_id)
    if note is None:
        raise NotFound(f"no note {note_id}")
    return note


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


def _note_in_caseload(s: Session, actor: Actor, note_id: int) -> Note:
    """Return note `note_id` if it is in `actor`'s caseload, or raise."""
    note = get_note(s, note_id)
    require_case(s, actor, note.case_id)
    return note


def _own_note(s: Session, actor: Actor, note_id: int) -> Note:
    note = _note_in_caseload(s, actor, note_id)
    if actor.user_id != note.worker_id and actor.role != "admin":
        raise Forbidden("only the visit's worker edits and signs its note")
    return note


def update_note(s: Session, actor: Actor, note_id: int, edit: NoteEdit, version: int, now: datetime) -> Note:
    """Change a draft's sections; `version` must be the one the editor saw (no silent overwrite)."""
    note = _own_note(s, actor, note_id)
    if note.status not in ("draft", "returned"):
        raise Conflict(f"note {note_id} is {note.status}; add an addendum instead")
    if version != note.version:
        raise Conflict(f"note {note_id} changed since you opened it (version {note.version}); reload it")
    body = body_of(note)
    before = _confirmed(body)
    body = edit.apply(body)
    note.body = _store(body)
    note.version += 1
    note.updated_at = now
    s.add(note)
    s.add(
        NoteRevision(
            note_id=note_id,
            version=note.version,
            body=note.body,
            author_id=actor.user_id,
            sections=json.dumps(edit.sections()),
            created_at=now,
        )
    )
    audit.record(s, actor, "note.edit", "note", note_id, case_id=note.case_id, sections=edit.sections())
    _sync_alerts(s, actor, note, before, _confirmed(body), now)
    return note


FlagKey = tuple[str, int]


def _confirmed(body: NoteBody) -> dict[FlagKey, RiskFlagBody]:
    """The confirmed flags of a body, by (category, moment in ms)."""
    return {(flag.category, flag.at_ms): flag for flag in body.confirmed_flags()}


def _sync_alerts(
    s: Session,
    actor: Actor,
    note: Note,
    before: dict[FlagKey, RiskFlagBody],
    after: dict[FlagKey, RiskFlagBody],
    now: datetime,
) -> None:
    """Raise an alert for each newly confirmed flag; withdraw those no longer confirmed."""
    assert note.id is not None and actor.user_id is not None
    for key in after.keys() - before.keys():
        category, at_ms = key
        flag = after[key]
        alert = s.exec(
            select(RiskAlert).where(
                RiskAlert.visit_id == note.visit_id, RiskAlert.category == category, RiskAlert.at_ms == at_ms
            )
        ).first()
        if alert is None:
            alert = RiskAlert(
                visit_id=note.visit_id,
                note_id=note.id,
                case_id=note.case_id,
                worker_id=note.worker_id,
                category=category,
                label=(flag.label or category)[:100],
                quote=flag.quote.text[:2000],
                at_ms=at_ms,
                confirmed_by=actor.user_id,
                confirmed_at=now,
            )
        else:  # confirmed again after being withdrawn: a fresh alert
            alert.confirmed_by, alert.confirmed_at, alert.withdrawn_at = actor.user_id, now, None
            alert.acknowledged_by = alert.acknowledged_at = None
        s.add(alert)
        s.flush()
        audit.record(
            s, actor, "risk.confirm", "risk_alert", alert.id, case_id=note.case_id, category=category
        )
    for key in before.keys() - after.keys():
        category, at_ms = key
        alert = s.exec(
            select(RiskAlert).where(
                RiskAlert.visit_id == note.visit_id, RiskAlert.category == category, RiskAlert.at_ms == at_ms
            )
        ).first()
        if alert is not None and alert.withdrawn_at is None:
            alert.withdrawn_at = now
            s.add(alert)
            audit.record(
                s, actor, "risk.withdraw", "risk_alert", alert.id, case_id=note.case_id, category=category
            )


def confirm_live_flag(
    s: Session, actor: Actor, visit_id: int, category: str, label: str, quote: str, at_ms: int, now: datetime
) -> RiskAlert:
    """The worker confirms, during the visit, a risk heard in what was just said.

    The flag must rest on a stored transcript segment said at `at_ms` that holds `quote`; the note
    drafted at the end carries it as confirmed.
    """
    visit = s.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    require_case(s, actor, visit.case_id)
    if actor.role != "admin" and actor.user_id != visit.worker_id:
        raise Forbidden("only the visit's worker confirms its risk flags")
    said = s.exec(
        select(TranscriptSegment).where(
            TranscriptSegment.visit_id == visit_id, TranscriptSegment.start_ms == at_ms
        )
    ).all()
    if not any(quote.strip() and quote.strip() in seg.text for seg in said):
        raise Invalid("a risk flag rests on words said in the visit; none were said at that moment")
    existing = s.exec(
        select(RiskAlert).where(
            RiskAlert.visit_id == visit_id, RiskAlert.category == category, RiskAlert.at_ms == at_ms
        )
    ).first()
    if existing is not None and existing.withdrawn_at is None:
        return existing  # confirmed twice (a double click): one alert
    assert actor.user_id is not None
    alert = existing or RiskAlert(
        visit_id=visit_id,
        case_id=visit.case_id,
        worker_id=visit.worker_id,
        category=category,
        label=label[:100],
        quote=quote.strip()[:2000],
        at_ms=at_ms,
        confirmed_by=actor.user_id,
        confirmed_at=now,
    )
    alert.confirmed_by, alert.confirmed_at, alert.withdrawn_at = actor.user_id, now, None
    s.add(alert)
    s.flush()
    audit.record(
        s, actor, "risk.confirm", "risk_alert", alert.id, case_id=visit.case_id, category=category, live=True
    )
    return alert


LIVE_MATCH_MS = 15_000  # a drafted flag this close to a live-confirmed one, same category, is the same


def _apply_live_flags(s: Session, note: Note, body: NoteBody) -> NoteBody:
    """Mark the drafted flags the worker already confirmed during the visit; add those not drafted."""
    alerts = s.exec(
        select(RiskAlert).where(
            RiskAlert.visit_id == note.visit_id,
            col(RiskAlert.note_id).is_(None),
            col(RiskAlert.withdrawn_at).is_(None),
        )
    ).all()
    if not alerts:
        return body
    flags = list(body.risk_flags)
    for alert in alerts:
        at = next(
            (
                i
                for i, f in enumerate(flags)
                if f.category == alert.category and abs(f.at_ms - alert.at_ms) <= LIVE_MATCH_MS
            ),
            None,
        )
        if at is None:
            flags.append(
                RiskFlagBody(
                    category=alert.category,
                    label=alert.label,
                    quote=QuoteBody(text=alert.quote, start=alert.at_ms / 1000),
                )
            )
            at = len(flags) - 1
        flags[at] = flags[at].model_copy(update={"status": "confirmed"})
        # The alert now follows the note's flag, so un-confirming it in the note withdraws the alert.
        alert.at_ms = flags[at].at_ms
        alert.note_id = note.id
        s.add(alert)
    return body.model_copy(update={"risk_flags": flags})


def risk_alerts(s: Session, actor: Actor, *, open_only: bool = True, limit: int = 200) -> list[RiskAlert]:
    """Return the confirmed risk alerts of `actor`'s team, newest first; the read is audited."""
    require_role(actor, *REVIEWERS)
    q = select(RiskAlert).where(col(RiskAlert.withdrawn_at).is_(None))
    if open_only:
        q = q.where(col(RiskAlert.acknowledged_at).is_(None))
    q = in_caseload(s, actor, q, RiskAlert.worker_id)
    alerts = list(
        s.exec(q.order_by(col(RiskAlert.confirmed_at).desc(), col(RiskAlert.id).desc()).limit(limit))
    )
    for case_id in sorted({a.case_id for a in alerts}):
        audit.record(s, actor, "risk.read", "case", case_id, case_id=case_id)
    return alerts


def acknowledge_alert(s: Session, actor: Actor, alert_id: int, now: datetime) -> RiskAlert:
    """A supervisor (or admin) marks a risk alert as seen and acted on."""
    require_role(actor, *REVIEWERS)
    alert = s.get(RiskAlert, alert_id)
    if alert is None:
        raise NotFound(f"no risk alert {alert_id}")
    if not sees(s, actor, alert.worker_id):
        raise Forbidden(f"risk alert {alert_id} is not from your team")
    if alert.withdrawn_at is not None:
        raise Conflict(f"risk alert {alert_id} was withdrawn by the worker")
    if alert.acknowledged_at is None:
        alert.acknowledged_by, alert.acknowledged_at = actor.user_id, now
        s.add(alert)
        audit.record(s, actor, "risk.acknowledge", "risk_alert", alert_id, case_id=alert.case_id)
    return alert


def add_addendum(s: Session, actor: Actor, note_id: int, text: str, now: datetime) -> NoteAddendum:
    """Extend a signed note; the signed text itself stays as it was."""
    note = _note_in_caseload(s, actor, note_id)
    if actor.role == "worker" and actor.user_id != note.worker_id:
        raise Forbidden("only the visit's worker, a supervisor or an admin adds to its note")
    if note.status not in ("signed", "approved"):
        raise Conflict(f"note {note_id} is {note.status}: edit the draft instead of adding an addendum")
    text = text.strip()
    if not 1 <= len(text) <= MAX_ADDENDUM:
        raise Invalid(f"an addendum holds 1 to {MAX_ADDENDUM} characters")
    assert actor.user_id is not None
    addendum = NoteAddendum(note_id=note_id, author_id=actor.user_id, text=text, created_at=now)
    s.add(addendum)
    note.updated_at = now
    s.add(note)
    s.flush()
    audit.record(s, actor, "note.addendum", "note", note_id, case_id=note.case_id, addendum=addendum.id)
    return addendum


def addenda(s: Session, note_id: int) -> list[NoteAddendum]:
    """A note's addenda, oldest first (the caller has checked access)."""
    q = select(NoteAddendum).where(NoteAddendum.note_id == note_id).order_by(col(NoteAddendum.id))
    return list(s.exec(q))


def revisions(s: Session, note_id: int) -> list[NoteRevision]:
    """Every saved version of a note's body, oldest first (the caller has checked access)."""
    q = select(NoteRevision).where(NoteRevision.note_id == note_id).order_by(col(NoteRevision.version))
    return list(s.exec(q))


NOTE_STATUSES = ("draft", "signed", "approved", "returned")


def list_notes(
    s: Session, actor: Actor, statuses: tuple[str, ...] = NOTE_STATUSES, limit: int = 100
) -> list[Note]:
    """Return the notes in `actor`'s caseload with one of `statuses`, newest first; audited per case."""
    q = select(Note).where(col(Note.status).in_(statuses)).order_by(col(Note.id).desc()).limit(limit)
    q = in_caseload(s, actor, q, Note.worker_id)
    found = list(s.exec(q))
    for case_id in sorted({n.case_id for n in found}):
        audit.record(s, actor, "note.list", "case", case_id, case_id=case_id)
    return found


def read_note_by_id(s: Session, actor: Actor, note_id: int) -> Note:
    """Return note `note_id` if it is in `actor`'s caseload; the read is audited."""
    note = _note_in_caseload(s, actor, note_id)
    audit.record(s, actor, "note.read", "note", note.id, case_id=note.case_id)
    return note


def record_follow_up(s: Session, actor: Actor, note_id: int, booking_id: int, now: datetime) -> Note:
    """Remember on the note the booking made from its suggested follow-up."""
    note = s.get(Note, note_id)
    if note is None:
        raise NotFound(f"no note {note_id}")
    note.follow_up_booking_id = booking_id
    note.updated_at = now
    s.add(note)
    audit.record(s, actor, "note.follow_up", "note", note_id, case_id=note.case_id, booking=booking_id)
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
    require_role(actor, *REVIEWERS)
    note = get_note(s, note_id)
    if not sees(s, actor, note.worker_id):
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
