"""The client's own page: their visit, and the changes they may make to it themselves.

The page's link (`/c/<token>`) is its own secret, not the join token: it shows and changes one
booking, and it stops working a day after the visit's end. Its forms carry a token derived from
the link's secret and the booking's SEQUENCE (HMAC), so a form from another site, or one left open
across a change, is refused; there is no session to steal. A client may move or cancel up to
`cutoff` before the start, or move a visit they missed; every refusal is in their language.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

import scheduler.bookings as bookings
import scheduler.hours as hours
import scheduler.texts as texts
from caserecord import audit
from caserecord.audit import Actor
from caserecord.errors import Conflict, RecordError
from caserecord.models import BOOKING_ACTIVE, Booking, Case, Client, ClientLink, User, Visit
from caserecord.visit_status import LIVE, NO_SHOW
from scheduler.bookings import JoinPolicy
from scheduler.rules import find_slot

_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
SLOT_DAYS = 21
MAX_SLOTS = 40


class Gone(Exception):
    """The link does not work: `why` is "invalid" or "expired"; `language` the client's, if known."""

    def __init__(self, why: str, language: str | None) -> None:
        super().__init__(why)
        self.why = why
        self.language = language


class Refused(Exception):
    """The client's change was refused; `detail` is already in the client's language."""

    def __init__(self, detail: str, status: int = 422) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


@dataclass(frozen=True, slots=True)
class ClientView:
    """What the client's page shows."""

    link: ClientLink
    booking: Booking
    visit: Visit | None
    worker_name: str
    tz: ZoneInfo
    slots: list[datetime]
    can_change: bool
    can_join: bool
    missed: bool
    language: str

    @property
    def form_token(self) -> str:
        return form_token(self.link, self.booking)

    @property
    def state(self) -> str:
        """ "booked", "cancelled" or "missed"."""
        return "missed" if self.missed else self.booking.status


def form_token(link: ClientLink, booking: Booking) -> str:
    """Return the CSRF token of the page's forms: tied to the link and the booking's version."""
    msg = f"client-form:{booking.id}:{booking.sequence}".encode()
    return hmac.new(link.token.encode(), msg, hashlib.sha256).hexdigest()[:40]


def _language(s: Session, booking: Booking) -> str:
    client = s.exec(
        select(Client).join(Case, col(Case.client_id) == col(Client.id)).where(Case.id == booking.case_id)
    ).first()
    return client.language if client is not None else "en"


def _find(s: Session, token: str, now: datetime) -> tuple[ClientLink, Booking]:
    link = (
        s.exec(select(ClientLink).where(ClientLink.token == token)).first()
        if _TOKEN.fullmatch(token)
        else None
    )
    if link is None:
        raise Gone("invalid", None)
    booking = s.get(Booking, link.booking_id)
    assert booking is not None
    if link.expires_at <= now:
        raise Gone("expired", _language(s, booking))
    return link, booking


def _visit_of(s: Session, booking: Booking) -> Visit | None:
    return s.exec(select(Visit).where(Visit.booking_id == booking.id)).first()


def _may_change(booking: Booking, visit: Visit | None, now: datetime, cutoff: timedelta) -> tuple[bool, bool]:
    """Return (missed, may change): before the cut-off, or a visit the client did not come to."""
    active = booking.status == BOOKING_ACTIVE
    missed = active and visit is not None and visit.status == NO_SHOW
    return missed, active and (now < booking.start_at - cutoff or missed)


def view(s: Session, token: str, now: datetime, cutoff: timedelta) -> ClientView:
    """Read the client's page (raise Gone for a link that does not work); the read is audited."""
    link, booking = _find(s, token, now)
    worker = s.get(User, booking.worker_id)
    assert worker is not None
    visit = _visit_of(s, booking)
    tz = ZoneInfo(worker.timezone)
    missed, can_change = _may_change(booking, visit, now, cutoff)
    can_join = (
        booking.status == BOOKING_ACTIVE
        and visit is not None
        and visit.status in LIVE
        and visit.join_opens_at <= now < visit.join_expires_at
    )
    slots: list[datetime] = []
    if can_change:
        first = now.astimezone(tz).date()
        free = hours.free_slots(
            s, booking.worker_id, first, first + timedelta(days=SLOT_DAYS), now, mode="booked"
        )
        slots = [x.start for x in free if x.available and x.start != booking.start_at][:MAX_SLOTS]
    audit.record(s, Actor(None, "client"), "client_page.read", "booking", booking.id, case_id=booking.case_id)
    return ClientView(
        link, booking, visit, worker.name, tz, slots, can_change, can_join, missed, _language(s, booking)
    )


def change(
    s: Session,
    token: str,
    action: str,
    *,
    submitted: str,
    same_origin: bool,
    start_text: str,
    now: datetime,
    cutoff: timedelta,
    join: JoinPolicy,
    actor: Actor,
) -> None:
    """Cancel ("cancel") or move ("reschedule" to `start_text`) the client's visit, or raise Refused."""
    link, booking = _find(s, token, now)
    w = texts.page_words(_language(s, booking))
    if not same_origin or not hmac.compare_digest(form_token(link, booking), submitted):
        raise Refused(w.out_of_date)
    if booking.status != BOOKING_ACTIVE:
        raise Refused(w.already_cancelled)
    missed, may_change = _may_change(booking, _visit_of(s, booking), now, cutoff)
    if not may_change:
        raise Refused(w.too_late.format(hours=int(cutoff.total_seconds() // 3600)))
    try:
        if action == "cancel":
            bookings.cancel_booking(s, actor, booking, "cancelled by the client", now)
            return
        try:
            start = datetime.fromisoformat(start_text)
        except ValueError as exc:
            raise Refused(w.choose_listed) from exc
        found = find_slot(hours.load_rules(s, [booking.worker_id]), start) if start.tzinfo else None
        if found is None or found[0].mode != "booked":
            raise Refused(w.choose_listed)
        bookings.move(s, actor, booking, start, now, join, missed=missed)
    except Conflict as exc:
        taken = "taken" in exc.detail
        raise Refused(w.slot_taken if taken else w.not_changed.format(detail=exc.detail), 409) from exc
    except RecordError as exc:
        detail = exc.detail if w is texts.EN_PAGE else w.not_changed.format(detail=exc.detail)
        raise Refused(detail, exc.status) from exc
