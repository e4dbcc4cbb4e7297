"""The case record on a real database: migrations, the overlap guard, times and the audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, select

from caserecord import audit, cases
from caserecord.audit import Actor
from caserecord.db import Database, mark, migrate
from caserecord.models import Booking, Client, OfficeHourBlock
from tests.conftest import Staff


def _block(db: Database, worker_id: int) -> int:
    with db.session(write=True) as s:
        block = OfficeHourBlock(
            worker_id=worker_id,
            weekdays="TU",
            start_time=time(9),
            end_time=time(12),
            timezone="UTC",
            slot_minutes=30,
            mode="booked",
            starts_on=date(2026, 1, 1),
        )
        s.add(block)
        s.flush()
        assert block.id is not None
        return block.id


def _case(db: Database, staff: Staff) -> int:
    assert staff.worker.id is not None and staff.admin.id is not None
    with db.session(write=True) as s:
        case, _ = cases.create_case(
            s, Actor(staff.admin.id, "admin"), worker_id=staff.worker.id, client_name="C"
        )
        assert case.id is not None
        return case.id


def _insert(
    db: Database, staff: Staff, case_id: int, block_id: int, start: str, minutes: int, uid: str
) -> int:
    assert staff.worker.id is not None
    begin = datetime.fromisoformat(start)
    with db.session(write=True) as s:
        b = Booking(
            uid=uid,
            worker_id=staff.worker.id,
            case_id=case_id,
            block_id=block_id,
            start_at=begin,
            end_at=begin + timedelta(minutes=minutes),
            created_by=staff.worker.id,
        )
        s.add(b)
        s.flush()
        assert b.id is not None
        return b.id


def test_migrations_are_repeatable(database: Database) -> None:
    migrate(database.engine)  # a second run is a no-op
    names = set(inspect(database.engine).get_table_names())
    assert {"users", "clients", "cases", "office_hour_blocks", "bookings", "visits", "audit_events"} <= names
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"


def test_migrations_build_exactly_the_models(database: Database) -> None:
    """No drift: what the migrations create is what the SQLModel tables declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], diff


def test_sqlite_runs_in_wal_mode(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_database_refuses_overlapping_bookings_of_any_length(database: Database, staff: Staff) -> None:
    block = _block(database, staff.worker.id or 0)
    case_id = _case(database, staff)
    first = _insert(database, staff, case_id, block, "2026-03-03T10:00:00+00:00", 60, "a")
    for start, minutes in [
        ("2026-03-03T09:45:00+00:00", 30),
        ("2026-03-03T10:59:00+00:00", 5),
        ("2026-03-03T10:00:00+00:00", 60),
    ]:
        with pytest.raises(IntegrityError):
            _insert(database, staff, case_id, block, start, minutes, f"x{start}{minutes}")
    # Touching is not overlapping.
    _insert(database, staff, case_id, block, "2026-03-03T11:00:00+00:00", 30, "b")
    _insert(database, staff, case_id, block, "2026-03-03T09:30:00+00:00", 30, "c")
    # Moving a booking onto another is refused too; a cancelled one no longer blocks.
    with pytest.raises(IntegrityError), database.session(write=True) as s:
        row = s.get(Booking, first)
        assert row is not None
        row.start_at = datetime(2026, 3, 3, 10, 45, tzinfo=UTC)
        row.end_at = datetime(2026, 3, 3, 11, 15, tzinfo=UTC)
        s.add(row)
        s.flush()
    with database.session(write=True) as s:
        row = s.get(Booking, first)
        assert row is not None
        row.status = "cancelled"
        s.add(row)
    _insert(database, staff, case_id, block, "2026-03-03T10:15:00+00:00", 30, "d")
    # The other worker's calendar is independent.
    assert staff.other_worker.id is not None


def test_times_round_trip_as_aware_utc(database: Database, staff: Staff) -> None:
    block = _block(database, staff.worker.id or 0)
    case_id = _case(database, staff)
    booking_id = _insert(database, staff, case_id, block, "2026-03-10T09:00:00-07:00", 30, "tz")
    with database.session() as s:
        row = s.get(Booking, booking_id)
        assert row is not None
        assert row.start_at == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
        assert row.start_at.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive"), database.session(write=True) as s:
        s.add(Client(name="x", created_at=datetime(2026, 1, 1)))  # naive: refused
        s.flush()


def test_case_reads_and_writes_are_audited(database: Database, staff: Staff) -> None:
    assert staff.worker.id is not None
    actor = Actor(staff.worker.id, "worker", "192.0.2.7")
    with database.session(write=True) as s:
        case, _ = cases.create_case(
            s, actor, worker_id=staff.worker.id, client_name="Dana", email="dana@example.net"
        )
        assert case.id is not None
        cases.read_case(s, actor, case.id)
        case_id = case.id
    with database.session() as s:
        found = [(e.action, e.actor_id, e.ip) for e in audit.events(s, case_id=case_id)]
        clients = list(s.exec(select(Client)))
    assert found == [
        ("case.read", staff.worker.id, "192.0.2.7"),
        ("case.create", staff.worker.id, "192.0.2.7"),
    ]
    assert [c.email for c in clients] == ["dana@example.net"]


async def test_a_commit_that_marks_a_topic_calls_its_listeners_once_committed(database: Database) -> None:
    """How a new outbox message wakes the sender: after the commit, never for a rollback or a read."""
    heard: list[str] = []
    stop = database.on_commit("outbox", lambda: heard.append("outbox"))

    def marks(s: Session, fail: bool) -> None:
        mark(s, "outbox")
        mark(s, "outbox")  # marked twice in one transaction: heard once
        if fail:
            raise RuntimeError("rolled back")

    await database.write(marks, False)
    assert heard == ["outbox"]
    with pytest.raises(RuntimeError):
        await database.write(marks, True)
    await database.read(marks, False)
    await database.write(lambda s: None)
    assert heard == ["outbox"]
    stop()
    await database.write(marks, False)
    assert heard == ["outbox"]
