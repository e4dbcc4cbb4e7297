"""The database: engine set-up, migrations, and running sessions off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"
_TOPICS = "lastmile.topics"


def mark(s: Session, topic: str) -> None:
    """Note that this transaction changes `topic` (say "outbox"); its listeners hear once it commits."""
    s.info.setdefault(_TOPICS, set()).add(topic)


def normalize_url(url: str) -> str:
    """Return `url` with PostgreSQL URLs pointed at the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, search_path: str | None = None, pool_size: int = 10) -> Engine:
    """Create the engine: SQLite in WAL mode with write transactions taken up front."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 60, "check_same_thread": False}, poolclass=NullPool
        )
        _sqlite_events(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if search_path:
        connect_args["options"] = f"-csearch_path={search_path},public"
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect_args
    )


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN, so a write can BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock when they begin: no deadlocked read-to-write upgrades,
        # and the overlap trigger sees every committed booking.
        immediate = conn.get_execution_options().get("lastmile_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def migrate(engine: Engine) -> None:
    """Bring the schema up to the newest migration."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    log.info("database migrated", extra={"url": engine.url.render_as_string(hide_password=True)})


def sqlite_path(url: str) -> Path | None:
    """Return the file behind a SQLite URL, or None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


class Database:
    """The engine plus a thread pool so sessions never block the event loop."""

    def __init__(self, engine: Engine, threads: int = 8) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(lastmile_write=True)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")
        self._listeners: dict[str, list[Callable[[], None]]] = {}

    def on_commit(self, topic: str, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` on the event loop after each `write` whose transaction marked `topic`.

        Returns the function that stops it.
        """
        listeners = self._listeners.setdefault(topic, [])
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """Open a session in the calling thread; commit on success when `write`."""
        with Session(self._write_engine if write else self.engine, expire_on_commit=False) as s:
            try:
                yield s
                if write:
                    s.commit()
                # A read ends with close(), which keeps loaded objects usable (rollback expires them).
            except BaseException:
                s.rollback()
                raise

    async def read(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(session, ...)` in a read transaction on the pool."""
        return await self._run(False, fn, *args, **kwargs)

    async def write(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(session, ...)` in a write transaction on the pool and commit."""
        return await self._run(True, fn, *args, **kwargs)

    async def _run(self, write: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> tuple[T, set[str]]:
            with self.session(write=write) as s:
                result = fn(s, *args, **kwargs)
                topics: set[str] = s.info.get(_TOPICS, set())
            return result, topics  # the session has committed by now

        result, topics = await asyncio.get_running_loop().run_in_executor(self._pool, call)
        for topic in sorted(topics) if write else ():
            for listener in self._listeners.get(topic, ()):
                listener()
        return result

    def ping(self) -> bool:
        """Return whether the database answers a trivial query."""
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar() == 1

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.engine.dispose()
