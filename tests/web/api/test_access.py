"""Every role against every endpoint of the JSON API, acting on one worker's records.

The worker (`staff.worker`) is in `staff.supervisor`'s team. For each API route (`web.api.build_api`) the
table below says what each caller gets: admins do everything, the supervisor reads the team's
records but changes none, the worker reads and writes their own, the other team gets 403 and an
anonymous caller 401. A route missing from the table fails `test_the_table_covers_every_route`.
It is one module of this length because the table is one: every route beside every role, read
together, with the records the table's requests act on.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from caserecord import audit, transcripts
from caserecord.db import Database
from tests.conftest import PASSWORD, Staff, login
from tests.helpers import TUESDAY_MORNINGS, Client, ok, open_case, problem, publish
from web.api import build_api
from web.services import SERVICES

Role = Callable[[str], Awaitable[dict[str, str]]]
ROLES = ("admin", "supervisor", "worker", "other_supervisor", "other_worker", "anonymous")
LA = ZoneInfo("America/Los_Angeles")
FIRST_SLOT = datetime(2026, 3, 3, 9, 0, tzinfo=LA)  # a Tuesday; the clock reads Monday 2026-03-02
SLOTS_PER_DAY = 6  # TUESDAY_MORNINGS: 09:00-12:00 in 30-minute slots


@dataclass
class World:
    """The worker's records, and counters that hand out fresh ones for writes."""

    client: Client
    staff: Staff
    admin: dict[str, str]
    worker_id: int
    case_id: int
    block_id: int
    booking_id: int
    serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    monday_booking: int = 0
    walkin_token: str = ""

    def next(self) -> int:
        return next(self.serial)

    def slot(self) -> str:
        """Return the start of a Tuesday slot no other request has used."""
        n = self.next()
        day = FIRST_SLOT.date() + timedelta(weeks=n // SLOTS_PER_DAY)
        start = datetime.combine(day, FIRST_SLOT.time(), LA) + timedelta(minutes=30 * (n % SLOTS_PER_DAY))
        return start.isoformat()

    async def booking(self) -> int:
        """Book a fresh slot of the worker's (as admin) and return its id."""
        body = {"worker_id": self.worker_id, "case_id": self.case_id, "start": self.slot()}
        out = await ok(await self.client.post("/api/bookings", json=body, headers=self.admin), 201)
        return int(out["id"])

    def lone_day(self, weekday: int) -> date:
        """Return a date on `weekday` (0 = Monday) in a week no other request has used."""
        d = date(2026, 4, 6) + timedelta(weeks=self.next())
        return d + timedelta(days=weekday)

    async def visit_now(self) -> dict[str, Any]:
        """Book the worker's slot that starts now (Monday 09:00, cancelling the last such booking)."""
        if self.monday_booking:
            await ok(
                await self.client.post(
                    f"/api/bookings/{self.monday_booking}/cancel", json={}, headers=self.admin
                )
            )
        body = {"worker_id": self.worker_id, "case_id": self.case_id, "start": "2026-03-02T09:00:00-08:00"}
        out: dict[str, Any] = await ok(
            await self.client.post("/api/bookings", json=body, headers=self.admin), 201
        )
        self.monday_booking = int(out["id"])
        return out

    async def waiting_client(self) -> tuple[int, int]:
        """Check a client in to a visit that starts now; return (visit id, participant id)."""
        booking = await self.visit_now()
        token = booking["client_join_url"].rsplit("/", 1)[1]
        joined = await ok(await self.client.post(f"/api/join/{token}", json={"consent": True}))
        return int(booking["visit_id"]), int(joined["participant_id"])

    async def visit_id(self) -> int:
        out = await ok(await self.client.get(f"/api/bookings/{await self.booking()}", headers=self.admin))
        return int(out["visit_id"])

    async def block(self) -> int:
        """Publish a one-day block on a Monday of its own (as admin) and return its id."""
        day = self.lone_day(0).isoformat()
        out = await publish(
            self.client, self.admin, self.worker_id, weekdays=["MO"], starts_on=day, until=day
        )
        return int(out["id"])


@dataclass(frozen=True)
class Req:
    method: str
    url: str
    json: Any = None
    fresh_session: bool = False  # sign in anew for this request (it ends the session)


Prepare = Callable[[World], Awaitable[Req]]


def expect(
    admin: int,
    supervisor: int,
    worker: int,
    other_supervisor: int = 403,
    other_worker: int = 403,
    anonymous: int = 401,
) -> dict[str, int]:
    return {
        "admin": admin,
        "supervisor": supervisor,
        "worker": worker,
        "other_supervisor": other_supervisor,
        "other_worker": other_worker,
        "anonymous": anonymous,
    }


READ = expect(200, 200, 200)
ANY_STAFF = expect(200, 200, 200, 200, 200)


def write(status: int) -> dict[str, int]:
    """Admin or the worker themselves; the supervisor may look but not touch."""
    return expect(status, 403, status)


async def _login(w: World) -> Req:
    return Req("POST", "/api/session", {"email": w.staff.worker.email, "password": PASSWORD})


async def _logout(w: World) -> Req:
    return Req("DELETE", "/api/session", fresh_session=True)


async def _me(w: World) -> Req:
    return Req("GET", "/api/me")


async def _create_worker(w: World) -> Req:
    n = w.next()
    body = {"name": f"New Worker {n}", "email": f"new{n}@agency.test", "password": "a long password"}
    return Req("POST", "/api/workers", body)


async def _list_workers(w: World) -> Req:
    return Req("GET", "/api/workers")


async def _create_case(w: World) -> Req:
    return Req("POST", "/api/cases", {"worker_id": w.worker_id, "client": {"name": f"Client {w.next()}"}})


async def _list_cases(w: World) -> Req:
    return Req("GET", "/api/cases")


async def _get_case(w: World) -> Req:
    return Req("GET", f"/api/cases/{w.case_id}")


async def _create_block(w: World) -> Req:
    day = w.lone_day(2).isoformat()  # a Wednesday of its own
    body = {**TUESDAY_MORNINGS, "weekdays": ["WE"], "starts_on": day, "until": day}
    return Req("POST", f"/api/workers/{w.worker_id}/office-hours", body)


async def _list_blocks(w: World) -> Req:
    return Req("GET", f"/api/workers/{w.worker_id}/office-hours")


async def _delete_block(w: World) -> Req:
    return Req("DELETE", f"/api/workers/{w.worker_id}/office-hours/{await w.block()}")


async def _add_exception(w: World) -> Req:
    thursday = w.lone_day(3).isoformat()  # the block is held on Thursdays; bookings are on Tuesdays
    return Req("POST", f"/api/workers/{w.worker_id}/office-hours/{w.block_id}/exceptions", {"date": thursday})


async def _slots(w: World) -> Req:
    return Req("GET", f"/api/workers/{w.worker_id}/slots?from=2026-03-03&to=2026-03-10")


async def _book(w: World) -> Req:
    return Req("POST", "/api/bookings", {"worker_id": w.worker_id, "case_id": w.case_id, "start": w.slot()})


async def _get_booking(w: World) -> Req:
    return Req("GET", f"/api/bookings/{w.booking_id}")


async def _cancel(w: World) -> Req:
    return Req("POST", f"/api/bookings/{await w.booking()}/cancel", {"reason": "client asked"})


async def _reschedule(w: World) -> Req:
    booking_id = await w.booking()
    return Req("POST", f"/api/bookings/{booking_id}/reschedule", {"start": w.slot()})


async def _invite(w: World) -> Req:
    return Req("GET", f"/api/bookings/{w.booking_id}/invite.ics")


async def _get_visit(w: World) -> Req:
    return Req("GET", f"/api/visits/{await w.visit_id()}")


async def _admit(w: World) -> Req:
    visit_id, participant_id = await w.waiting_client()
    return Req("POST", f"/api/visits/{visit_id}/admit", {"participant_id": participant_id})


async def _end(w: World) -> Req:
    return Req("POST", f"/api/visits/{await w.visit_id()}/end", {})


async def _uplink(w: World) -> Req:
    # A scheduled visit: the worker may send audio only once the call runs (409); nobody else may.
    return Req("POST", f"/api/visits/{await w.visit_id()}/uplink", {"type": "offer", "sdp": "v=0"})


async def _join(w: World) -> Req:
    token = (await w.visit_now())["client_join_url"].rsplit("/", 1)[1]
    return Req("POST", f"/api/join/{token}", {"consent": False, "device": "phone"})


async def _kiosk(w: World) -> Req:
    return Req("POST", "/api/kiosk/check-in", {"code": (await w.visit_now())["kiosk_code"]})


async def _walk_in_link(w: World) -> Req:
    return Req("POST", f"/api/workers/{w.worker_id}/walk-in-link")


async def _walk_in(w: World) -> Req:
    # The other team's worker holds walk-in hours right now (17:00 in London); the link is the credential.
    if not w.walkin_token:
        other = w.staff.other_worker.id
        await publish(
            w.client,
            w.admin,
            other or 0,
            weekdays=["MO"],
            start_time="16:00",
            end_time="18:00",
            timezone="Europe/London",
            mode="walk_in",
            starts_on="2026-03-02",
            until="2026-03-02",
        )
        out = await ok(await w.client.post(f"/api/workers/{other}/walk-in-link", headers=w.admin))
        w.walkin_token = str(out["url"]).rsplit("/", 1)[1]
    return Req("POST", f"/api/walk-in/{w.walkin_token}", {"name": f"Walk-in {w.next()}", "consent": False})


async def _kiosk_walk_in(w: World) -> Req:
    await _walk_in(w)  # the other team's worker holds walk-in hours right now; the kiosk lists them
    body = {"worker_id": w.staff.other_worker.id, "name": f"Kiosk walk-in {w.next()}", "consent": False}
    return Req("POST", "/api/kiosk/walk-in", body)


async def _ended_note(w: World, signed: bool = False) -> int:
    """End a fresh visit (which files its note) and return the note's id, signed if asked."""
    visit_id = await w.visit_id()
    await ok(await w.client.post(f"/api/visits/{visit_id}/end", json={}, headers=w.admin))
    note = await ok(await w.client.get(f"/api/visits/{visit_id}/note", headers=w.admin))
    if signed:
        await ok(await w.client.post(f"/api/notes/{note['id']}/sign", headers=w.admin))
    return int(note["id"])


async def _transcript(w: World) -> Req:
    return Req("GET", f"/api/visits/{await w.visit_id()}/transcript")


async def _audio(w: World) -> Req:
    # No recording exists: those who may listen learn that (404); others are refused first.
    return Req("GET", f"/api/visits/{await w.visit_id()}/audio/1/1")


async def _get_note(w: World) -> Req:
    visit_id = await w.visit_id()
    await ok(await w.client.post(f"/api/visits/{visit_id}/end", json={}, headers=w.admin))
    return Req("GET", f"/api/visits/{visit_id}/note")


async def _patch_note(w: World) -> Req:
    return Req("PATCH", f"/api/notes/{await _ended_note(w)}", {"version": 1, "analysis": "Seen at home."})


async def _sign_note(w: World) -> Req:
    return Req("POST", f"/api/notes/{await _ended_note(w)}/sign")


async def _approve_note(w: World) -> Req:
    return Req("POST", f"/api/notes/{await _ended_note(w, signed=True)}/approve", {})


async def _return_note(w: World) -> Req:
    return Req(
        "POST", f"/api/notes/{await _ended_note(w, signed=True)}/return", {"comment": "Add the dates."}
    )


async def _list_notes(w: World) -> Req:
    await _ended_note(w)
    return Req("GET", "/api/notes?status=draft")


async def _history(w: World) -> Req:
    return Req("GET", f"/api/notes/{await _ended_note(w)}/history")


async def _addendum(w: World) -> Req:
    return Req("POST", f"/api/notes/{await _ended_note(w, signed=True)}/addenda", {"text": "Called back."})


async def _get_follow_up(w: World) -> Req:
    return Req("GET", f"/api/notes/{await _ended_note(w)}/follow-up")


async def _book_follow_up(w: World) -> Req:
    return Req("POST", f"/api/notes/{await _ended_note(w)}/follow-up", {"start": w.slot()})


async def _live_visits(w: World) -> Req:
    return Req("GET", "/api/live-visits")


async def _risk_alerts(w: World) -> Req:
    return Req("GET", "/api/risk-alerts")


async def _acknowledge(w: World) -> Req:
    """Confirm a flag on a fresh note (as admin) and acknowledge the alert it raised."""
    note_id = await _ended_note(w)
    flag = {
        "category": "eviction",
        "status": "confirmed",
        "quote": {"text": "We will be evicted.", "start": 1.0},
    }
    await ok(
        await w.client.patch(
            f"/api/notes/{note_id}", json={"version": 1, "risk_flags": [flag]}, headers=w.admin
        )
    )
    alerts = await ok(await w.client.get("/api/risk-alerts", headers=w.admin))
    alert_id = next(a["id"] for a in alerts if a["note_id"] == note_id)
    return Req("POST", f"/api/risk-alerts/{alert_id}/acknowledge")


async def _live_flag(w: World) -> Req:
    """A client checked in said something risky a second into the visit; confirm it."""
    visit_id, participant_id = await w.waiting_client()
    with w.client.app[SERVICES].db.session(write=True) as s:
        transcripts.add_segment(s, visit_id, f"client:{participant_id}", 1.0, 3.0, "We will be evicted.", [])
    flag = {"category": "eviction_or_homelessness", "quote": "We will be evicted.", "start": 1.0}
    return Req("POST", f"/api/visits/{visit_id}/risk-flags", flag)


REVIEW = expect(200, 200, 403)
TEAM_VIEW = expect(200, 200, 403, 200, 403)

PUBLIC = {role: 200 for role in ROLES}

# (method, path) of every route -> how to call it on the worker's records, and what each role gets.
TABLE: dict[tuple[str, str], tuple[Prepare, dict[str, int]]] = {
    ("POST", "/api/session"): (_login, {role: 200 for role in ROLES}),
    ("DELETE", "/api/session"): (_logout, expect(204, 204, 204, 204, 204)),
    ("GET", "/api/me"): (_me, ANY_STAFF),
    ("POST", "/api/workers"): (_create_worker, expect(201, 403, 403)),
    ("GET", "/api/workers"): (_list_workers, ANY_STAFF),
    ("POST", "/api/cases"): (_create_case, write(201)),
    ("GET", "/api/cases"): (_list_cases, ANY_STAFF),
    ("GET", "/api/cases/{case_id}"): (_get_case, READ),
    ("POST", "/api/workers/{worker_id}/office-hours"): (_create_block, write(201)),
    ("GET", "/api/workers/{worker_id}/office-hours"): (_list_blocks, READ),
    ("DELETE", "/api/workers/{worker_id}/office-hours/{block_id}"): (_delete_block, write(204)),
    ("POST", "/api/workers/{worker_id}/office-hours/{block_id}/exceptions"): (_add_exception, write(201)),
    ("GET", "/api/workers/{worker_id}/slots"): (_slots, READ),
    ("POST", "/api/bookings"): (_book, write(201)),
    ("GET", "/api/bookings/{booking_id}"): (_get_booking, READ),
    ("POST", "/api/bookings/{booking_id}/cancel"): (_cancel, write(200)),
    ("POST", "/api/bookings/{booking_id}/reschedule"): (_reschedule, write(200)),
    ("GET", "/api/bookings/{booking_id}/invite.ics"): (_invite, READ),
    ("GET", "/api/visits/{visit_id}"): (_get_visit, READ),
    ("POST", "/api/visits/{visit_id}/admit"): (_admit, write(200)),
    ("POST", "/api/visits/{visit_id}/end"): (_end, write(200)),
    ("POST", "/api/visits/{visit_id}/uplink"): (_uplink, expect(403, 403, 409)),
    # A client's join link and a kiosk code are the credentials: who else is signed in does not matter.
    ("POST", "/api/join/{join_token}"): (_join, PUBLIC),
    ("POST", "/api/kiosk/check-in"): (_kiosk, PUBLIC),
    ("POST", "/api/workers/{worker_id}/walk-in-link"): (_walk_in_link, write(200)),
    ("POST", "/api/walk-in/{walkin_token}"): (_walk_in, {role: 201 for role in ROLES}),
    ("POST", "/api/kiosk/walk-in"): (_kiosk_walk_in, {role: 201 for role in ROLES}),
    ("GET", "/api/visits/{visit_id}/transcript"): (_transcript, READ),
    ("GET", "/api/visits/{visit_id}/audio/{participant_id}/{part}"): (_audio, expect(404, 404, 404)),
    ("GET", "/api/visits/{visit_id}/note"): (_get_note, READ),
    ("PATCH", "/api/notes/{note_id}"): (_patch_note, write(200)),
    ("POST", "/api/notes/{note_id}/sign"): (_sign_note, write(200)),
    ("POST", "/api/notes/{note_id}/approve"): (_approve_note, REVIEW),
    ("POST", "/api/notes/{note_id}/return"): (_return_note, REVIEW),
    ("GET", "/api/notes"): (_list_notes, ANY_STAFF),
    ("GET", "/api/notes/{note_id}/history"): (_history, READ),
    ("POST", "/api/notes/{note_id}/addenda"): (_addendum, expect(201, 201, 201)),
    ("GET", "/api/notes/{note_id}/follow-up"): (_get_follow_up, READ),
    ("POST", "/api/notes/{note_id}/follow-up"): (_book_follow_up, write(201)),
    # Each supervisor sees their own team's live visits and alerts (an empty list for the other one).
    ("POST", "/api/visits/{visit_id}/risk-flags"): (_live_flag, write(201)),
    ("GET", "/api/live-visits"): (_live_visits, TEAM_VIEW),
    ("GET", "/api/risk-alerts"): (_risk_alerts, TEAM_VIEW),
    ("POST", "/api/risk-alerts/{alert_id}/acknowledge"): (_acknowledge, REVIEW),
}


def test_the_table_covers_every_route() -> None:
    routes = {(r.method, r.path) for r in build_api().routes}
    missing = sorted(routes - TABLE.keys())
    assert not missing, f"add these routes to the access table: {missing}"
    assert not sorted(TABLE.keys() - routes), "the table names routes that no longer exist"
    assert all(set(expected) == set(ROLES) for _, expected in TABLE.values())


async def _world(client: Client, staff: Staff, as_role: Role) -> World:
    admin = await as_role("admin")
    assert staff.worker.id is not None
    worker_id = staff.worker.id
    block = await publish(client, admin, worker_id)
    # This Monday morning only: a slot that starts right now, for the visit routes.
    await publish(
        client,
        admin,
        worker_id,
        weekdays=["MO"],
        start_time="09:00",
        end_time="10:00",
        slot_minutes=60,
        starts_on="2026-03-02",
        until="2026-03-02",
    )
    case_id = await open_case(client, admin, worker_id)
    w = World(client, staff, admin, worker_id, case_id, int(block["id"]), 0)
    w.booking_id = await w.booking()
    return w


@pytest.mark.parametrize("route", sorted(TABLE), ids=lambda r: f"{r[0]} {r[1]}")
async def test_role_against_route(
    route: tuple[str, str], client: Client, staff: Staff, as_role: Role
) -> None:
    world = await _world(client, staff, as_role)
    prepare, expected = TABLE[route]
    wrong: list[str] = []
    for role in ROLES:
        req = await prepare(world)
        if role == "anonymous":
            headers: dict[str, str] = {}
        elif req.fresh_session:
            headers = await login(client, staff.by_name(role).email)
        else:
            headers = await as_role(role)
        client.session.cookie_jar.clear()  # signing in set a cookie; each caller uses only its own token
        resp = await client.request(req.method, req.url, json=req.json, headers=headers)
        text = await resp.text()
        if resp.status != expected[role]:
            wrong.append(
                f"{role}: {req.method} {req.url} -> {resp.status}, expected {expected[role]}: {text}"
            )
        elif resp.status >= 400 and resp.content_type != "application/problem+json":
            wrong.append(f"{role}: {req.method} {req.url} -> {resp.status} as {resp.content_type}")
    assert not wrong, "\n".join(wrong)


async def test_worker_lists_show_only_what_each_may_see(client: Client, staff: Staff, as_role: Role) -> None:
    admin = await as_role("admin")
    ids = {name: staff.by_name(name).id for name in ROLES[:-1]}
    case_of: dict[str, int] = {}
    for name in ("worker", "other_worker"):
        worker_id = ids[name]
        assert worker_id is not None
        case_of[name] = await open_case(client, admin, worker_id, f"Client of {name}")
    visible_workers = {
        "admin": set(ids.values()),
        "supervisor": {ids["supervisor"], ids["worker"]},
        "worker": {ids["worker"]},
        "other_supervisor": {ids["other_supervisor"], ids["other_worker"]},
        "other_worker": {ids["other_worker"]},
    }
    visible_cases = {
        "admin": set(case_of.values()),
        "supervisor": {case_of["worker"]},
        "worker": {case_of["worker"]},
        "other_supervisor": {case_of["other_worker"]},
        "other_worker": {case_of["other_worker"]},
    }
    for role, expected in visible_workers.items():
        headers = await as_role(role)
        users = await ok(await client.get("/api/workers", headers=headers))
        assert {u["id"] for u in users} == expected, role
        # A feed URL is a secret: only an admin, or its owner, sees it.
        for u in users:
            assert (u["feed_url"] is not None) == (role == "admin" or u["id"] == ids[role]), (role, u)
        cases = await ok(await client.get("/api/cases", headers=headers))
        assert {c["id"] for c in cases} == visible_cases[role], role


async def test_every_case_read_is_audited(
    client: Client, staff: Staff, as_role: Role, database: Database
) -> None:
    world = await _world(client, staff, as_role)
    readers = ("admin", "supervisor", "worker")
    with database.session() as s:
        before = {e.id for e in audit.events(s, case_id=world.case_id)}
    for role in ROLES:
        headers = {} if role == "anonymous" else await as_role(role)
        client.session.cookie_jar.clear()
        resp = await client.get(f"/api/cases/{world.case_id}", headers=headers)
        if role in readers:
            await ok(resp)
        else:
            await problem(resp, 401 if role == "anonymous" else 403)
    with database.session() as s:
        reads = [e for e in audit.events(s, case_id=world.case_id) if e.id not in before]
    assert {e.action for e in reads} == {"case.read"}
    who = sorted((e.actor_id, e.actor_role) for e in reads)
    assert who == sorted((staff.by_name(r).id, r) for r in readers)
    for event in reads:
        assert event.ip == "127.0.0.1" and event.at is not None and event.entity == "case"
        assert event.entity_id == world.case_id


async def test_calendar_feed_needs_its_token_and_no_sign_in(client: Client, staff: Staff) -> None:
    for token in ("not-the-right-token", "x", "a" * 200, "%00%00%00%00%00%00%00%00", "..%2F..%2Fetc"):
        await problem(await client.get(f"/calendar/{token}.ics"), 404)
    resp = await client.get(f"/calendar/{staff.worker.feed_token}.ics")
    assert resp.status == 200 and resp.content_type == "text/calendar"
    assert (await resp.text()).startswith("BEGIN:VCALENDAR")
