"""The draft visit note as a value: header, summary, the client's own words, actions, follow-up, flags.

What a drafter returns (:mod:`transcription.drafter` writes it offline and deterministically,
:mod:`transcription.llm` with a model); `DraftNote.to_body` turns it into the case record's
typed note body. Everything in it is marked generated; risk flags stay suggestions until a
person confirms them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from caserecord.note_body import (
    ActionItemBody,
    FlagStatus,
    FollowUpBody,
    HeaderBody,
    NoteBody,
    QuoteBody,
    RiskFlagBody,
    SummaryBody,
)
from transcription.results import Segment
from transcription.risk import RISK_LABELS, RiskCategory

__all__ = [
    "DRAFTER_NAME",
    "DRAFTER_VERSION",
    "ActionItem",
    "DraftNote",
    "Drafter",
    "FollowUp",
    "NoteHeader",
    "Quote",
    "RiskFlag",
    "VisitContext",
]

DRAFTER_NAME = "lastmile-extractive"
DRAFTER_VERSION = "1"
CONTACT_TYPE = "virtual visit"


@dataclass(frozen=True, slots=True)
class VisitContext:
    """What the note needs to know about the visit besides the transcript."""

    visit_start: datetime
    timezone: str
    worker_name: str
    client_name: str
    duration: timedelta
    # The client agreed to recording; without it there is no transcript and the note says so.
    consent: bool
    present: tuple[str, ...] = ()
    contact_type: str = CONTACT_TYPE

    def __post_init__(self) -> None:
        if self.visit_start.tzinfo is None:
            raise ValueError("visit_start must be timezone-aware")
        ZoneInfo(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def name_of(self, role: str) -> str:
        return self.worker_name if role == "worker" else self.client_name if role == "client" else role


@dataclass(frozen=True, slots=True)
class Quote:
    """Words said verbatim by one speaker, at `start`..`end` seconds into the visit."""

    speaker: str
    role: str
    name: str
    start: float
    end: float
    text: str

    def to_body(self) -> QuoteBody:
        return QuoteBody(
            speaker=self.speaker,
            role=self.role,
            name=self.name,
            start=round(self.start, 2),
            end=round(self.end, 2),
            text=self.text,
        )


@dataclass(frozen=True, slots=True)
class NoteHeader:
    """Date, time, length, who was there, what kind of contact, and whether it was recorded."""

    date: date
    local_time: str
    timezone: str
    start: datetime
    duration_seconds: int
    present: tuple[str, ...]
    contact_type: str
    consent: bool
    recording: str

    def to_body(self) -> HeaderBody:
        minutes, seconds = divmod(self.duration_seconds, 60)
        return HeaderBody(
            date=self.date.isoformat(),
            local_time=self.local_time,
            timezone=self.timezone,
            start=self.start.isoformat(),
            duration_seconds=self.duration_seconds,
            duration=f"{minutes} min {seconds:02d} s",
            present=list(self.present),
            contact_type=self.contact_type,
            consent=self.consent,
            recording=self.recording,
        )


def _when_to_json(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class ActionItem:
    """Something someone said they would do, or was asked to do, with its due date if one was said."""

    owner: str
    owner_name: str
    what: str
    due: date | datetime | None
    due_text: str | None
    quote: Quote

    def to_body(self) -> ActionItemBody:
        return ActionItemBody(
            owner=self.owner,
            owner_name=self.owner_name,
            what=self.what,
            due=_when_to_json(self.due),
            due_text=self.due_text,
            quote=self.quote.to_body(),
        )


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The next meeting as it was mentioned; the web layer snaps `start` to a real slot."""

    start: date | datetime
    when_text: str
    quote: Quote

    def to_body(self) -> FollowUpBody:
        return FollowUpBody(
            start=self.start.isoformat(), when_text=self.when_text, quote=self.quote.to_body()
        )


@dataclass(frozen=True, slots=True)
class RiskFlag:
    """A suggested risk, with the sentence that raised it; `status` stays "suggested" until confirmed."""

    category: RiskCategory
    trigger: str
    quote: Quote
    status: FlagStatus = "suggested"

    @property
    def label(self) -> str:
        return RISK_LABELS[self.category]

    def to_body(self) -> RiskFlagBody:
        return RiskFlagBody(
            category=self.category.value,
            label=self.label,
            trigger=self.trigger,
            status=self.status,
            quote=self.quote.to_body(),
        )


@dataclass(frozen=True, slots=True)
class DraftNote:
    """A generated draft of a visit note, to be corrected and signed by the worker."""

    header: NoteHeader
    summary: tuple[Quote, ...]
    client_words: tuple[Quote, ...]
    action_items: tuple[ActionItem, ...]
    follow_up: FollowUp | None
    risk_flags: tuple[RiskFlag, ...]
    transcript: tuple[Quote, ...]
    remarks: tuple[str, ...] = ()
    drafter: str = DRAFTER_NAME
    drafter_version: str = DRAFTER_VERSION
    # Free text written by a model rather than picked from the transcript (the optional LLM drafter).
    summary_text: str | None = None
    generated: bool = field(default=True, init=False)

    def to_body(self) -> NoteBody:
        """Return the note as the case record stores it."""
        return NoteBody(
            generated=self.generated,
            drafter=self.drafter,
            drafter_version=self.drafter_version,
            header=self.header.to_body(),
            summary=SummaryBody(
                generated=True, text=self.summary_text, sentences=[q.to_body() for q in self.summary]
            ),
            client_words=[q.to_body() for q in self.client_words],
            action_items=[a.to_body() for a in self.action_items],
            follow_up=None if self.follow_up is None else self.follow_up.to_body(),
            risk_flags=[f.to_body() for f in self.risk_flags],
            remarks=list(self.remarks),
            transcript=[q.to_body() for q in self.transcript],
        )


class Drafter(Protocol):
    """Turns a visit's context and transcript into a draft note."""

    name: str

    async def draft(self, context: VisitContext, segments: Sequence[Segment]) -> DraftNote: ...
