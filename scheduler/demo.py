"""The demo agency `make run` seeds: three staff, a few clients, office hours and bookings."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, time, timedelta

from sqlmodel import Session, select

import scheduler.blocks as blocks
import scheduler.bookings as bookings
import scheduler.hours as hours
from caserecord import accounts, cases, transcripts
from caserecord.audit import Actor
from caserecord.models import User, Visit, VisitParticipant

log = logging.getLogger(__name__)
DEMO_PASSWORD = "lastmile-demo"  # noqa: S105 - documented demo-only password
DEMO_ZONE = "America/Los_Angeles"
STAFF = (
    ("admin", "Avery Admin", ""),
    ("supervisor", "Sam Supervisor", ""),
    ("worker", "Wren Worker", "supervisor"),
)
CLIENTS = (
    ("Maria Lopez", "+1 503 555 0101", "maria@example.net", "es", "SNAP renewal"),
    ("James Carter", "+1 503 555 0102", "james@example.net", "en", "Housing application"),
    ("Aisha Rahman", "+1 503 555 0103", None, "en", "Child care subsidy"),
)


def seed_demo(s: Session, now: datetime) -> bool:
    """Create the demo agency unless it exists; return whether anything was created."""
    if s.exec(select(User.id).where(User.email == "admin@example.org")).first() is not None:
        return False
    made: dict[str, User] = {}
    for role, name, boss in STAFF:
        boss_id = made[boss].id if boss else None
        made[role] = accounts.create_user(
            s,
            Actor.system(),
            email=f"{role}@example.org",
            name=name,
            role=role,
            password=DEMO_PASSWORD,
            timezone=DEMO_ZONE,
            supervisor_id=boss_id,
        )
    admin, worker = made["admin"], made["worker"]
    assert admin.id is not None and worker.id is not None
    actor = Actor(admin.id, "admin")
    today = now.astimezone(hours.to_zone(DEMO_ZONE)).date()
    blocks.create_block(
        s,
        actor,
        worker.id,
        hours.BlockSpec(
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
    blocks.create_block(
        s,
        actor,
        worker.id,
        hours.BlockSpec(
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
    _, slots = hours.worker_slots(s, actor, worker.id, today, today + timedelta(days=14), now)
    free = [sl for sl in slots if sl.available]
    for case_id, slot in zip(case_ids, free[1::5], strict=False):
        assert case_id is not None
        bookings.book(s, actor, worker.id, case_id, slot.start, now)
    assert case_ids[1] is not None
    _past_visit(s, worker, case_ids[1], CLIENTS[1][0], now)
    log.info("demo agency seeded", extra={"worker_id": worker.id})
    return True


# Yesterday's visit with James Carter, as the transcriber stored it; the server drafts its note
# when it starts (the same catch-up that files notes after a crash), so the demo has one to sign.
PAST_VISIT = (
    ("worker", 2.0, "Hi James, thanks for joining. How are things with the housing application?"),
    ("client", 7.5, "Not good. My landlord says we will be evicted at the end of the month."),
    ("client", 13.0, "I have the letter here, and I don't know who to call."),
    ("worker", 18.5, "I'm sorry. I will call the legal aid clinic today and send you their number."),
    ("worker", 25.0, "Can you send me a photo of the letter by Friday?"),
    ("client", 30.0, "Yes, I can do that tonight."),
    ("worker", 34.0, "Let's meet again next Tuesday at ten to go through the application together."),
    ("client", 40.5, "Okay. Thank you so much."),
)


def _past_visit(s: Session, worker: User, case_id: int, client_name: str, now: datetime) -> None:
    zone = hours.to_zone(DEMO_ZONE)
    day = now.astimezone(zone).date() - timedelta(days=1)
    start = datetime.combine(day, time(10, 30), zone).astimezone(UTC)
    assert worker.id is not None
    visit = Visit(
        case_id=case_id,
        worker_id=worker.id,
        status="ended",
        join_token=secrets.token_urlsafe(32),
        join_opens_at=start - timedelta(minutes=10),
        join_expires_at=start + timedelta(minutes=45),
        started_at=start,
        ended_at=start + timedelta(minutes=1),
        ended_by=worker.id,
        end_reason="ended by the worker",
        recording=True,
        created_at=start - timedelta(days=2),
    )
    s.add(visit)
    s.flush()
    assert visit.id is not None
    people = {
        "worker": VisitParticipant(
            visit_id=visit.id,
            kind="worker",
            user_id=worker.id,
            name=worker.name,
            via="staff",
            device="desktop",
        ),
        "client": VisitParticipant(
            visit_id=visit.id, kind="client", name=client_name, via="link", device="phone", consent=True
        ),
    }
    for p in people.values():
        p.state, p.joined_at, p.admitted_at, p.left_at = "left", start, start, start + timedelta(minutes=1)
        s.add(p)
    s.flush()
    for role, at, text in PAST_VISIT:
        end = at + len(text.split()) * 0.35
        transcripts.add_segment(s, visit.id, f"{role}:{people[role].id}", at, end, text, [])
