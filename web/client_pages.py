"""The client's own page (`/c/{token}`) and the SMS provider's inbound hook (`/sms/inbound`).

The page's token is its own secret, not the join token: it only shows and changes one
booking, and it stops working a day after the visit's end. Its forms carry a token derived
from the link's secret and the booking's SEQUENCE (HMAC), so a form from another site, or
one left open across a change, is refused; there is no session to steal.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import Session, col, select

from caserecord import audit
from caserecord.audit import Actor
from caserecord.cases import normalize_phone
from caserecord.errors import Conflict, Invalid, RecordError
from caserecord.models import BOOKING_ACTIVE, Booking, Case, Client, ClientLink, User, Visit
from caserecord.visit_status import LIVE, NO_SHOW
from scheduler import bookings, hours, outbox, sms, texts
from scheduler.rules import compute_slots, find_slot
from web.admin_pages import SENDER, install_admin_pages
from web.pages import render
from web.routing import client_ip
from web.runtime import RUNTIME, Runtime

log = logging.getLogger(__name__)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
SLOT_DAYS = 21
MAX_SLOTS = 40


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
        raise _Gone("invalid", None)
    booking = s.get(Booking, link.booking_id)
    assert booking is not None
    if link.expires_at <= now:
        raise _Gone("expired", _language(s, booking))
    return link, booking


class _Gone(Exception):
    """The link does not work: `why` is "invalid" or "expired"; `language` the client's, if known."""

    def __init__(self, why: str, language: str | None) -> None:
        super().__init__(why)
        self.why = why
        self.language = language


class _Refused(Exception):
    """The client's change was refused; `detail` is already in the client's language."""

    def __init__(self, detail: str, status: int = 422) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def _view(s: Session, token: str, now: datetime, rt: Runtime) -> ClientView:
    link, booking = _find(s, token, now)
    worker = s.get(User, booking.worker_id)
    assert worker is not None
    visit = s.exec(select(Visit).where(Visit.booking_id == booking.id)).first()
    tz = ZoneInfo(worker.timezone)
    cutoff = timedelta(hours=rt.settings.client_cutoff_hours)
    active = booking.status == BOOKING_ACTIVE
    missed = active and visit is not None and visit.status == NO_SHOW
    can_change = active and (now < booking.start_at - cutoff or missed)
    can_join = (
        active
        and visit is not None
        and visit.status in LIVE
        and visit.join_opens_at <= now < visit.join_expires_at
    )
    slots: list[datetime] = []
    if can_change:
        first = now.astimezone(tz).date()
        last = first + timedelta(days=SLOT_DAYS)
        rules = [r for r in hours.load_rules(s, [booking.worker_id]) if r.mode == "booked"]
        lo = datetime.combine(first - timedelta(days=2), time(0), UTC)
        hi = datetime.combine(last + timedelta(days=2), time(0), UTC)
        busy = [(b.start_at, b.end_at) for b in hours.busy_intervals(s, [booking.worker_id], lo, hi)]
        for slot in compute_slots(rules, busy, first, last, now):
            if slot.available and slot.start != booking.start_at:
                slots.append(slot.start)
        slots = slots[:MAX_SLOTS]
    audit.record(s, Actor(None, "client"), "client_page.read", "booking", booking.id, case_id=booking.case_id)
    return ClientView(
        link, booking, visit, worker.name, tz, slots, can_change, can_join, missed, _language(s, booking)
    )


@dataclass(frozen=True, slots=True)
class Moment:
    """A time as the page shows it: words in the worker's zone, and the instant for the device's zone."""

    text: str
    instant: str  # ISO 8601 in UTC, for <time datetime>
    value: str  # ISO 8601 in the worker's zone, what the reschedule form posts


def _moment(moment: datetime, tz: ZoneInfo, language: str) -> Moment:
    return Moment(
        text=texts.local_time(moment, str(tz), language),
        instant=moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        value=moment.astimezone(tz).isoformat(),
    )


def _page(
    view: ClientView, rt: Runtime, notice: str = "", error: str = "", status: int = 200
) -> web.Response:
    b = view.booking
    w = texts.page_words(view.language)
    join_url = f"/j/{view.visit.join_token}" if view.can_join and view.visit is not None else ""
    state = "missed" if view.missed else b.status
    return render(
        "client_visit.html",
        status=status,
        w=w,
        token=view.link.token,
        csrf=form_token(view.link, b),
        worker=view.worker_name,
        when=_moment(b.start_at, view.tz, view.language),
        zone=str(view.tz),
        status_text=w.statuses.get(state, state.title()),
        missed=view.missed,
        active=b.status == BOOKING_ACTIVE,
        can_change=view.can_change,
        cutoff_hours=rt.settings.client_cutoff_hours,
        join_url=join_url,
        slots=[_moment(s, view.tz, view.language) for s in view.slots],
        notice=notice,
        error=error,
    )


def _gone(request: web.Request, gone: _Gone) -> web.Response:
    language = gone.language or texts.accepted_language(request.headers.get("Accept-Language", ""))
    w = texts.page_words(language)
    detail = w.gone_expired if gone.why == "expired" else w.gone_invalid
    return render("client_gone.html", status=410, w=w, detail=detail)


async def client_page(request: web.Request) -> web.StreamResponse:
    """GET /c/{token}: the client's visit: when, with whom, status, join, reschedule, cancel."""
    rt = request.app[RUNTIME]
    try:
        view = await rt.db.write(_view, request.match_info["token"], rt.clock(), rt)
    except _Gone as exc:
        return _gone(request, exc)
    notice = texts.page_words(view.language).notices.get(request.query.get("done", ""), "")
    return _page(view, rt, notice=notice)


def _same_origin(request: web.Request, rt: Runtime) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    ours = urlsplit(rt.settings.base_url)
    return origin in (f"{ours.scheme}://{ours.netloc}", f"{request.scheme}://{request.host}")


async def client_action(request: web.Request) -> web.StreamResponse:
    """POST /c/{token}/cancel or /c/{token}/reschedule: the client changes their own visit."""
    rt = request.app[RUNTIME]
    token = request.match_info["token"]
    action = request.match_info["action"]
    form = await request.post()
    submitted = str(form.get("csrf_token", ""))
    start_text = str(form.get("start", ""))[:64]
    now = rt.clock()
    actor = Actor(None, "client", client_ip(request))

    def run(s: Session) -> None:
        link, booking = _find(s, token, now)
        w = texts.page_words(_language(s, booking))
        if not _same_origin(request, rt) or not hmac.compare_digest(form_token(link, booking), submitted):
            raise _Refused(w.out_of_date)
        if booking.status != BOOKING_ACTIVE:
            raise _Refused(w.already_cancelled)
        visit = s.exec(select(Visit).where(Visit.booking_id == booking.id)).first()
        missed = visit is not None and visit.status == NO_SHOW
        if now >= booking.start_at - timedelta(hours=rt.settings.client_cutoff_hours) and not missed:
            raise _Refused(w.too_late.format(hours=rt.settings.client_cutoff_hours))
        try:
            if action == "cancel":
                bookings.cancel_booking(s, actor, booking, "cancelled by the client", now)
                return
            try:
                start = datetime.fromisoformat(start_text)
            except ValueError as exc:
                raise _Refused(w.choose_listed) from exc
            found = find_slot(hours.load_rules(s, [booking.worker_id]), start) if start.tzinfo else None
            if found is None or found[0].mode != "booked":
                raise _Refused(w.choose_listed)
            bookings.move(s, actor, booking, start, now, rt.join_policy, missed=missed)
        except Conflict as exc:
            taken = "taken" in exc.detail
            raise _Refused(w.slot_taken if taken else w.not_changed.format(detail=exc.detail), 409) from exc
        except RecordError as exc:
            detail = exc.detail if w is texts.EN_PAGE else w.not_changed.format(detail=exc.detail)
            raise _Refused(detail, exc.status) from exc

    try:
        await rt.db.write(run)
    except _Gone as exc:
        return _gone(request, exc)
    except _Refused as exc:
        view = await rt.db.write(_view, token, now, rt)
        return _page(view, rt, error=exc.detail, status=exc.status)
    done = "cancelled" if action == "cancel" else "moved"
    raise web.HTTPSeeOther(f"/c/{token}?done={done}")


async def sms_inbound(request: web.Request) -> web.StreamResponse:
    """POST /sms/inbound: the provider forwards a reply; STOP opts the number out, START back in."""
    rt = request.app[RUNTIME]
    if not rt.settings.sms_url:
        raise web.HTTPNotFound()
    form = await request.post()
    params = {k: str(v) for k, v in form.items()}
    provider = sms.parse_url(rt.settings.sms_url)
    url = f"{rt.settings.base_url}/sms/inbound"
    given = request.headers.get("X-Twilio-Signature", "")
    if not provider.token or not sms.check_signature(provider.token, url, params, given):
        raise web.HTTPForbidden(text="bad signature")
    word = sms.reply_word(params.get("Body", ""))
    try:
        phone = normalize_phone(params.get("From", ""))
    except Invalid:
        word = None
    now = rt.clock()
    if word == "STOP":
        await rt.db.write(outbox.opt_out, phone, now)
        log.info("an SMS recipient opted out")
    elif word == "START":
        await rt.db.write(outbox.opt_in, phone)
    # An empty TwiML answer: the provider sends its own STOP confirmation.
    return web.Response(text="<Response/>", content_type="application/xml")


_CHANGES = ("/api/bookings", "/api/workers/", "/worker/", "/c/")


async def _nudge_sender(request: web.Request, response: web.StreamResponse) -> None:
    # A booking change commits before its answer is sent: wake the sender so the
    # invitation (due now) leaves within seconds rather than at the next poll.
    if request.method == "GET" or response.status >= 400 or not request.path.startswith(_CHANGES):
        return
    sender = request.app.get(SENDER)
    if sender is not None:
        sender.nudge()


def install_client_pages(app: web.Application) -> None:
    """Mount the client's page, the inbound SMS hook and the admin's outbox page."""
    app.on_response_prepare.append(_nudge_sender)
    app.router.add_get("/c/{token}", client_page)
    app.router.add_post(r"/c/{token}/{action:cancel|reschedule}", client_action)
    app.router.add_post("/sms/inbound", sms_inbound)
    install_admin_pages(app)
