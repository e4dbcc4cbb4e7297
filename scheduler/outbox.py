"""The outbox: every message to a client or worker is a row, written with the change that causes it.

Keys. A row's `key` is unique: ``b<booking>:<kind>:<channel>`` for the kinds a booking has at
most once (invitation, cancelled, no-show), and ``b<booking>:<kind>:<channel>:s<sequence>`` for
the kinds that depend on the booking's time (reminders, rescheduled). A reschedule raises the
booking's SEQUENCE, withdraws the pending time-dependent rows of older sequences and adds new
ones, so the new time gets its own reminders while nothing already sent is sent again.

Claims. The sender moves due rows from ``pending`` to ``sending`` a batch at a time, with one
conditional UPDATE (``WHERE id IN (...) AND state = 'pending'``) that gives them one claim token:
of any number of senders exactly one moves each row. Only the holder of the claim token may
then mark it sent, failed or pending again. A message that waited after its claim is checked
again just before it leaves, so a booking cancelled meanwhile still stops it. A claim older
than `LEASE` (the process died mid-send) goes back to pending: a crash inside the few seconds
of an SMTP or HTTP call may repeat that one message (with the same Message-ID), but never
loses it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from caserecord import audit, visit_status
from caserecord.audit import Actor
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

INVITATION = "invitation"
RESCHEDULED = "rescheduled"
CANCELLED = "cancelled"
NO_SHOW = "no_show"
NO_SHOW_WORKER = "no_show_worker"
REMINDER_PREFIX = "reminder_"
EMAIL = "email"
SMS = "sms"
LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)
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
    return row


def _withdraw(row: OutboxMessage, now: datetime, why: str) -> None:
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
            _withdraw(row, now, f"superseded by the reschedule to sequence {booking.sequence}")
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
            _withdraw(row, now, "booking cancelled")
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


@dataclass(frozen=True, slots=True)
class MessageContext:
    """A claimed message and everything needed to write it."""

    message: OutboxMessage
    booking: Booking
    client_name: str
    client_email: str | None
    language: str
    worker_name: str
    timezone: str
    join_url: str | None
    page_url: str | None
    kiosk_code: str | None
    claim_token: str


def requeue_stale(s: Session, now: datetime) -> int:
    """Put back claims older than LEASE (their process died mid-send); return how many."""
    result = s.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.state) == OUTBOX_SENDING, col(OutboxMessage.claimed_at) < now - LEASE)
        .values(state=OUTBOX_PENDING, claim_token=None, last_error="interrupted while sending; retried")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def due_ids(s: Session, now: datetime, limit: int = 200) -> list[int]:
    """Return ids of pending messages due by `now`, oldest due first."""
    q = (
        select(OutboxMessage.id)
        .where(OutboxMessage.state == OUTBOX_PENDING, col(OutboxMessage.due_at) <= now)
        .order_by(col(OutboxMessage.due_at), col(OutboxMessage.id))
        .limit(limit)
    )
    return [i for i in s.exec(q) if i is not None]


def next_due(s: Session) -> datetime | None:
    """Return when the next pending message is due."""
    due: datetime | None = s.exec(
        select(func.min(OutboxMessage.due_at)).where(OutboxMessage.state == OUTBOX_PENDING)
    ).first()
    return due


def _stale_reason(row: OutboxMessage, booking: Booking, opted_out: bool) -> str | None:
    if is_time_dependent(row.kind) and (booking.status != BOOKING_ACTIVE or booking.sequence != row.sequence):
        return "the booking changed before this was sent"
    if row.kind in (INVITATION, RESCHEDULED) and booking.status != BOOKING_ACTIVE:
        return "booking cancelled"
    if row.channel == SMS and opted_out:
        return "the number answered STOP"
    return None


def _claim_rows(s: Session, ids: Sequence[int], now: datetime) -> tuple[str, list[OutboxMessage]]:
    """Move the rows of `ids` still pending and due to sending under one new token; return them."""
    token = secrets.token_hex(16)
    result = s.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id).in_(ids),
            col(OutboxMessage.state) == OUTBOX_PENDING,
            col(OutboxMessage.due_at) <= now,
        )
        .values(
            state=OUTBOX_SENDING,
            claim_token=token,
            claimed_at=now,
            attempts=OutboxMessage.attempts + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return token, []
    rows = s.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(ids), OutboxMessage.claim_token == token)
        .order_by(col(OutboxMessage.due_at), col(OutboxMessage.id))
        .execution_options(populate_existing=True)
    ).all()
    return token, list(rows)


def _contexts(
    s: Session, rows: Sequence[OutboxMessage], token: str, now: datetime, base_url: str
) -> list[MessageContext]:
    """Load what the claimed `rows` need, in a few queries; withdraw those that no longer apply."""
    booking_ids = {r.booking_id for r in rows}
    bookings = {b.id: b for b in s.exec(select(Booking).where(col(Booking.id).in_(booking_ids)))}
    case_ids = {b.case_id for b in bookings.values()}
    clients = {
        case_id: client
        for case_id, client in s.exec(
            select(Case.id, Client)
            .join(Client, col(Client.id) == col(Case.client_id))
            .where(col(Case.id).in_(case_ids))
        )
    }
    worker_ids = {b.worker_id for b in bookings.values()}
    workers = {u.id: u for u in s.exec(select(User).where(col(User.id).in_(worker_ids)))}
    visits = {v.booking_id: v for v in s.exec(select(Visit).where(col(Visit.booking_id).in_(booking_ids)))}
    links = {
        k.booking_id: k for k in s.exec(select(ClientLink).where(col(ClientLink.booking_id).in_(booking_ids)))
    }
    phones = {r.recipient for r in rows if r.channel == SMS}
    opted = set(s.exec(select(SmsOptOut.phone).where(col(SmsOptOut.phone).in_(phones)))) if phones else set()
    out: list[MessageContext] = []
    for row in rows:
        booking = bookings[row.booking_id]
        why = _stale_reason(row, booking, row.recipient in opted)
        if why is not None:
            _withdraw(row, now, why)
            row.claim_token = None
            s.add(row)
            continue
        client = clients[booking.case_id]
        worker = workers[booking.worker_id]
        visit = visits.get(row.booking_id)
        link = links.get(row.booking_id)
        live = booking.status == BOOKING_ACTIVE and visit is not None
        out.append(
            MessageContext(
                message=row,
                booking=booking,
                client_name=client.name,
                client_email=client.email,
                language=client.language,
                worker_name=worker.name,
                timezone=worker.timezone,
                join_url=f"{base_url}/j/{visit.join_token}" if live and visit is not None else None,
                page_url=f"{base_url}/c/{link.token}" if link is not None else None,
                kiosk_code=visit.kiosk_code if live and visit is not None else None,
                claim_token=token,
            )
        )
    s.flush()
    return out


@dataclass(frozen=True, slots=True)
class Claimed:
    """What one claim transaction took: the messages to send, and how many rows it moved."""

    contexts: list[MessageContext]
    rows: int


def claim_due(s: Session, now: datetime, base_url: str, limit: int) -> Claimed:
    """Claim up to `limit` due messages in one transaction, oldest due first.

    Rows another sender holds are skipped (PostgreSQL: SKIP LOCKED); the conditional UPDATE
    still decides, so a row is claimed by exactly one sender. Rows that no longer apply
    (booking cancelled or moved, number opted out) are withdrawn here and not returned.
    """
    q = (
        select(OutboxMessage.id)
        .where(OutboxMessage.state == OUTBOX_PENDING, col(OutboxMessage.due_at) <= now)
        .order_by(col(OutboxMessage.due_at), col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [i for i in s.exec(q) if i is not None]
    if not ids:
        return Claimed([], 0)
    token, rows = _claim_rows(s, ids, now)
    if not rows:
        return Claimed([], 0)
    return Claimed(_contexts(s, rows, token, now, base_url), len(rows))


def claim(s: Session, message_id: int, now: datetime, base_url: str) -> MessageContext | None:
    """Claim one due message for sending; None if another sender has it or it no longer applies."""
    token, rows = _claim_rows(s, [message_id], now)
    found = _contexts(s, rows, token, now, base_url) if rows else []
    return found[0] if found else None


def still_ours(s: Session, message_id: int, token: str, now: datetime) -> bool:
    """Check, just before sending a message claimed a while ago, that it still holds and applies.

    A booking cancelled or moved since the claim withdraws the message here, so it does not go.
    """
    row = _owned(s, message_id, token)
    if row is None:
        return False
    booking = s.get(Booking, row.booking_id)
    assert booking is not None
    why = _stale_reason(row, booking, row.channel == SMS and is_opted_out(s, row.recipient))
    if why is None:
        return True
    _withdraw(row, now, why)
    row.claim_token = None
    s.add(row)
    return False


def _owned(s: Session, message_id: int, token: str) -> OutboxMessage | None:
    row = s.get(OutboxMessage, message_id)
    if row is None or row.state != OUTBOX_SENDING or row.claim_token != token:
        return None
    return row


def mark_sent(s: Session, message_id: int, token: str, now: datetime) -> bool:
    """Record that the claimed message left; False if the claim was lost meanwhile."""
    return mark_sent_many(s, [(message_id, token)], now) == 1


def mark_sent_many(s: Session, claims: Sequence[tuple[int, str]], now: datetime) -> int:
    """Record that the claimed messages left (one UPDATE per claim token); return how many held."""
    by_token: dict[str, list[int]] = {}
    for message_id, token in claims:
        by_token.setdefault(token, []).append(message_id)
    marked = 0
    for token, ids in by_token.items():
        result = s.execute(
            update(OutboxMessage)
            .where(
                col(OutboxMessage.id).in_(ids),
                col(OutboxMessage.state) == OUTBOX_SENDING,
                col(OutboxMessage.claim_token) == token,
            )
            .values(state=OUTBOX_SENT, sent_at=now, updated_at=now, last_error=None)
            .execution_options(synchronize_session=False)
        )
        marked += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return marked


def mark_failed(
    s: Session, message_id: int, token: str, now: datetime, error: str, max_attempts: int, retry: timedelta
) -> str | None:
    """Record a failed attempt: pending again after a backoff, or failed for good; return the state."""
    row = _owned(s, message_id, token)
    if row is None:
        return None
    row.last_error = error[:2000]
    row.updated_at = now
    row.claim_token = None
    if row.attempts >= max_attempts:
        row.state = OUTBOX_FAILED
    else:
        row.state = OUTBOX_PENDING
        row.due_at = now + min(retry * (2 ** (row.attempts - 1)), MAX_BACKOFF)
    s.add(row)
    return row.state


@dataclass(frozen=True, slots=True)
class Outcome:
    """How sending one claimed message went, for `mark_results`."""

    message_id: int
    token: str
    error: str = ""  # empty: sent
    permanent: bool = False


def mark_results(
    s: Session, outcomes: Sequence[Outcome], now: datetime, max_attempts: int, retry: timedelta
) -> dict[int, str | None]:
    """Record a batch of outcomes in one transaction; return each message's new state (None: claim lost)."""
    states: dict[int, str | None] = {}
    sent = [o for o in outcomes if not o.error]
    if sent:
        by_token: dict[str, list[int]] = {}
        for o in sent:
            by_token.setdefault(o.token, []).append(o.message_id)
        for token, ids in by_token.items():
            held = s.exec(
                select(OutboxMessage.id).where(
                    col(OutboxMessage.id).in_(ids),
                    OutboxMessage.state == OUTBOX_SENDING,
                    OutboxMessage.claim_token == token,
                )
            ).all()
            mark_sent_many(s, [(i, token) for i in held if i is not None], now)
            states.update({i: (OUTBOX_SENT if i in held else None) for i in ids})
    for o in outcomes:
        if o.error:
            states[o.message_id] = mark_failed(
                s, o.message_id, o.token, now, o.error, 0 if o.permanent else max_attempts, retry
            )
    return states


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
        _withdraw(row, now, "the number answered STOP")
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
