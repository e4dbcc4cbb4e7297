"""The outbox: every message to a client or worker is a row, written with the change that causes it.

Keys. A row's `key` is unique: ``b<booking>:<kind>:<channel>`` for the kinds a booking has at
most once (invitation, cancelled, no-show), and ``b<booking>:<kind>:<channel>:s<sequence>`` for
the kinds that depend on the booking's time (reminders, rescheduled). A reschedule raises the
booking's SEQUENCE, withdraws the pending time-dependent rows of older sequences and adds new
ones, so the new time gets its own reminders while nothing already sent is sent again.
How the sender claims and records rows is in :mod:`scheduler.delivery`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from caserecord import audit, visit_status
from caserecord.audit import Actor
from caserecord.db import mark
from caserecord.models import (
    BOOKING_ACTIVE,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    OUTBOX_WITHDRAWN,
    Booking,
    Case,
    Client,
    ClientLink,
    OutboxMessage,
    SmsOptOut,
    User,
    Visit,
)

TOPIC = "outbox"  # what a transaction that adds or requeues messages marks (caserecord.db.mark)
INVITATION = "invitation"
RESCHEDULED = "rescheduled"
CANCELLED = "cancelled"
NO_SHOW = "no_show"
NO_SHOW_WORKER = "no_show_worker"
REMINDER_PREFIX = "reminder_"
EMAIL = "email"
SMS = "sms"
LINK_TTL = timedelta(hours=24)  # the client's page works this long after the visit's end
NO_SHOW_LINK_TTL = timedelta(days=7)
NO_SHOW_LOOKBACK = timedelta(days=1)  # visits older than this are not marked any more
DEFAULT_REMINDERS = (timedelta(hours=24), timedelta(hours=1), timedelta(minutes=10))


def reminder_kind(before: timedelta) -> str:
    """Name the reminder sent `before` the start: reminder_24h, reminder_1h, reminder_10m."""
    minutes = int(before.total_seconds() // 60)
    return f"{REMINDER_PREFIX}{minutes // 60}h" if minutes % 60 == 0 else f"{REMINDER_PREFIX}{minutes}m"


def parse_reminders(text: str) -> tuple[timedelta, ...]:
    """Parse "1440,60,10" (minutes before a visit) into offsets, longest first."""
    out: set[timedelta] = set()
    for part in text.replace(";", ",").split(","):
        if part.strip():
            minutes = int(part)
            if not 1 <= minutes <= 60 * 24 * 14:
                raise ValueError(f"a reminder {minutes} minutes before a visit is out of range")
            out.add(timedelta(minutes=minutes))
    return tuple(sorted(out, reverse=True))


@dataclass(frozen=True, slots=True)
class OutboxPolicy:
    """When reminders go out, and how long a client's page link lives after the visit."""

    reminders: tuple[timedelta, ...] = DEFAULT_REMINDERS
    link_ttl: timedelta = LINK_TTL


def is_time_dependent(kind: str) -> bool:
    return kind in (RESCHEDULED, NO_SHOW, NO_SHOW_WORKER) or kind.startswith(REMINDER_PREFIX)


def message_key(booking_id: int, kind: str, channel: str, sequence: int) -> str:
    """Return the unique key of one message (see the module docstring)."""
    base = f"b{booking_id}:{kind}:{channel}"
    return f"{base}:s{sequence}" if is_time_dependent(kind) else base


def is_opted_out(s: Session, phone: str) -> bool:
    return s.exec(select(SmsOptOut.id).where(SmsOptOut.phone == phone)).first() is not None


def _client_of(s: Session, booking: Booking) -> Client:
    case = s.get(Case, booking.case_id)
    assert case is not None
    client = s.get(Client, case.client_id)
    assert client is not None
    return client


def _channels(s: Session, client: Client) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if client.email:
        out.append((EMAIL, client.email))
    if client.phone and not is_opted_out(s, client.phone):
        out.append((SMS, client.phone))
    return out


def _messages(s: Session, booking_id: int) -> list[OutboxMessage]:
    return list(s.exec(select(OutboxMessage).where(OutboxMessage.booking_id == booking_id)))


def _add(
    s: Session,
    booking: Booking,
    kind: str,
    channel: str,
    recipient: str,
    due: datetime,
    now: datetime,
    audience: str = "client",
) -> OutboxMessage | None:
    assert booking.id is not None
    key = message_key(booking.id, kind, channel, booking.sequence)
    if s.exec(select(OutboxMessage.id).where(OutboxMessage.key == key)).first() is not None:
        return None
    row = OutboxMessage(
        key=key,
        booking_id=booking.id,
        kind=kind,
        channel=channel,
        audience=audience,
        recipient=recipient,
        sequence=booking.sequence,
        due_at=due,
        created_at=now,
        updated_at=now,
    )
    s.add(row)
    mark(s, TOPIC)
    return row


def withdraw(row: OutboxMessage, now: datetime, why: str) -> None:
    row.state = OUTBOX_WITHDRAWN
    row.last_error = why
    row.updated_at = now


def _reminders(
    s: Session, booking: Booking, channels: Sequence[tuple[str, str]], now: datetime, policy: OutboxPolicy
) -> None:
    for before in policy.reminders:
        due = booking.start_at - before
        if due <= now:
            # Booked (or moved) closer than this reminder: the invitation says it all.
            continue
        for channel, recipient in channels:
            _add(s, booking, reminder_kind(before), channel, recipient, due, now)


def ensure_link(s: Session, booking: Booking, policy: OutboxPolicy) -> ClientLink:
    """Return the booking's client-page link, creating it or moving its expiry to the visit's end."""
    link = s.exec(select(ClientLink).where(ClientLink.booking_id == booking.id)).first()
    expires = booking.end_at + policy.link_ttl
    if link is None:
        assert booking.id is not None
        link = ClientLink(booking_id=booking.id, token=secrets.token_urlsafe(32), expires_at=expires)
    elif link.expires_at < expires:
        link.expires_at = expires
    s.add(link)
    return link


def on_booked(s: Session, booking: Booking, now: datetime, policy: OutboxPolicy = OutboxPolicy()) -> None:
    """Queue the invitation (now) and the reminders of a new booking, in its transaction."""
    ensure_link(s, booking, policy)
    client = _client_of(s, booking)
    channels = _channels(s, client)
    for channel, recipient in channels:
        _add(s, booking, INVITATION, channel, recipient, now, now)
    _reminders(s, booking, channels, now, policy)
    s.flush()


def on_rescheduled(
    s: Session, booking: Booking, now: datetime, policy: OutboxPolicy = OutboxPolicy()
) -> None:
    """Withdraw the old time's pending messages; queue "rescheduled" and the new time's reminders."""
    assert booking.id is not None
    ensure_link(s, booking, policy)
    pending_invites: set[str] = set()
    for row in _messages(s, booking.id):
        if row.state != OUTBOX_PENDING:
            continue
        if row.kind == INVITATION:
            pending_invites.add(row.channel)
        elif is_time_dependent(row.kind) and row.sequence < booking.sequence:
            withdraw(row, now, f"superseded by the reschedule to sequence {booking.sequence}")
            s.add(row)
    channels = _channels(s, _client_of(s, booking))
    for channel, recipient in channels:
        # An invitation not yet sent is written when it leaves, so it already carries the new time.
        if channel not in pending_invites:
            _add(s, booking, RESCHEDULED, channel, recipient, now, now)
    _reminders(s, booking, channels, now, policy)
    s.flush()


def on_cancelled(s: Session, booking: Booking, now: datetime) -> None:
    """Withdraw every pending message of the booking; tell the client if they had heard of it."""
    assert booking.id is not None
    told: set[str] = set()
    for row in _messages(s, booking.id):
        if row.state == OUTBOX_PENDING:
            withdraw(row, now, "booking cancelled")
            s.add(row)
        elif row.state in (OUTBOX_SENT, OUTBOX_SENDING, OUTBOX_FAILED) and row.audience == "client":
            told.add(row.channel)
    for channel, recipient in _channels(s, _client_of(s, booking)):
        if channel in told:
            _add(s, booking, CANCELLED, channel, recipient, now, now)
    s.flush()


def on_no_show(s: Session, booking: Booking, now: datetime) -> None:
    """Offer a no-show client a new time (by their own page) and tell the worker."""
    for channel, recipient in _channels(s, _client_of(s, booking)):
        _add(s, booking, NO_SHOW, channel, recipient, now, now)
    worker = s.get(User, booking.worker_id)
    if worker is not None:
        _add(s, booking, NO_SHOW_WORKER, EMAIL, worker.email, now, now, audience="worker")
    link = s.exec(select(ClientLink).where(ClientLink.booking_id == booking.id)).first()
    if link is not None and link.expires_at < now + NO_SHOW_LINK_TTL:
        link.expires_at = now + NO_SHOW_LINK_TTL  # long enough to choose a new time
        s.add(link)
    s.flush()


def detect_no_shows(s: Session, now: datetime, after: timedelta) -> list[int]:
    """Mark visits no client joined within `after` of their start as no-shows; return their bookings."""
    q = (
        select(Booking, Visit)
        .join(Visit, col(Visit.booking_id) == col(Booking.id))
        .where(
            Booking.status == BOOKING_ACTIVE,
            col(Visit.status).in_(visit_status.SOURCES[visit_status.NO_SHOW]),
            col(Booking.start_at) <= now - after,
            col(Booking.start_at) > now - NO_SHOW_LOOKBACK,
        )
    )
    found = []
    for booking, visit in s.exec(q).all():
        # Conditional, like a claim: of two senders looking at once, one marks it and writes.
        marked = s.execute(
            update(Visit)
            .where(
                col(Visit.id) == visit.id, col(Visit.status).in_(visit_status.SOURCES[visit_status.NO_SHOW])
            )
            .values(status=visit_status.NO_SHOW)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            continue
        s.refresh(visit)
        on_no_show(s, booking, now)
        audit.record(s, Actor.system(), "visit.no_show", "visit", visit.id, case_id=booking.case_id)
        assert booking.id is not None
        found.append(booking.id)
    return found


# --- the sender's side ----------------------------------------------------------------------


def list_messages(s: Session, states: Sequence[str], limit: int = 500) -> list[OutboxMessage]:
    """Return messages in `states`, soonest due first, for the admin page."""
    q = (
        select(OutboxMessage)
        .where(col(OutboxMessage.state).in_(states))
        .order_by(col(OutboxMessage.due_at), col(OutboxMessage.id))
        .limit(limit)
    )
    return list(s.exec(q))


def retry_failed(s: Session, actor: Actor, now: datetime, message_id: int | None = None) -> int:
    """Put failed messages (one, or all with None) back to pending, due now, attempts reset.

    Audited per message; returns how many went back. A message whose booking has since
    changed is withdrawn by the sender's claim, as any other.
    """
    q = select(OutboxMessage).where(OutboxMessage.state == OUTBOX_FAILED)
    if message_id is not None:
        q = q.where(OutboxMessage.id == message_id)
    rows = list(s.exec(q))
    cases = {
        b.id: b.case_id
        for b in s.exec(select(Booking).where(col(Booking.id).in_({r.booking_id for r in rows})))
    }
    if rows:
        mark(s, TOPIC)
    for row in rows:
        row.state, row.due_at, row.attempts, row.claim_token = OUTBOX_PENDING, now, 0, None
        row.updated_at = now
        s.add(row)
        audit.record(
            s,
            actor,
            "outbox.retry",
            "outbox_message",
            row.id,
            case_id=cases.get(row.booking_id),
            kind=row.kind,
            channel=row.channel,
        )
    s.flush()
    return len(rows)


def opt_out(s: Session, phone: str, now: datetime) -> bool:
    """Stop SMS to `phone` and withdraw its pending ones; False if it had already opted out."""
    if is_opted_out(s, phone):
        return False
    s.add(SmsOptOut(phone=phone, at=now))
    for row in s.exec(
        select(OutboxMessage).where(
            OutboxMessage.recipient == phone,
            OutboxMessage.channel == SMS,
            OutboxMessage.state == OUTBOX_PENDING,
        )
    ):
        withdraw(row, now, "the number answered STOP")
        s.add(row)
    s.flush()
    return True


def opt_in(s: Session, phone: str) -> bool:
    """Let `phone` receive SMS again (it answered START); False if it had not opted out."""
    row = s.exec(select(SmsOptOut).where(SmsOptOut.phone == phone)).first()
    if row is None:
        return False
    s.delete(row)
    return True
