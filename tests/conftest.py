"""Shared fixtures: a real database (SQLite file, and PostgreSQL when configured), a real server."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from caserecord.accounts import hash_password
from caserecord.db import Database, make_engine, migrate
from caserecord.models import User
from web.app import create_app
from web.settings import Settings

PASSWORD = "correct horse battery"
PG_URL = os.environ.get("LASTMILE_TEST_DATABASE_URL", "")
DB_KINDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@dataclass
class Clock:
    """A clock the tests move by hand: no sleeps."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 17, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _sqlite_db(tmp_path: Path) -> Database:
    db = Database(make_engine(f"sqlite:///{tmp_path / 'lastmile.db'}"))
    migrate(db.engine)
    return db


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = _sqlite_db(tmp_path)
    yield db
    db.close()


@pytest.fixture(params=DB_KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: a SQLite file, or a fresh schema in the test PostgreSQL."""
    if request.param == "sqlite":
        db = _sqlite_db(tmp_path)
        yield db
        db.close()
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    db = Database(make_engine(PG_URL, search_path=schema, pool_size=10))
    migrate(db.engine)
    yield db
    db.close()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass
class Staff:
    """The accounts every access test needs: two teams and an admin."""

    admin: User
    supervisor: User
    worker: User
    other_supervisor: User
    other_worker: User

    def by_name(self, name: str) -> User:
        user: User = getattr(self, name)
        return user


def add_user(db: Database, email: str, role: str, supervisor_id: int | None = None, tz: str = "UTC") -> User:
    """Insert a user directly (one shared argon2 hash keeps fixtures fast)."""
    with db.session(write=True) as s:
        user = User(
            email=email,
            name=email.split("@")[0].replace(".", " ").title(),
            role=role,
            password_hash=_password_hash(),
            timezone=tz,
            supervisor_id=supervisor_id,
            feed_token=secrets.token_urlsafe(24),
        )
        s.add(user)
        s.flush()
        s.refresh(user)
        return user


@pytest.fixture
def staff(database: Database) -> Staff:
    admin = add_user(database, "admin@agency.test", "admin")
    sup = add_user(database, "sup@agency.test", "supervisor")
    worker = add_user(database, "worker@agency.test", "worker", sup.id, "America/Los_Angeles")
    other_sup = add_user(database, "sup2@agency.test", "supervisor")
    other = add_user(database, "worker2@agency.test", "worker", other_sup.id, "Europe/London")
    return Staff(admin, sup, worker, other_sup, other)


def make_settings(**kw: Any) -> Settings:
    return Settings(host="127.0.0.1", port=0, public_url="http://lastmile.test", **kw)


AppMaker = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def make_client(database: Database, clock: Clock, tmp_path: Path) -> AsyncIterator[AppMaker]:
    """Start the real app on 127.0.0.1 (a real socket) against the test database."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(**settings: Any) -> TestClient[web.Request, web.Application]:
        settings.setdefault("data_dir", tmp_path / "var")  # audio and file outboxes stay in the test's folder
        app = create_app(make_settings(**settings), clock=clock, database=database, run_migrations=False)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
async def client(make_client: AppMaker) -> TestClient[web.Request, web.Application]:
    return await make_client()


async def login(
    client: TestClient[web.Request, web.Application], email: str, password: str = PASSWORD
) -> dict[str, str]:
    """Sign in over the API and return bearer headers for the session."""
    resp = await client.post("/api/session", json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    # The test client shares one cookie jar; tests act through explicit bearer headers.
    client.session.cookie_jar.clear()
    return {"Authorization": f"Bearer {body['token']}"}


@pytest.fixture
async def as_role(
    client: TestClient[web.Request, web.Application], staff: Staff
) -> Callable[[str], Awaitable[dict[str, str]]]:
    """Return bearer headers for one of the Staff fields ("admin", "worker", ...), cached."""
    cache: dict[str, dict[str, str]] = {}

    async def get(name: str) -> dict[str, str]:
        if name not in cache:
            cache[name] = await login(client, staff.by_name(name).email)
        return cache[name]

    return get
