"""Bad input of every kind gets a 4xx problem+json that names the problem, and writes nothing.

Each bad request is sent to the real server; after each one the database must hold exactly the
rows it held before (sessions aside), so a failure never leaves half a record behind.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel

from caserecord.db import Database
from tests.conftest import Staff
from tests.helpers import TUESDAY_MORNINGS, Client, ok, open_case, publish
from web.api import build_api

Role = Callable[[str], Awaitable[dict[str, str]]]
# Mondays and Fridays: never overlaps the Tuesday/Thursday block the fixture publishes, so a 409
# cannot hide a missing check.
HOURS: dict[str, Any] = {**TUESDAY_MORNINGS, "weekdays": ["MO", "FR"]}
BOOKABLE = "2026-03-05T10:00:00-08:00"  # a free Thursday slot


@dataclass
class Ctx:
    client: Client
    db: Database
    headers: dict[str, dict[str, str]]
    ids: dict[str, int]
    rows: dict[str, int]


@dataclass(frozen=True)
class Bad:
    """One bad request: what is sent, the status expected, and a word the problem must contain."""

    name: str
    method: str
    url: str
    names: str
    status: int = 422
    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    role: str = ""

    @property
    def caller(self) -> str:
        """Workers are created by an admin, sign-in is anonymous, the rest is the worker's own."""
        return self.role or {"/api/workers": "admin", "/api/session": "anonymous"}.get(self.url, "worker")


def count_rows(db: Database) -> dict[str, int]:
    """Rows per table, sign-in sessions aside (signing in is not what is tested)."""
    with db.session() as s:
        return {
            t.name: int(s.execute(select(func.count()).select_from(t)).scalar_one())
            for t in SQLModel.metadata.sorted_tables
            if t.name != "auth_sessions"
        }


async def setup(client: Client, staff: Staff, as_role: Role, db: Database) -> Ctx:
    worker = await as_role("worker")
    admin = await as_role("admin")
    assert staff.worker.id is not None
    block = await publish(client, worker, staff.worker.id)
    case_id = await open_case(client, worker, staff.worker.id)
    start = "2026-03-03T09:00:00-08:00"
    body = {"worker_id": staff.worker.id, "case_id": case_id, "start": start}
    booking = await ok(await client.post("/api/bookings", json=body, headers=worker), 201)
    ids = {"worker": staff.worker.id, "block": block["id"], "case": case_id, "booking": booking["id"]}
    return Ctx(client, db, {"worker": worker, "admin": admin, "anonymous": {}}, ids, count_rows(db))


async def send(ctx: Ctx, bad: Bad) -> list[str]:
    """Send one bad request; return what was wrong with the answer (nothing, if all is well)."""
    url = bad.url.format(**ctx.ids)
    headers = dict(ctx.headers[bad.caller])
    data: bytes | None = bad.raw
    if data is None and bad.body is not None:
        data = json.dumps(bad.body).encode()
    if data is not None:
        headers["Content-Type"] = bad.content_type
    ctx.client.session.cookie_jar.clear()
    resp = await ctx.client.request(bad.method, url, data=data, headers=headers)
    text = await resp.text()
    wrong = []
    where = f"{bad.name}: {bad.method} {url} -> {resp.status}"
    if resp.status != bad.status:
        wrong.append(f"{where}, expected {bad.status}: {text[:300]}")
    elif resp.content_type != "application/problem+json":
        wrong.append(f"{where} as {resp.content_type}: {text[:300]}")
    else:
        problem = json.loads(text)
        if problem.get("status") != resp.status or not problem.get("title") or not problem.get("detail"):
            wrong.append(f"{where}: not a complete problem: {text[:300]}")
        elif bad.names.lower() not in text.lower():
            wrong.append(f"{where}: the problem does not mention {bad.names!r}: {text[:300]}")
    rows = count_rows(ctx.db)
    if rows != ctx.rows:
        changed = {k: (ctx.rows[k], v) for k, v in rows.items() if ctx.rows.get(k) != v}
        wrong.append(f"{where}: rows were written: {changed}")
        ctx.rows = rows
    return wrong


async def run_all(ctx: Ctx, cases: list[Bad]) -> None:
    wrong = [line for bad in cases for line in await send(ctx, bad)]
    assert not wrong, "\n".join(wrong)


OFFICE = "/api/workers/{worker}/office-hours"


def hours(**changes: Any) -> dict[str, Any]:
    return {**HOURS, **changes}


def staff_member(**changes: Any) -> dict[str, Any]:
    return {"name": "Z", "email": "z@agency.test", "password": "long enough", **changes}


def new_client(**changes: Any) -> dict[str, Any]:
    return {"worker_id": "{worker}", "client": {"name": "A", **changes}}


def slot(start: str, **changes: Any) -> dict[str, Any]:
    return {"worker_id": "{worker}", "case_id": "{case}", "start": start, **changes}


EXCEPTIONS = OFFICE + "/{block}/exceptions"
RESCHEDULE = "/api/bookings/{booking}/reschedule"
CANCEL = "/api/bookings/{booking}/cancel"
P = "POST"

BODIES = [
    Bad("malformed JSON", P, OFFICE, "json", 400, raw=b'{"weekdays": ["MO"'),
    Bad("empty body", P, OFFICE, "json", 400, raw=b""),
    Bad("not UTF-8", P, OFFICE, "json", 400, raw=b'{"title": "\xff\xfe"}'),
    Bad("deeply nested JSON", P, OFFICE, "json", 400, raw=b"[" * 100_000 + b"]" * 100_000),
    Bad("a JSON array", P, OFFICE, "object", body=[HOURS]),
    Bad("JSON null", P, OFFICE, "object", raw=b"null"),
    Bad("a string for a number", P, OFFICE, "slot_minutes", body=hours(slot_minutes="30")),
    Bad("a float for a number", P, OFFICE, "slot_minutes", body=hours(slot_minutes=30.5)),
    Bad("a huge number", P, OFFICE, "slot_minutes", body=hours(slot_minutes=10**30)),
    Bad("zero-length slots", P, OFFICE, "slot_minutes", body=hours(slot_minutes=0)),
    Bad("a string for a list", P, OFFICE, "weekdays", body=hours(weekdays="MO")),
    Bad("an unknown weekday", P, OFFICE, "weekdays", body=hours(weekdays=["XX"])),
    Bad("no weekdays", P, OFFICE, "weekdays", body=hours(weekdays=[])),
    Bad("a repeated weekday", P, OFFICE, "weekdays", body=hours(weekdays=["MO", "MO"])),
    Bad("an unknown field", P, OFFICE, "colour", body=hours(colour="red")),
    Bad("a missing field", P, OFFICE, "timezone", body={k: v for k, v in HOURS.items() if k != "timezone"}),
    Bad("an unknown zone", P, OFFICE, "Mars/Olympus", body=hours(timezone="Mars/Olympus")),
    Bad("a zone that is a path", P, OFFICE, "zone", body=hours(timezone="../../etc/passwd")),
    Bad("end before start", P, OFFICE, "end_time", body=hours(start_time="12:00", end_time="09:00")),
    Bad("shorter than a slot", P, OFFICE, "slot", body=hours(end_time="09:15")),
    Bad("an hour past 23", P, OFFICE, "start_time", body=hours(start_time="25:00")),
    Bad("a time with an offset", P, OFFICE, "offset", body=hours(start_time="09:00+02:00")),
    Bad("seconds in a time", P, OFFICE, "minutes", body=hours(start_time="09:00:30")),
    Bad("starts in 1900", P, OFFICE, "1900", body=hours(starts_on="1900-01-01")),
    Bad("ends in 1900", P, OFFICE, "until", body=hours(until="1900-01-01")),
    Bad("ends before it starts", P, OFFICE, "until", body=hours(until="2026-02-01")),
    Bad("not a date", P, OFFICE, "starts_on", body=hours(starts_on="2026-02-30")),
    Bad("an unknown mode", P, OFFICE, "mode", body=hours(mode="sometimes")),
    Bad("a NUL character", P, OFFICE, "title", body=hours(title="office\x00hours")),
    Bad("a far-ahead window", P, OFFICE, "max_days_ahead", body=hours(max_days_ahead=10_000)),
    # Exceptions
    Bad("exception in 1900", P, EXCEPTIONS, "1900", body={"date": "1900-03-06"}),
    Bad("exception on a day off", P, EXCEPTIONS, "not held", body={"date": "2026-03-09"}),
    Bad("exception not a date", P, EXCEPTIONS, "date", body={"date": "Tuesday"}),
    Bad("exception, long reason", P, EXCEPTIONS, "reason", body={"date": "2026-03-12", "reason": "x" * 501}),
    # Workers (an admin's call)
    Bad(
        "worker, unknown zone", P, "/api/workers", "Mars/Olympus", body=staff_member(timezone="Mars/Olympus")
    ),
    Bad("worker, no e-mail address", P, "/api/workers", "e-mail", body=staff_member(email="not-an-address")),
    Bad("worker, short password", P, "/api/workers", "password", body=staff_member(password="short")),
    Bad(
        "worker, no such supervisor",
        P,
        "/api/workers",
        "supervisor",
        body=staff_member(supervisor_id=999_999),
    ),
    Bad("worker, unknown role", P, "/api/workers", "role", body=staff_member(role="root")),
    Bad("worker, NUL in the name", P, "/api/workers", "name", body=staff_member(name="Z\x00")),
    # Cases
    Bad("case without a client", P, "/api/cases", "client", body={"worker_id": "{worker}"}),
    Bad("case for worker zero", P, "/api/cases", "worker_id", body={**new_client(), "worker_id": 0}),
    Bad("case with a string id", P, "/api/cases", "worker_id", body={**new_client(), "worker_id": "3"}),
    Bad("case with a blank name", P, "/api/cases", "name", body=new_client(name="  ")),
    Bad("case with a bad phone", P, "/api/cases", "phone", body=new_client(phone="call me maybe")),
    Bad("case with a bad language", P, "/api/cases", "language", body=new_client(language="english!")),
    Bad("case with a NUL in the name", P, "/api/cases", "name", body=new_client(name="A\x00B")),
    Bad("case for nobody", P, "/api/cases", "999999", 404, body={**new_client(), "worker_id": 999_999}),
    # Bookings
    Bad("a slot outside office hours", P, "/api/bookings", "slot", body=slot("2026-03-03T13:00:00-08:00")),
    Bad("a slot on a day off", P, "/api/bookings", "slot", body=slot("2026-03-09T09:00:00-07:00")),
    Bad("a start between slots", P, "/api/bookings", "slot", body=slot("2026-03-05T09:10:00-08:00")),
    Bad("a booking in 1900", P, "/api/bookings", "1900", body=slot("1900-03-06T09:00:00-08:00")),
    Bad("a booking in year 1", P, "/api/bookings", "start", body=slot("0001-01-01T00:00:00+14:00")),
    Bad("a booking in year 9999", P, "/api/bookings", "start", body=slot("9999-12-31T23:59:59-14:00")),
    Bad("a naive start", P, "/api/bookings", "offset", body=slot("2026-03-05T10:00:00")),
    Bad("a start that is not a time", P, "/api/bookings", "start", body=slot("next tuesday")),
    Bad("a booking for no case", P, "/api/bookings", "999999", 404, body=slot(BOOKABLE, case_id=999_999)),
    Bad("a booking, unknown field", P, "/api/bookings", "client_id", body=slot(BOOKABLE, client_id=1)),
    Bad("reschedule to 1900", P, RESCHEDULE, "1900", body={"start": "1900-03-06T09:00:00-08:00"}),
    Bad("reschedule to a naive time", P, RESCHEDULE, "offset", body={"start": "2026-03-05T10:00:00"}),
    Bad("reschedule off hours", P, RESCHEDULE, "slot", body={"start": "2026-03-05T19:00:00-08:00"}),
    Bad("cancel with a long reason", P, CANCEL, "reason", body={"reason": "x" * 501}),
    Bad("cancel with an unknown field", P, CANCEL, "notify", body={"notify": True}),
    # Sign-in
    Bad("sign-in with a NUL", P, "/api/session", "email", body={"email": "a@b.test\x00", "password": "x"}),
    Bad("sign-in with a number", P, "/api/session", "password", body={"email": "a@b.test", "password": 1234}),
]


def _fill(value: Any, ids: dict[str, int]) -> Any:
    """Replace "{worker}"-style placeholders in a body by the fixture's ids."""
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
        return ids[value[1:-1]]
    return value


async def test_bad_bodies(client: Client, staff: Staff, as_role: Role, database: Database) -> None:
    ctx = await setup(client, staff, as_role, database)
    cases = [replace(b, body=_fill(b.body, ctx.ids)) for b in BODIES]
    await run_all(ctx, cases)


SLOTS = "/api/workers/{worker}/slots"


async def test_bad_queries(client: Client, staff: Staff, as_role: Role, database: Database) -> None:
    ctx = await setup(client, staff, as_role, database)
    await run_all(
        ctx,
        [
            Bad("slots in 1900", "GET", SLOTS + "?from=1900-01-01&to=1900-01-07", "1900"),
            Bad("slots until 1900", "GET", SLOTS + "?from=2026-03-01&to=1900-01-07", "1900"),
            Bad("to before from", "GET", SLOTS + "?from=2026-03-10&to=2026-03-01", "before"),
            Bad("more than 92 days", "GET", SLOTS + "?from=2026-03-01&to=2026-06-02", "92"),
            Bad("to in year 9999", "GET", SLOTS + "?from=2026-03-01&to=9999-12-31", "9999"),
            Bad("from not a date", "GET", SLOTS + "?from=yesterday&to=2026-03-01", "from"),
            Bad("no to", "GET", SLOTS + "?from=2026-03-01", "to"),
            Bad("nothing", "GET", SLOTS, "from"),
            Bad("a NUL in a date", "GET", SLOTS + "?from=2026-03-01%00&to=2026-03-02", "from"),
            Bad("delete maybe", "DELETE", OFFICE + "/{block}?cancel_bookings=perhaps", "cancel_bookings"),
        ],
    )


BAD_IDS = [
    "0",
    "-1",
    "99999999999999999999",
    "2147483648",  # one past the largest id (a 32-bit integer column)
    "2147483647",  # the largest id: well-formed, but no such record
    "abc",
    "1.5",
    "1e3",
    "%C2%B2",  # "²": str.isdigit() says yes, int() says no
    "%D9%A3",  # "٣", an Arabic-Indic 3: int() reads it as 3
]
# A valid body and query per route, so that only the id can be what is wrong.
GOOD_BODY: dict[str, Any] = {
    "OfficeHoursIn": HOURS,
    "ExceptionIn": {"date": "2026-03-12"},
    "CancelIn": {},
    "RescheduleIn": {"start": BOOKABLE},
}
GOOD_QUERY = {"SlotsQuery": "?from=2026-03-03&to=2026-03-04", "DeleteQuery": "?cancel_bookings=true"}


async def test_bad_path_ids(client: Client, staff: Staff, as_role: Role, database: Database) -> None:
    ctx = await setup(client, staff, as_role, database)
    good = {
        "worker_id": ctx.ids["worker"],
        "case_id": ctx.ids["case"],
        "booking_id": ctx.ids["booking"],
        "block_id": ctx.ids["block"],
    }
    cases = []
    for route in build_api().routes:
        params = [name for name in good if "{" + name + "}" in route.path]
        for name in params:
            for bad_id in BAD_IDS:
                url = route.path.format(**{**good, name: bad_id})
                if route.query is not None:
                    url += GOOD_QUERY[route.query.__name__]
                body = GOOD_BODY[route.body.__name__] if route.body is not None else None
                cases.append(
                    Bad(f"{name}={bad_id}", route.method, url, "not found", 404, body=body, role="admin")
                )
    assert len(cases) >= 10 * len(BAD_IDS)
    await run_all(ctx, cases)


async def test_too_large_and_not_json(
    client: Client, staff: Staff, as_role: Role, database: Database
) -> None:
    ctx = await setup(client, staff, as_role, database)
    huge = json.dumps({**HOURS, "title": "x" * (10 * 1024 * 1024)}).encode()
    await run_all(
        ctx,
        [
            Bad("a 10 MB body", "POST", OFFICE, "too large", 413, raw=huge),
            Bad("a 10 MB sign-in", "POST", "/api/session", "too large", 413, raw=huge, role="anonymous"),
            Bad("plain text", "POST", OFFICE, "application/json", 415, body=HOURS, content_type="text/plain"),
            Bad(
                "a form",
                "POST",
                OFFICE,
                "application/json",
                415,
                raw=b"weekdays=MO&start_time=09:00",
                content_type="application/x-www-form-urlencoded",
            ),
            Bad("no body at all", "POST", "/api/bookings", "application/json", 415, content_type=""),
        ],
    )


async def test_sign_in_page_with_a_nul_is_refused_not_an_error(client: Client, staff: Staff) -> None:
    """PostgreSQL cannot compare text holding a NUL: the address must be refused before the query."""
    form = {"email": staff.admin.email + "\x00", "password": "x"}
    resp = await client.post("/", data=form, allow_redirects=False)
    assert resp.status == 401, await resp.text()
