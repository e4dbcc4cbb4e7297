"""The demo agency `make run` seeds: three staff, a few clients, office hours and bookings."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from sqlmodel import Session, select

from caserecord import accounts, cases
from caserecord.audit import Actor
from caserecord.models import User
from scheduler import service

log = logging.getLogger(__name__)
DEMO_PASSWORD = "lastmile-demo"  # noqa: S105 - documented demo-only password
DEMO_ZONE = "America/Los_Angeles"
CLIENTS = (
    ("Maria Lopez", "+1 503 555 0101", "maria@example.net", "es", "SNAP renewal"),
    ("James Carter", "+1 503 555 0102", "james@example.net", "en", "Housing application"),
    ("Aisha Rahman", "+1 503 555 0103", None, "en", "Child care subsidy"),
)


def seed_demo(s: Session, now: datetime) -> bool:
    """Create the demo agency unless it exists; return whether anything was created."""
    if s.exec(select(User.id).where(User.email == "admin@example.org")).first() is not None:
        return False
    system = Actor.system()
    admin = accounts.create_user(
        s,
        system,
        email="admin@example.org",
        name="Avery Admin",
        role="admin",
        password=DEMO_PASSWORD,
        timezone=DEMO_ZONE,
    )
    sup = accounts.create_user(
        s,
        system,
        email="supervisor@example.org",
        name="Sam Supervisor",
        role="supervisor",
        password=DEMO_PASSWORD,
        timezone=DEMO_ZONE,
    )
    worker = accounts.create_user(
        s,
        system,
        email="worker@example.org",
        name="Wren Worker",
        role="worker",
        password=DEMO_PASSWORD,
        timezone=DEMO_ZONE,
        supervisor_id=sup.id,
    )
    assert admin.id is not None and worker.id is not None
    actor = Actor(admin.id, "admin")
    today = now.astimezone(service.to_zone(DEMO_ZONE)).date()
    service.create_block(
        s,
        actor,
        worker.id,
        service.BlockSpec(
            weekdays=("MO", "TU", "WE", "TH", "FR"),
            start_time=time(9),
            end_time=time(12),
            timezone=DEMO_ZONE,
            slot_minutes=30,
            buffer_minutes=0,
            mode="booked",
            starts_on=today,
            min_notice_minutes=60,
            title="Benefits questions",
        ),
    )
    service.create_block(
        s,
        actor,
        worker.id,
        service.BlockSpec(
            weekdays=("TU", "TH"),
            start_time=time(14),
            end_time=time(16),
            timezone=DEMO_ZONE,
            slot_minutes=20,
            mode="walk_in",
            starts_on=today,
            title="Walk-in hours",
        ),
    )
    case_ids = []
    for name, phone, email, lang, title in CLIENTS:
        case, _ = cases.create_case(
            s,
            actor,
            worker_id=worker.id,
            client_name=name,
            phone=phone,
            email=email,
            language=lang,
            title=title,
        )
        case_ids.append(case.id)
    _, slots = service.worker_slots(s, actor, worker.id, today, today + timedelta(days=14), now)
    free = [sl for sl in slots if sl.available]
    for case_id, slot in zip(case_ids, free[1::5], strict=False):
        assert case_id is not None
        service.book(s, actor, worker.id, case_id, slot.start, now)
    log.info("demo agency seeded", extra={"worker_id": worker.id})
    return True
