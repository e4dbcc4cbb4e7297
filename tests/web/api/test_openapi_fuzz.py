"""Schemathesis against the OpenAPI document, on the real server: no input gives a server error.

The server runs on 127.0.0.1 in a thread with its own event loop, over SQLite in a temporary folder,
seeded so that ids 1..3 exist for users, office-hour blocks, cases and bookings. Every operation is
fuzzed with data that fits the document and with data that does not, signed in as an admin. The
examples are derandomized and bounded so that the run is stable and quick.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err, Ok

from caserecord import accounts, cases
from caserecord.audit import Actor
from caserecord.db import Database, make_engine, migrate
from caserecord.models import User
from scheduler import blocks, bookings, hours
from tests.conftest import Clock, make_settings
from web.api import build_api
from web.app import create_app

ADMIN_EMAIL = "admin@fuzz.test"
PASSWORD = "fuzz password"
EXAMPLES = 25
API = build_api()
ROUTES = [(r.method, r.path) for r in API.routes]
SCHEMA = schemathesis.openapi.from_dict(copy.deepcopy(API.openapi()))

# Random ids, zones, times and dates almost never name a seeded record, a real zone or an open slot,
# so half of the valid examples get sane values instead, and the handlers run past their checks.
WORKER_ID = 3
SEEDED_ID = st.integers(1, 3) | st.just(WORKER_ID)


def days(first: date, last: date) -> st.SearchStrategy[str]:
    return st.dates(first, last).map(date.isoformat)


def wall_times(first_hour: int, last_hour: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda h, q: f"{h:02d}:{15 * q:02d}", st.integers(first_hour, last_hour), st.integers(0, 3)
    )


SLOT_START = st.builds(
    lambda week, day, n: (
        datetime.combine(
            date(2026, 3, 3) + timedelta(weeks=week, days=day), time(9), ZoneInfo("America/Los_Angeles")
        )
        + timedelta(minutes=30 * n)
    ),
    st.integers(0, 16),
    st.integers(0, 2),  # the seeded blocks are on Tuesdays, Wednesdays and Thursdays, 09:00-12:00
    st.integers(0, 6),
).map(datetime.isoformat)
REAL: dict[str, st.SearchStrategy[Any]] = {
    "timezone": st.sampled_from(["UTC", "America/Los_Angeles", "Europe/London", "Asia/Kathmandu"]),
    "email": st.from_regex(r"[a-z]{1,8}@fuzz\.test", fullmatch=True),
    "weekdays": st.lists(
        st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), min_size=1, unique=True
    ),
    "start_time": wall_times(0, 11),
    "end_time": wall_times(12, 23),
    "slot_minutes": st.sampled_from([15, 20, 30, 45, 60]),
    "buffer_minutes": st.sampled_from([0, 5, 10]),
    "starts_on": days(date(2026, 3, 1), date(2026, 4, 30)),
    "until": st.none() | days(date(2026, 5, 1), date(2026, 12, 31)),
    "date": days(date(2026, 3, 1), date(2026, 6, 30)),
    "from": days(date(2026, 3, 1), date(2026, 3, 31)),
    "to": days(date(2026, 4, 1), date(2026, 5, 31)),
    "start": SLOT_START,
}


def tidy(value: Any) -> Any:
    """Send what the document allows the way the server reads it: 5.0 as 5, and no NUL in text.

    The server reads JSON strictly (5.0 is no integer) and refuses NUL characters, which
    PostgreSQL cannot store; both are tested in test_validation.py.
    """
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tidy(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.replace("\x00", "")
    return value


def steer(case: Case[Any], data: st.DataObject) -> None:
    """Tidy a valid example, and point some of its ids, zones and dates at what the server holds."""
    if isinstance(case.body, dict):
        case.body = tidy(case.body)
    for params in (case.path_parameters, case.query, case.body):
        if isinstance(params, dict) and data.draw(st.booleans(), label="steer"):
            for key in params:
                if key in REAL or key.endswith("_id"):
                    params[key] = data.draw(REAL.get(key, SEEDED_ID), label=key)


@dataclass
class Server:
    base_url: str
    db: Database
    clock: Clock
    headers: dict[str, str]

    def fresh_headers(self) -> dict[str, str]:
        """Bearer headers of a new admin session (for calls that end the session they run in)."""
        with self.db.session(write=True) as s:
            admin = s.get(User, 1)
            assert admin is not None
            token, _ = accounts.open_session(s, admin, self.clock(), accounts.SessionPolicy(), None, None)
        return {"Authorization": f"Bearer {token}"}


def seed(db: Database, clock: Clock) -> None:
    """An admin, a supervisor and a worker (ids 1..3); three blocks, three cases, three bookings."""
    system = Actor.system()
    zone = "America/Los_Angeles"
    with db.session(write=True) as s:
        admin = accounts.create_user(
            s, system, email=ADMIN_EMAIL, name="Admin", role="admin", password=PASSWORD
        )
        sup = accounts.create_user(
            s, system, email="sup@fuzz.test", name="Sup", role="supervisor", password=PASSWORD
        )
        worker = accounts.create_user(
            s,
            system,
            email="worker@fuzz.test",
            name="Worker",
            role="worker",
            password=PASSWORD,
            timezone=zone,
            supervisor_id=sup.id,
        )
        assert admin.id == 1 and worker.id == WORKER_ID
        actor = Actor(admin.id, "admin", "127.0.0.1")
        for day in ("TU", "WE", "TH"):
            spec = hours.BlockSpec(
                weekdays=(day,),
                start_time=time(9),
                end_time=time(12),
                timezone=zone,
                slot_minutes=30,
                mode="booked",
                starts_on=date(2026, 3, 1),
                max_days_ahead=365,
            )
            blocks.create_block(s, actor, WORKER_ID, spec)
        for n, day_of_month in enumerate((3, 4, 5), 1):
            case, _ = cases.create_case(s, actor, worker_id=WORKER_ID, client_name=f"Client {n}")
            assert case.id is not None
            start = datetime(2026, 3, day_of_month, 9, tzinfo=ZoneInfo(zone))
            bookings.book(s, actor, WORKER_ID, case.id, start, clock())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    db = Database(make_engine(f"sqlite:///{folder / 'lastmile.db'}"))
    migrate(db.engine)
    clock = Clock()
    seed(db, clock)
    app = create_app(make_settings(), clock=clock, database=db, run_migrations=False)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, name="fuzz-server", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        resp = requests.post(
            f"{base_url}/api/session", json={"email": ADMIN_EMAIL, "password": PASSWORD}, timeout=30
        )
        assert resp.status_code == 200, resp.text
        headers = {"Authorization": f"Bearer {resp.json()['token']}"}
        yield Server(base_url, db, clock, headers)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        db.close()


def test_the_document_is_valid_openapi_and_lists_every_route() -> None:
    schema = schemathesis.openapi.from_dict(copy.deepcopy(API.openapi()))
    schema.validate()  # raises on a document that breaks the OpenAPI 3.1 schema
    results = list(schema.get_all_operations())
    assert not [r.err() for r in results if isinstance(r, Err)]  # an operation schemathesis cannot use
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert sorted((op.method.upper(), op.path) for op in operations) == sorted(ROUTES)


def test_the_server_serves_that_document(server: Server) -> None:
    resp = requests.get(f"{server.base_url}/api/openapi.json", timeout=30)
    assert resp.status_code == 200
    assert resp.json() == API.openapi()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_no_server_error(route: tuple[str, str], mode: GenerationMode, server: Server) -> None:
    method, path = route
    operation = SCHEMA[path][method]
    ends_session = route == ("DELETE", "/api/session")

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def call(case: Case[Any], data: st.DataObject) -> None:
        if mode.is_positive:
            steer(case, data)
        headers = server.fresh_headers() if ends_session else server.headers
        resp = case.call(base_url=server.base_url, headers=headers, timeout=30)
        shown = f"{case.as_curl_command(headers)}\n-> {resp.status_code}: {resp.content[:500]!r}"
        assert resp.status_code < 500, shown
        case.validate_response(resp, checks=[not_a_server_error], headers=headers)

    call()
