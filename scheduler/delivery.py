"""Delivery of the outbox: claiming due rows, checking they still apply, recording how sending went.

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

from caserecord.models import (
    BOOKING_ACTIVE,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    OUTBOX_SENDING,
    OUTBOX_SENT,
    Booking,
    Case,
    Client,
    ClientLink,
    OutboxMessage,
    SmsOptOut,
    User,
    Visit,
)
from scheduler.links import Links
from scheduler.outbox import INVITATION, RESCHEDULED, SMS, is_opted_out, is_time_dependent, withdraw

LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=1)


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
    urls = Links(base_url)
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
    page_links = {
        k.booking_id: k for k in s.exec(select(ClientLink).where(col(ClientLink.booking_id).in_(booking_ids)))
    }
    phones = {r.recipient for r in rows if r.channel == SMS}
    opted = set(s.exec(select(SmsOptOut.phone).where(col(SmsOptOut.phone).in_(phones)))) if phones else set()
    out: list[MessageContext] = []
    for row in rows:
        booking = bookings[row.booking_id]
        why = _stale_reason(row, booking, row.recipient in opted)
        if why is not None:
            withdraw(row, now, why)
            row.claim_token = None
            s.add(row)
            continue
        client = clients[booking.case_id]
        worker = workers[booking.worker_id]
        visit = visits.get(row.booking_id)
        link = page_links.get(row.booking_id)
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
                join_url=urls.join(visit.join_token) if live and visit is not None else None,
                page_url=urls.client_page(link.token) if link is not None else None,
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
    withdraw(row, now, why)
    row.claim_token = None
    s.add(row)
    return False


def _owned(s: Session, message_id: int, token: str) -> OutboxMessage | None:
    row = s.get(OutboxMessage, message_id)
    if row is None or row.state != OUTBOX_SENDING or row.claim_token != token:
        return None
    return row


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
