"""The body of a visit note as it is stored, edited and shown: one typed shape for every package.

The drafter (transcription) produces a `NoteBody`; the case record stores it as JSON and reads it
back with `NoteBody.model_validate_json`; the API and the pages show its fields; a worker's edit is
a `NoteEdit` of the sections a person may change. A quote is always words said in the visit, with
the moment (seconds from the visit's start) they were said.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

log = logging.getLogger(__name__)
FLAG_STATES = ("suggested", "confirmed", "dismissed")
FlagStatus = Literal["suggested", "confirmed", "dismissed"]
MAX_SECTION = 20_000


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must say something")
    return value


def _moment(value: str) -> str:
    """A date ("2026-03-10") or a time with its offset ("2026-03-10T10:00:00-04:00")."""
    try:
        when: date = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date (YYYY-MM-DD) or a time with its offset (ISO 8601)") from None
    if isinstance(when, datetime) and when.tzinfo is None:
        raise ValueError("a time needs its UTC offset")
    if not 2000 <= when.year <= 2100:
        raise ValueError("must be between the years 2000 and 2100")
    return value


Said = Annotated[str, StringConstraints(max_length=MAX_SECTION), AfterValidator(_not_blank)]
Moment = Annotated[str, StringConstraints(max_length=40), AfterValidator(_moment)]
Seconds = Annotated[float, Field(ge=0, lt=86_400, description="Seconds into the visit")]
Section = Annotated[str, StringConstraints(max_length=MAX_SECTION)]


class _Part(BaseModel):
    # Stored bodies are read back leniently (an older body may carry a field no longer used).
    model_config = ConfigDict(extra="ignore", frozen=True)


class QuoteBody(_Part):
    """Words said verbatim by one speaker, `start`..`end` seconds into the visit."""

    speaker: str = ""
    role: str = ""
    name: str = ""
    start: Seconds = 0.0
    end: float = 0.0
    text: Said


class HeaderBody(_Part):
    """Date, time, length, who was there, what kind of contact, and whether it was recorded."""

    date: str
    local_time: str
    timezone: str
    start: str
    duration_seconds: int
    duration: str
    present: list[str]
    contact_type: str
    consent: bool
    recording: str


class SummaryBody(_Part):
    """Sentences picked from what was said (and, from an LLM drafter, a summary in its words)."""

    generated: bool = True
    text: str | None = None
    sentences: list[QuoteBody] = []


class ActionItemBody(_Part):
    """Something someone said they would do, or was asked to do, with its due date if one was said."""

    owner: str
    owner_name: str = ""
    what: Said
    due: Moment | None = None
    due_text: str | None = None
    quote: QuoteBody | None = None


class FollowUpBody(_Part):
    """The next meeting as it was mentioned; the scheduler finds the free slot nearest to `start`."""

    start: Moment
    when_text: str = ""
    quote: QuoteBody | None = None


class RiskFlagBody(_Part):
    """A risk raised by what was said; a suggestion until a person confirms it."""

    category: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    label: str = ""
    trigger: str = ""
    status: FlagStatus = "suggested"
    quote: QuoteBody

    @property
    def at_ms(self) -> int:
        """The moment the words were said, in milliseconds (how alerts know their flag)."""
        return round(self.quote.start * 1000)


class NoteBody(_Part):
    """A whole note: what the drafter wrote and what the worker changed since."""

    generated: bool = True
    drafter: str = ""
    drafter_version: str = ""
    header: HeaderBody
    summary: SummaryBody = SummaryBody()
    client_words: list[QuoteBody] = []
    action_items: list[ActionItemBody] = []
    follow_up: FollowUpBody | None = None
    risk_flags: list[RiskFlagBody] = []
    remarks: list[str] = []
    transcript: list[QuoteBody] = []
    observations: str | None = None
    analysis: str | None = None

    @classmethod
    def read(cls, text: str) -> NoteBody:
        """Read a stored body; a section stored in a shape no longer accepted is left out, and logged.

        (Before bodies were typed, the API stored any JSON in a section; such a note must still open.)
        """
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            raw = json.loads(text)
        kept: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            if name not in raw:
                continue
            assert field.annotation is not None
            try:
                kept[name] = TypeAdapter[Any](field.annotation).validate_python(raw[name])
            except ValidationError:
                log.warning("a note section in an old shape was left out", extra={"section": name})
        return cls.model_validate(kept)

    def confirmed_flags(self) -> list[RiskFlagBody]:
        """Return the flags a person confirmed."""
        return [f for f in self.risk_flags if f.status == "confirmed"]


class NoteEdit(BaseModel):
    """The sections of a draft a worker may change; a section left out stays as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: SummaryBody | None = None
    observations: Section | None = None
    analysis: Section | None = None
    action_items: Annotated[list[ActionItemBody], Field(max_length=200)] | None = None
    risk_flags: Annotated[list[RiskFlagBody], Field(max_length=100)] | None = None
    follow_up: FollowUpBody | None = None

    @model_validator(mode="after")
    def _no_null_sections(self) -> NoteEdit:
        for name in ("summary", "action_items", "risk_flags"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; leave it out to keep it as it is")
        return self

    def sections(self) -> list[str]:
        """Return the names of the sections this edit changes, sorted."""
        return sorted(self.model_fields_set)

    def apply(self, body: NoteBody) -> NoteBody:
        """Return `body` with this edit's sections put in."""
        return body.model_copy(update={name: getattr(self, name) for name in self.model_fields_set})
