"""The supervisor's page: the team, and no team page for a worker."""

from __future__ import annotations

from datetime import date, datetime

from caserecord.audit import Actor
from caserecord.db import Database
from scheduler import bookings
from tests.conftest import Staff
from tests.helpers import Client
from tests.web.pages.helpers import (
    TUESDAY_0930,
    day_slots,
    get_page,
    open_case_in_db,
    publish_in_db,
    signed_in,
)


async def test_supervisor_page_lists_the_team(client: Client, staff: Staff, database: Database) -> None:
    publish_in_db(database, staff.worker)
    case_id = open_case_in_db(database, staff.worker)
    assert staff.worker.id is not None
    with database.session(write=True) as s:
        bookings.book(
            s,
            Actor(staff.worker.id, "worker"),
            staff.worker.id,
            case_id,
            datetime.fromisoformat(TUESDAY_0930),
            datetime.fromisoformat("2026-03-02T17:00:00+00:00"),
            bookings.JoinPolicy(),
        )
    await signed_in(client, staff.supervisor)
    page = await get_page(client, "/supervisor")
    assert "<h1>Your team</h1>" in page
    assert f'<a href="/worker?worker_id={staff.worker.id}">{staff.worker.name}</a>' in page
    assert f"?worker_id={staff.other_worker.id}" not in page and staff.other_worker.name not in page
    assert "1 office-hour block ·" in page and "1 visit in the next 7 days" in page
    assert "Next visit: <time" in page and "Tuesday 3 March, 09:30" in page
    # The supervisor may read a team member's calendar but not change it.
    worker_page = await get_page(client, f"/worker?worker_id={staff.worker.id}")
    assert f"<h1>{staff.worker.name}: office hours</h1>" in worker_page
    assert ("booked", "09:30–10:00") in day_slots(worker_page, date(2026, 3, 3))
    assert "Publish office hours" not in worker_page and "Cancel this visit" not in worker_page
    await get_page(client, f"/worker?worker_id={staff.other_worker.id}", 403)
    # A supervisor has no worker page of their own: /worker sends them to the team.
    resp = await client.get("/worker", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/supervisor"


async def test_a_worker_has_no_team_page(client: Client, staff: Staff) -> None:
    await signed_in(client, staff.worker)
    page = await get_page(client, "/supervisor", 403)
    assert "<h1>Not allowed</h1>" in page
