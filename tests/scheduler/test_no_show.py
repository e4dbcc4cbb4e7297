"""No-shows: a client who has not joined a while after the start is marked, told, and offered a new time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from caserecord.db import Database
from caserecord.models import Booking, ClientLink, Visit
from tests.conftest import AppMaker, Clock, Staff
from tests.scheduler.mailbox import booked, mailing_app, outbox_states, subject, text_part
from web.services import SERVICES

START = datetime(2026, 3, 5, 17, 0, tzinfo=UTC)


async def test_a_no_show_is_marked_the_worker_told_and_the_client_offered_a_new_time(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path, no_show_minutes=15) as (mailbox, client):
        sender = client.app[SERVICES].sender
        _, booking = await booked(client, staff.worker)
        clock.now = START + timedelta(minutes=14)
        assert (await sender.run_due(clock.now))["no_show"] == 0
        clock.now = START + timedelta(minutes=15)
        assert (await sender.run_due(clock.now))["no_show"] == 1
        assert (await sender.run_due(clock.now))["no_show"] == 0
        with database.session() as s:
            visit = s.exec(select(Visit).where(Visit.booking_id == booking["id"])).one()
            token = s.exec(select(ClientLink).where(ClientLink.booking_id == booking["id"])).one().token
        assert visit.status == "no_show"
        to_client = [m for m in mailbox.to("client@example.net") if subject(m).startswith("We missed you")]
        to_worker = mailbox.to(staff.worker.email)
        assert len(to_client) == 1 and len(to_worker) == 1
        assert f"/c/{token}" in text_part(to_client[0]) and "/c/" not in to_worker[0].as_string()
        assert subject(to_worker[0]).startswith("No-show: Ana Client")

        # The client's page offers a new time, even though the visit's time is past.
        clock.now = START + timedelta(hours=2)
        html = await (await client.get(f"/c/{token}")).text()
        assert "We missed you" in html and "Missed" in html
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
        assert csrf is not None and 'value="2026-03-10T09:00:00-07:00"' in html
        resp = await client.post(
            f"/c/{token}/reschedule",
            data={"start": "2026-03-10T09:00:00-07:00", "csrf_token": csrf.group(1)},
            allow_redirects=False,
        )
        assert resp.status == 303
        with database.session() as s:
            row = s.get(Booking, booking["id"])
            visit = s.exec(select(Visit).where(Visit.booking_id == booking["id"])).one()
        assert row is not None and row.start_at == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
        assert visit.status == "scheduled"
        keys = outbox_states(database, booking["id"])
        assert keys["rescheduled:email:s1"] == "pending" and keys["reminder_24h:email:s1"] == "pending"
