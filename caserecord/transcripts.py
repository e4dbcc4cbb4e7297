"""Transcript segments in the case record: stored as they are transcribed, read in one timeline."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from caserecord import audit
from caserecord.access import require_case
from caserecord.audit import Actor
from caserecord.errors import NotFound
from caserecord.models import TranscriptSegment, Visit, VisitParticipant


def add_segment(
    s: Session,
    visit_id: int,
    speaker: str,
    start: float,
    end: float,
    text: str,
    words: Sequence[tuple[float, float, str, float]],
) -> TranscriptSegment | None:
    """Store one segment; the same (visit, speaker, start) twice is stored once (returns None)."""
    _, _, pid = speaker.partition(":")
    if not pid.isdigit():
        raise ValueError(f"speaker label {speaker!r} is not 'kind:participant_id'")
    row = TranscriptSegment(
        visit_id=visit_id,
        participant_id=int(pid),
        speaker=speaker,
        start_ms=round(start * 1000),
        end_ms=round(end * 1000),
        text=text.strip(),
        words=json.dumps([[round(a, 3), round(b, 3), w, round(p, 3)] for a, b, w, p in words]),
    )
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:
        return None  # already stored: re-transcription after a restart files nothing twice
    return row


def segments(s: Session, visit_id: int) -> list[tuple[TranscriptSegment, VisitParticipant | None]]:
    """Return a visit's segments in time order, with who spoke each."""
    rows = list(
        s.exec(
            select(TranscriptSegment)
            .where(TranscriptSegment.visit_id == visit_id)
            .order_by(col(TranscriptSegment.start_ms), col(TranscriptSegment.id))
        )
    )
    people = {p.id: p for p in s.exec(select(VisitParticipant).where(VisitParticipant.visit_id == visit_id))}
    return [(r, people.get(r.participant_id)) for r in rows]


def read_transcript(
    s: Session, actor: Actor, visit_id: int
) -> list[tuple[TranscriptSegment, VisitParticipant | None]]:
    """Return a visit's transcript if it is in `actor`'s caseload; the read is audited."""
    visit = s.get(Visit, visit_id)
    if visit is None:
        raise NotFound(f"no visit {visit_id}")
    require_case(s, actor, visit.case_id)
    audit.record(s, actor, "transcript.read", "visit", visit_id, case_id=visit.case_id)
    return segments(s, visit_id)
