"""The JSON API: sessions, workers, cases, office hours, slots and bookings."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import Session, col, select

from caserecord import access, accounts, cases
from caserecord.audit import Actor
from caserecord.errors import NotFound
from caserecord.models import Booking, Client, OfficeHourBlock, OfficeHourException, User, Visit
from scheduler import blocks, bookings, hours, ical
from scheduler.mail import invite_event, sender_address
from scheduler.rules import Slot
from web import schemas as S
from web.auth import clear_session_cookie, end_session, set_session_cookie
from web.routing import Api, Call, client_ip, json_response
from web.runtime import RUNTIME, Runtime

api = Api()
_FEED_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,64}")  # as secrets.token_urlsafe makes them; a NUL is no token
STAFF = ("admin", "supervisor", "worker")
WRITERS = ("admin", "worker")


def user_out(user: User, rt: Runtime, with_feed: bool) -> S.UserOut:
    assert user.id is not None
    return S.UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        timezone=user.timezone,
        supervisor_id=user.supervisor_id,
        feed_url=f"{rt.settings.base_url}/calendar/{user.feed_token}.ics" if with_feed else None,
    )


def zone_of(s: Session, worker_id: int) -> ZoneInfo:
    user = s.get(User, worker_id)
    return ZoneInfo(user.timezone if user is not None else "UTC")


def booking_out(b: Booking, v: Visit | None, tz: ZoneInfo, rt: Runtime) -> S.BookingOut:
    assert b.id is not None
    live = v is not None and b.status == "booked"
    return S.BookingOut(
        id=b.id,
        visit_id=v.id if v is not None else None,
        worker_id=b.worker_id,
        case_id=b.case_id,
        start=b.start_at.astimezone(tz),
        end=b.end_at.astimezone(tz),
        status=b.status,
        sequence=b.sequence,
        client_join_url=f"{rt.settings.base_url}/j/{v.join_token}" if live and v is not None else None,
        kiosk_code=v.kiosk_code if live and v is not None else None,
    )


def block_out(b: OfficeHourBlock, excs: list[OfficeHourException]) -> S.OfficeHoursOut:
    assert b.id is not None
    return S.OfficeHoursOut(
        id=b.id,
        worker_id=b.worker_id,
        weekdays=b.weekdays.split(","),
        start_time=b.start_time.strftime("%H:%M"),
        end_time=b.end_time.strftime("%H:%M"),
        timezone=b.timezone,
        slot_minutes=b.slot_minutes,
        buffer_minutes=b.buffer_minutes,
        mode=b.mode,
        starts_on=b.starts_on,
        until=b.until,
        min_notice_minutes=b.min_notice_minutes,
        max_days_ahead=b.max_days_ahead,
        title=b.title,
        exceptions=[S.ExceptionOut(date=e.day, reason=e.reason) for e in excs],
    )


def slot_out(slot: Slot) -> S.SlotOut:
    return S.SlotOut(
        start=slot.start, end=slot.end, available=slot.available, block_id=slot.block_id, mode=slot.mode
    )


# --- sessions ---------------------------------------------------------------------------


@api.add(
    "POST",
    "/api/session",
    summary="Sign in; sets the session cookie",
    roles=None,
    body=S.LoginIn,
    response=S.SessionOut,
    errors=(401,),
    tag="session",
)
async def login(call: Call) -> web.StreamResponse:
    rt = call.rt
    body: S.LoginIn = call.body
    ip = client_ip(call.request)
    now = rt.clock()
    ua = call.request.headers.get("User-Agent")

    def run(s: Session) -> tuple[User, str, str, datetime]:
        user = accounts.authenticate(s, body.email, body.password, ip)
        token, row = accounts.open_session(s, user, now, rt.session_policy, ip, ua)
        return user, token, row.csrf_token, row.expires_at

    try:
        user, token, csrf, expires = await rt.db.write(run)
    except Exception:
        rt.metrics.logins.labels("failed").inc()
        # The failed attempt is audited in its own transaction (the sign-in one rolled back).
        await rt.db.write(_audit_failed_login, body.email, ip)
        raise
    rt.metrics.logins.labels("ok").inc()
    resp = json_response(
        S.SessionOut(user=user_out(user, rt, True), token=token, csrf_token=csrf, expires_at=expires)
    )
    set_session_cookie(resp, token, rt)
    return resp


def _audit_failed_login(s: Session, email: str, ip: str | None) -> None:
    from caserecord import audit

    audit.record(s, Actor(None, "anonymous", ip), "session.login_failed", "user", None, email=email[:254])


@api.add("DELETE", "/api/session", summary="Sign out", roles=STAFF, status=204, tag="session")
async def logout(call: Call) -> web.StreamResponse:
    await end_session(call.request)
    resp = web.Response(status=204)
    clear_session_cookie(resp)
    return resp


@api.add("GET", "/api/me", summary="Who am I", roles=STAFF, response=S.UserOut, tag="session")
async def me(call: Call) -> web.StreamResponse:
    assert call.identity is not None
    return json_response(user_out(call.identity.user, call.rt, True))


# --- workers ----------------------------------------------------------------------------


@api.add(
    "POST",
    "/api/workers",
    summary="Create a worker (admin)",
    roles=("admin",),
    body=S.WorkerIn,
    response=S.UserOut,
    status=201,
    errors=(409,),
    tag="workers",
)
async def create_worker(call: Call) -> web.StreamResponse:
    body: S.WorkerIn = call.body

    def run(s: Session) -> User:
        return accounts.create_user(
            s,
            call.actor,
            email=body.email,
            name=body.name,
            role=body.role,
            password=body.password,
            timezone=body.timezone,
            supervisor_id=body.supervisor_id,
        )

    user = await call.rt.db.write(run)
    return json_response(user_out(user, call.rt, True), 201)


@api.add(
    "GET",
    "/api/workers",
    summary="List the workers the caller may see",
    roles=STAFF,
    response=S.UserOut,
    many=True,
    tag="workers",
)
async def list_workers(call: Call) -> web.StreamResponse:
    actor = call.actor

    def run(s: Session) -> list[User]:
        ids = access.visible_worker_ids(s, actor)
        q = select(User).where(col(User.active).is_(True)).order_by(col(User.id))
        if ids is not None:
            q = q.where(col(User.id).in_(ids))
        return list(s.exec(q))

    users = await call.rt.db.read(run)
    return json_response(
        [user_out(u, call.rt, actor.role == "admin" or u.id == actor.user_id) for u in users]
    )


# --- cases ------------------------------------------------------------------------------


def _case_out(s: Session, actor: Actor, case_id: int, rt: Runtime) -> S.CaseOut:
    case, client, bookings, visits = cases.read_case(s, actor, case_id)
    assert case.id is not None and client.id is not None
    tz = zone_of(s, case.worker_id)
    by_booking = {v.booking_id: v for v in visits}
    return S.CaseOut(
        id=case.id,
        title=case.title,
        status=case.status,
        worker_id=case.worker_id,
        opened_at=case.opened_at,
        client=S.ClientOut(
            id=client.id, name=client.name, phone=client.phone, email=client.email, language=client.language
        ),
        bookings=[booking_out(b, by_booking.get(b.id), tz, rt) for b in bookings],
        visits=[
            S.VisitOut(
                id=v.id or 0,
                booking_id=v.booking_id,
                status=v.status,
                join_opens_at=v.join_opens_at,
                join_expires_at=v.join_expires_at,
            )
            for v in visits
        ],
    )


@api.add(
    "POST",
    "/api/cases",
    summary="Open a case for a new client",
    roles=WRITERS,
    body=S.CaseIn,
    response=S.CaseOut,
    status=201,
    tag="cases",
)
async def create_case(call: Call) -> web.StreamResponse:
    body: S.CaseIn = call.body
    actor = call.actor

    def run(s: Session) -> S.CaseOut:
        access.require_worker_write(s, actor, body.worker_id)
        case, _ = cases.create_case(
            s,
            actor,
            worker_id=body.worker_id,
            client_name=body.client.name,
            phone=body.client.phone,
            email=body.client.email,
            language=body.client.language,
            title=body.title,
        )
        assert case.id is not None
        return _case_out(s, actor, case.id, call.rt)

    return json_response(await call.rt.db.write(run), 201)


@api.add(
    "GET",
    "/api/cases",
    summary="List the cases in the caller's caseload",
    roles=STAFF,
    response=S.CaseOut,
    many=True,
    tag="cases",
)
async def list_cases(call: Call) -> web.StreamResponse:
    actor = call.actor

    def run(s: Session) -> list[S.CaseOut]:
        out = []
        for case in access.visible_cases(s, actor):
            client = s.get(Client, case.client_id)
            assert case.id is not None and client is not None and client.id is not None
            out.append(
                S.CaseOut(
                    id=case.id,
                    title=case.title,
                    status=case.status,
                    worker_id=case.worker_id,
                    opened_at=case.opened_at,
                    client=S.ClientOut(
                        id=client.id,
                        name=client.name,
                        phone=client.phone,
                        email=client.email,
                        language=client.language,
                    ),
                )
            )
        from caserecord import audit

        audit.record(s, actor, "case.list", "case", None, count=len(out))
        return out

    return json_response(await call.rt.db.write(run))


@api.add(
    "GET",
    "/api/cases/{case_id}",
    summary="A case with its client and timeline",
    roles=STAFF,
    response=S.CaseOut,
    tag="cases",
)
async def get_case(call: Call) -> web.StreamResponse:
    case_id = call.path["case_id"]
    return json_response(await call.rt.db.write(_case_out, call.actor, case_id, call.rt))


# --- office hours -----------------------------------------------------------------------


@api.add(
    "POST",
    "/api/workers/{worker_id}/office-hours",
    summary="Publish a block of office hours",
    roles=WRITERS,
    body=S.OfficeHoursIn,
    response=S.OfficeHoursOut,
    status=201,
    errors=(409,),
    tag="office hours",
)
async def create_office_hours(call: Call) -> web.StreamResponse:
    spec: S.OfficeHoursIn = call.body
    block = await call.rt.db.write(blocks.create_block, call.actor, call.path["worker_id"], spec)
    return json_response(block_out(block, []), 201)


@api.add(
    "GET",
    "/api/workers/{worker_id}/office-hours",
    summary="A worker's office-hour blocks",
    roles=STAFF,
    response=S.OfficeHoursOut,
    many=True,
    tag="office hours",
)
async def list_office_hours(call: Call) -> web.StreamResponse:
    blocks = await call.rt.db.read(hours.list_blocks, call.actor, call.path["worker_id"])
    return json_response([block_out(b, e) for b, e in blocks])


@api.add(
    "DELETE",
    "/api/workers/{worker_id}/office-hours/{block_id}",
    summary="Withdraw a block",
    roles=WRITERS,
    query=S.DeleteQuery,
    status=204,
    errors=(409,),
    tag="office hours",
)
async def delete_office_hours(call: Call) -> web.StreamResponse:
    q: S.DeleteQuery = call.query
    await call.rt.db.write(
        blocks.delete_block,
        call.actor,
        call.path["worker_id"],
        call.path["block_id"],
        call.rt.clock(),
        cancel_bookings=q.cancel_bookings,
    )
    return web.Response(status=204)


@api.add(
    "POST",
    "/api/workers/{worker_id}/office-hours/{block_id}/exceptions",
    summary="Cancel one date of a block (its bookings are cancelled)",
    roles=WRITERS,
    body=S.ExceptionIn,
    response=S.ExceptionResult,
    status=201,
    errors=(409,),
    tag="office hours",
)
async def add_exception(call: Call) -> web.StreamResponse:
    b: S.ExceptionIn = call.body
    exc, hit = await call.rt.db.write(
        blocks.add_exception,
        call.actor,
        call.path["worker_id"],
        call.path["block_id"],
        b.date,
        b.reason,
        call.rt.clock(),
    )
    return json_response(
        S.ExceptionResult(
            block_id=exc.block_id,
            date=exc.day,
            reason=exc.reason,
            cancelled_bookings=[h.id for h in hit if h.id is not None],
        ),
        201,
    )


@api.add(
    "GET",
    "/api/workers/{worker_id}/slots",
    summary="Slots on local dates from..to",
    roles=STAFF,
    query=S.SlotsQuery,
    response=S.SlotOut,
    many=True,
    tag="office hours",
)
async def slots(call: Call) -> web.StreamResponse:
    q: S.SlotsQuery = call.query
    _, found = await call.rt.db.read(
        hours.worker_slots, call.actor, call.path["worker_id"], q.from_, q.to, call.rt.clock()
    )
    return json_response([slot_out(s) for s in found])


# --- bookings ---------------------------------------------------------------------------


@api.add(
    "POST",
    "/api/bookings",
    summary="Book a slot for a case",
    roles=WRITERS,
    body=S.BookingIn,
    response=S.BookingOut,
    status=201,
    errors=(404, 409),
    tag="bookings",
)
async def create_booking(call: Call) -> web.StreamResponse:
    b: S.BookingIn = call.body
    rt = call.rt

    def run(s: Session) -> S.BookingOut:
        booking, visit = bookings.book(
            s, call.actor, b.worker_id, b.case_id, b.start, rt.clock(), rt.join_policy
        )
        return booking_out(booking, visit, zone_of(s, booking.worker_id), rt)

    try:
        out = await rt.db.write(run)
    except Exception as exc:
        rt.metrics.bookings.labels(type(exc).__name__.lower()).inc()
        raise
    rt.metrics.bookings.labels("created").inc()
    return json_response(out, 201)


@api.add(
    "GET",
    "/api/bookings/{booking_id}",
    summary="A booking",
    roles=STAFF,
    response=S.BookingOut,
    tag="bookings",
)
async def get_booking(call: Call) -> web.StreamResponse:
    rt = call.rt

    def run(s: Session) -> S.BookingOut:
        booking, visit = bookings.get_booking(s, call.actor, call.path["booking_id"])
        return booking_out(booking, visit, zone_of(s, booking.worker_id), rt)

    return json_response(await rt.db.write(run))


@api.add(
    "POST",
    "/api/bookings/{booking_id}/cancel",
    summary="Cancel a booking",
    roles=WRITERS,
    body=S.CancelIn,
    response=S.BookingOut,
    errors=(409,),
    tag="bookings",
)
async def cancel_booking(call: Call) -> web.StreamResponse:
    rt = call.rt
    reason = call.body.reason

    def run(s: Session) -> S.BookingOut:
        booking, visit = bookings.cancel(s, call.actor, call.path["booking_id"], reason, rt.clock())
        return booking_out(booking, visit, zone_of(s, booking.worker_id), rt)

    return json_response(await rt.db.write(run))


@api.add(
    "POST",
    "/api/bookings/{booking_id}/reschedule",
    summary="Move a booking to another slot",
    roles=WRITERS,
    body=S.RescheduleIn,
    response=S.BookingOut,
    errors=(409,),
    tag="bookings",
)
async def reschedule_booking(call: Call) -> web.StreamResponse:
    rt = call.rt
    start = call.body.start

    def run(s: Session) -> S.BookingOut:
        booking, visit = bookings.reschedule(
            s, call.actor, call.path["booking_id"], start, rt.clock(), rt.join_policy
        )
        return booking_out(booking, visit, zone_of(s, booking.worker_id), rt)

    return json_response(await rt.db.write(run))


@api.add(
    "GET",
    "/api/bookings/{booking_id}/invite.ics",
    summary="The booking's calendar invite",
    roles=STAFF,
    media="text/calendar",
    tag="calendars",
)
async def booking_invite(call: Call) -> web.StreamResponse:
    rt = call.rt

    def run(s: Session) -> bytes:
        booking, _ = bookings.get_booking(s, call.actor, call.path["booking_id"])
        return ical.invite_calendar(booking_event(s, booking, rt), rt.clock())

    body = await rt.db.write(run)
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="invite.ics"'},
    )


def booking_event(s: Session, booking: Booking, rt: Runtime) -> ical.BookingEvent:
    """Describe a booking for its downloadable invite: the same event the e-mail carries."""
    from caserecord.models import Case

    worker = s.get(User, booking.worker_id)
    case = s.get(Case, booking.case_id)
    client = s.get(Client, case.client_id) if case is not None else None
    assert worker is not None and booking.id is not None
    visit = s.exec(select(Visit).where(Visit.booking_id == booking.id)).first()
    return invite_event(
        booking,
        worker_name=worker.name,
        timezone=worker.timezone,
        client_name=client.name if client is not None else None,
        client_email=client.email if client is not None else None,
        join_url=f"{rt.settings.base_url}/j/{visit.join_token}" if visit is not None else None,
        kiosk_code=visit.kiosk_code if visit is not None else None,
        organizer_email=sender_address(rt.settings.mail_from, rt.settings.base_url).addr_spec,
    )


async def calendar_feed(request: web.Request) -> web.StreamResponse:
    """GET /calendar/{token}.ics: a worker's subscribable feed (the token is the secret)."""
    rt = request.app[RUNTIME]
    token = request.match_info["token"]
    now = rt.clock()

    def run(s: Session) -> bytes:
        found = _FEED_TOKEN.fullmatch(token) is not None
        user = s.exec(select(User).where(User.feed_token == token)).first() if found else None
        if user is None or not user.active or user.id is None:
            raise NotFound("no such calendar")
        rules = hours.load_rules(s, [user.id])
        lo = now - timedelta(days=31)
        bookings = list(s.exec(select(Booking).where(Booking.worker_id == user.id, col(Booking.end_at) > lo)))
        events = [_feed_event(b, user) for b in bookings]
        return ical.feed_calendar(f"{user.name}: office hours", rules, events, now)

    body = await rt.db.read(run)
    return web.Response(body=body, content_type="text/calendar", charset="utf-8")


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
