"""Calendars read from the record: a worker's subscribable feed, and a booking's downloadable invite."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

import scheduler.bookings as bookings
import scheduler.hours as hours
import scheduler.ical as ical
from caserecord.audit import Actor
from caserecord.errors import NotFound
from caserecord.models import Booking, Case, Client, User
from scheduler.links import Links
from scheduler.mail import invite_event

_FEED_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")  # as secrets.token_urlsafe makes them; a NUL is no token
FEED_LOOKBACK = timedelta(days=31)


def feed(s: Session, token: str, now: datetime) -> bytes:
    """Return the feed behind a worker's secret feed token, or raise NotFound."""
    found = _FEED_TOKEN.fullmatch(token) is not None
    user = s.exec(select(User).where(User.feed_token == token)).first() if found else None
    if user is None or not user.active or user.id is None:
        raise NotFound("no such calendar")
    rules = hours.load_rules(s, [user.id])
    lo = now - FEED_LOOKBACK
    booked = list(s.exec(select(Booking).where(Booking.worker_id == user.id, col(Booking.end_at) > lo)))
    events = [_feed_event(b, user) for b in booked]
    return ical.feed_calendar(f"{user.name}: office hours", rules, events, now)


def _feed_event(b: Booking, worker: User) -> ical.BookingEvent:
    # A feed travels to third-party calendars: it names the case, never the client.
    return ical.BookingEvent(
        uid=b.uid,
        sequence=b.sequence,
        start=b.start_at,
        end=b.end_at,
        timezone=worker.timezone,
        cancelled=b.status != "booked",
        summary=f"Visit: case {b.case_id}",
        description="Lastmile virtual visit",
        url=None,
        organizer_name=worker.name,
        organizer_email=worker.email,
        attendee_name=None,
        attendee_email=None,
        created=b.created_at,
        updated=b.updated_at,
    )


def invite(
    s: Session, actor: Actor, booking_id: int, links: Links, organizer_email: str, now: datetime
) -> bytes:
    """Return a booking's invite: the same event its e-mail carries (the read is audited)."""
    booking, visit = bookings.get_booking(s, actor, booking_id)
    worker = s.get(User, booking.worker_id)
    case = s.get(Case, booking.case_id)
    client = s.get(Client, case.client_id) if case is not None else None
    assert worker is not None and booking.id is not None
    event = invite_event(
        booking,
        worker_name=worker.name,
        timezone=worker.timezone,
        client_name=client.name if client is not None else None,
        client_email=client.email if client is not None else None,
        join_url=links.join(visit.join_token) if visit is not None else None,
        kiosk_code=visit.kiosk_code if visit is not None else None,
        organizer_email=organizer_email,
    )
    return ical.invite_calendar(event, now)
