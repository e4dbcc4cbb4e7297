"""A visit from the staff side over HTTP: what the uplink refuses, and what it still records."""

from __future__ import annotations

from sqlmodel import col, select

from caserecord.models import AuditEvent
from tests.conftest import AppMaker, Clock, Staff
from tests.helpers import problem, tuesday_visit
from web.services import SERVICES

OFFER = {"type": "offer", "sdp": "v=0"}


async def test_an_uplink_before_the_call_is_refused_and_the_worker_opening_it_is_audited(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client, w, booking = await tuesday_visit(make_client, staff, clock, "Rosa Diaz")
    visit_id = booking["visit_id"]
    refused = await problem(await client.post(f"/api/visits/{visit_id}/uplink", json=OFFER, headers=w), 409)
    assert "only during the call" in refused["detail"]
    with client.app[SERVICES].db.session() as s:
        opened = s.exec(
            select(AuditEvent).where(AuditEvent.action == "visit.open", col(AuditEvent.entity_id) == visit_id)
        ).all()
    assert [e.actor_id for e in opened] == [staff.worker.id]  # the refusal rolled nothing back
