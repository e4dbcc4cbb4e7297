"""The case-record tables."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from caserecord.types import UTCDateTime, utcnow

Role = Literal["admin", "supervisor", "worker"]
ROLES: tuple[str, ...] = ("admin", "supervisor", "worker")
BOOKING_ACTIVE = "booked"
BOOKING_CANCELLED = "cancelled"


def _ts(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class User(SQLModel, table=True):
    """A staff account: admin, supervisor or worker."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=200)
    timezone: str = Field(max_length=64, default="UTC")
    supervisor_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("users.id"), nullable=True, index=True)
    )
    feed_token: str = Field(max_length=64, unique=True)
    # The secret of the worker's walk-in link (/w/<token>); made when first needed.
    walkin_token: str | None = Field(default=None, sa_column=Column(String(64), unique=True, nullable=True))
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Client(SQLModel, table=True):
    """A person the agency serves."""

    __tablename__ = "clients"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    language: str = Field(default="en", max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Case(SQLModel, table=True):
    """A client's case, assigned to one worker."""

    __tablename__ = "cases"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="clients.id", index=True)
    worker_id: int = Field(foreign_key="users.id", index=True)
    title: str = Field(default="", max_length=200)
    status: str = Field(default="open", max_length=20)
    opened_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class OfficeHourBlock(SQLModel, table=True):
    """A worker's recurring office hours, in the worker's local time."""

    __tablename__ = "office_hour_blocks"

    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(foreign_key="users.id", index=True)
    weekdays: str = Field(max_length=32)  # "TU,TH"
    start_time: time
    end_time: time
    timezone: str = Field(max_length=64)
    slot_minutes: int
    buffer_minutes: int = 0
    mode: str = Field(max_length=10)
    starts_on: date
    until: date | None = None
    min_notice_minutes: int = 0
    max_days_ahead: int = 60
    title: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    deleted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class OfficeHourException(SQLModel, table=True):
    """One local date on which a block is not held."""

    __tablename__ = "office_hour_exceptions"
    __table_args__ = (UniqueConstraint("block_id", "day", name="uq_exception_block_day"),)

    id: int | None = Field(default=None, primary_key=True)
    block_id: int = Field(foreign_key="office_hour_blocks.id", index=True)
    day: date
    reason: str = Field(default="", max_length=500)
    created_by: int = Field(foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Booking(SQLModel, table=True):
    """A case's visit in one slot of a worker's office hours.

    No two active bookings of one worker may overlap: a partial unique index on
    (worker_id, start_at) plus an overlap trigger (SQLite) or an exclusion constraint
    (PostgreSQL), both created by the migrations.
    """

    __tablename__ = "bookings"
    __table_args__ = (
        Index(
            "uq_booking_worker_start_active",
            "worker_id",
            "start_at",
            unique=True,
            sqlite_where=text("status = 'booked'"),
            postgresql_where=text("status = 'booked'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(max_length=80, unique=True)
    worker_id: int = Field(foreign_key="users.id", index=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    block_id: int = Field(foreign_key="office_hour_blocks.id", index=True)
    start_at: datetime = Field(sa_column=_ts())
    end_at: datetime = Field(sa_column=_ts())
    status: str = Field(default=BOOKING_ACTIVE, max_length=20)
    sequence: int = 0
    created_by: int = Field(foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    cancelled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    cancel_reason: str | None = Field(default=None, max_length=500)


class Visit(SQLModel, table=True):
    """A virtual visit; a booking creates one with its client's secret join token."""

    __tablename__ = "visits"

    id: int | None = Field(default=None, primary_key=True)
    booking_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("bookings.id"), unique=True, nullable=True)
    )
    case_id: int = Field(foreign_key="cases.id", index=True)
    worker_id: int = Field(foreign_key="users.id", index=True)
    status: str = Field(default="scheduled", max_length=20)
    join_token: str = Field(max_length=64, unique=True)
    join_opens_at: datetime = Field(sa_column=_ts())
    join_expires_at: datetime = Field(sa_column=_ts())
    kiosk_code: str | None = Field(default=None, sa_column=Column(String(12), unique=True, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    started_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    ended_by: int | None = Field(default=None, foreign_key="users.id")
    end_reason: str | None = Field(default=None, max_length=200)
    recording: bool | None = None  # the client's consent; None until they answer


class VisitParticipant(SQLModel, table=True):
    """Someone in a visit: the worker, or a client who came by link or kiosk."""

    __tablename__ = "visit_participants"

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visits.id", index=True)
    kind: str = Field(max_length=10)  # "worker" or "client"
    user_id: int | None = Field(default=None, foreign_key="users.id")
    name: str = Field(max_length=200)
    via: str = Field(max_length=10)  # "staff", "link" or "kiosk"
    device: str = Field(default="unknown", max_length=20)
    token_hash: str | None = Field(default=None, sa_column=Column(String(64), unique=True, nullable=True))
    consent: bool | None = None
    state: str = Field(default="waiting", max_length=12)  # waiting, admitted, left
    joined_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    admitted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    left_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class VisitMessage(SQLModel, table=True):
    """A text message a waiting client leaves for the worker."""

    __tablename__ = "visit_messages"

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visits.id", index=True)
    participant_id: int = Field(foreign_key="visit_participants.id")
    text: str = Field(max_length=1000)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class AuditEvent(SQLModel, table=True):
    """Who did what to which record, when and from where. Never updated or deleted."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True))
    actor_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    actor_role: str | None = Field(default=None, max_length=20)
    action: str = Field(max_length=60)
    entity: str = Field(max_length=40)
    entity_id: int | None = None
    case_id: int | None = Field(default=None, index=True)
    ip: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class AuthSession(SQLModel, table=True):
    """A signed-in browser or API client; the cookie holds the token, we keep its hash."""

    __tablename__ = "auth_sessions"

    id: str = Field(primary_key=True, max_length=64)  # sha256 hex of the token
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)


OUTBOX_PENDING = "pending"
OUTBOX_SENDING = "sending"
OUTBOX_SENT = "sent"
OUTBOX_FAILED = "failed"
OUTBOX_WITHDRAWN = "withdrawn"


class OutboxMessage(SQLModel, table=True):
    """One message to a client or worker, written in the transaction of the change that causes it.

    `key` is unique: `b<booking>:<kind>:<channel>`, plus `:s<sequence>` for the kinds that
    depend on the booking's time (reminders, rescheduled), so a reschedule sends new ones once.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_state_due", "state", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=120, unique=True)
    booking_id: int = Field(foreign_key="bookings.id", index=True)
    kind: str = Field(max_length=30)
    channel: str = Field(max_length=10)  # "email" or "sms"
    audience: str = Field(default="client", max_length=10)  # "client" or "worker"
    recipient: str = Field(max_length=254)
    sequence: int = 0
    due_at: datetime = Field(sa_column=_ts())
    state: str = Field(default=OUTBOX_PENDING, max_length=12)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    claimed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    claim_token: str | None = Field(default=None, max_length=64)
    sent_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class ClientLink(SQLModel, table=True):
    """The secret link of a client's own page for one booking; it stops working after the visit."""

    __tablename__ = "client_links"

    id: int | None = Field(default=None, primary_key=True)
    booking_id: int = Field(sa_column=Column(Integer, ForeignKey("bookings.id"), unique=True, nullable=False))
    token: str = Field(max_length=64, unique=True)
    expires_at: datetime = Field(sa_column=_ts())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class SmsOptOut(SQLModel, table=True):
    """A phone number that answered STOP: it gets no more SMS until it answers START."""

    __tablename__ = "sms_opt_outs"

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=32, unique=True)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class TranscriptSegment(SQLModel, table=True):
    """One transcribed stretch of one speaker, in seconds from the visit's start."""

    __tablename__ = "transcript_segments"
    __table_args__ = (
        UniqueConstraint("visit_id", "speaker", "start_ms", name="uq_segment_visit_speaker_start"),
    )

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visits.id", index=True)
    participant_id: int = Field(foreign_key="visit_participants.id")
    speaker: str = Field(max_length=40)  # "worker:12" / "client:7"
    start_ms: int
    end_ms: int
    text: str = Field(sa_column=Column(Text, nullable=False))
    words: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON [[start, end, word, p]]
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class Note(SQLModel, table=True):
    """A visit's note: drafted once when the visit ends, edited and signed by the worker, reviewed.

    `draft` is what the drafter produced (kept as it was); `body` is the worker's version.
    A signed note is never edited in place.
    """

    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(sa_column=Column(Integer, ForeignKey("visits.id"), unique=True, nullable=False))
    case_id: int = Field(foreign_key="cases.id", index=True)
    worker_id: int = Field(foreign_key="users.id", index=True)
    status: str = Field(default="draft", max_length=12)  # draft, signed, approved, returned
    drafter: str = Field(max_length=80)
    draft: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    body: str = Field(sa_column=Column(Text, nullable=False))  # JSON, the worker's edits
    version: int = 1
    signed_by: int | None = Field(default=None, foreign_key="users.id")
    signed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    reviewed_by: int | None = Field(default=None, foreign_key="users.id")
    reviewed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    review_comment: str | None = Field(default=None, max_length=2000)
    audio_deleted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    audio_deleted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # JSON file list
    # The booking made from the suggested follow-up (one click on the note page), if any.
    follow_up_booking_id: int | None = Field(default=None, foreign_key="bookings.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class NoteRevision(SQLModel, table=True):
    """Each version of a note's body as it was saved: the drafter's first, then every edit."""

    __tablename__ = "note_revisions"
    __table_args__ = (UniqueConstraint("note_id", "version", name="uq_note_revision_version"),)

    id: int | None = Field(default=None, primary_key=True)
    note_id: int = Field(foreign_key="notes.id", index=True)
    version: int
    body: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    author_id: int | None = Field(default=None, foreign_key="users.id")  # None: the drafter
    sections: str = Field(default="[]", max_length=500)  # JSON list of the sections changed
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class NoteAddendum(SQLModel, table=True):
    """Text added to a signed note later; the note itself is never edited in place."""

    __tablename__ = "note_addenda"

    id: int | None = Field(default=None, primary_key=True)
    note_id: int = Field(foreign_key="notes.id", index=True)
    author_id: int = Field(foreign_key="users.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class RiskAlert(SQLModel, table=True):
    """A risk flag a person confirmed: the supervisor is alerted at once and acknowledges it.

    One row per visit, category and moment; un-confirming the flag withdraws the alert.
    """

    __tablename__ = "risk_alerts"
    __table_args__ = (UniqueConstraint("visit_id", "category", "at_ms", name="uq_risk_alert_visit_moment"),)

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visits.id", index=True)
    note_id: int | None = Field(default=None, foreign_key="notes.id")
    case_id: int = Field(foreign_key="cases.id", index=True)
    worker_id: int = Field(foreign_key="users.id", index=True)
    category: str = Field(max_length=40)
    label: str = Field(max_length=100)
    quote: str = Field(sa_column=Column(Text, nullable=False))
    at_ms: int = 0  # the moment in the visit the quote was said
    confirmed_by: int = Field(foreign_key="users.id")
    confirmed_at: datetime = Field(sa_column=_ts(index=True))
    withdrawn_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    acknowledged_by: int | None = Field(default=None, foreign_key="users.id")
    acknowledged_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
