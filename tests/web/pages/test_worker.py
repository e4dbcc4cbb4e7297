"""The worker's page through the real server and database: the calendar and its forms, CSRF, access."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import quote

import pytest
from sqlmodel import select

from caserecord.db import Database
from caserecord.models import Booking, Visit
from tests.conftest import Clock, Staff
from tests.helpers import Client
from tests.web.pages.helpers import (
    PUBLISH_FORM,
    TUESDAY_0930,
    FormData,
    counts,
    csrf_of,
    day_slots,
    error,
    get_page,
    notice,
    open_case_in_db,
    post_form,
    publish_in_db,
    signed_in,
)


async def test_worker_page_shows_office_hours_and_the_coming_weeks(
    client: Client, staff: Staff, database: Database
) -> None:
    publish_in_db(database, staff.worker, title="Benefits questions")
    await signed_in(client, staff.worker)
    page = await get_page(client, "/worker")
    assert "<h1>Your office hours</h1>" in page
    # The clock says Monday 2 March 2026, 09:00 in Los Angeles; clocks go forward on Sunday 8 March.
    assert "Times are in <strong>America/Los_Angeles</strong> (PST, UTC−8)." in page
    assert "Clocks change on Sunday 8 March (to PDT, UTC−7)." in page
    assert "Clocks changed on Sunday 8 March: times are now PDT, UTC−7." in page  # told on Tuesday 10
    assert "Today, Monday 2 March" in page and "No visits booked today." in page
    assert "Coming 4 weeks" in page
    for label in (
        "This week, from Monday 2 March",
        "Next week, from Monday 9 March",
        "Week of Monday 23 March",
    ):
        assert label in page
    assert "Week of Monday 30 March" not in page
    # Week at a glance links to each day with office hours and says what it holds.
    assert '<a href="#day-2026-03-03">' in page and '<a href="#day-2026-03-04">' not in page
    tuesday = day_slots(page, date(2026, 3, 3))
    assert tuesday == [
        ("free", f"{h}–{e}")
        for h, e in zip(
            ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"],
            ["09:30", "10:00", "10:30", "11:00", "11:30", "12:00"],
            strict=True,
        )
    ]
    # The slots stay at 09:00 local after the change to summer time.
    assert day_slots(page, date(2026, 3, 10))[0] == ("free", "09:00–09:30")
    assert day_slots(page, date(2026, 3, 4)) == []
    # The published block, described in words.
    assert "Benefits questions" in page
    assert "Tuesday, Thursday, 09:00–12:00 (America/Los_Angeles)" in " ".join(page.split())
    assert "30-minute slots" in page
    # Fewer weeks on request.
    two = await get_page(client, "/worker?weeks=2")
    assert "Coming 2 weeks" in two and "Week of Monday 16 March" not in two


async def test_not_bookable_slots_say_why(
    client: Client, staff: Staff, database: Database, clock: Clock
) -> None:
    publish_in_db(database, staff.worker, weekdays=("MO", "TU"))
    clock.advance(minutes=50)  # Monday 09:50: 09:00 and 09:30 have begun, 10:00 and 10:30 are too soon
    await signed_in(client, staff.worker)
    page = await get_page(client, "/worker")
    states = day_slots(page, date(2026, 3, 2))
    assert [s for s, _ in states] == ["closed"] * 4 + ["free"] * 2
    assert "In the past" in page and "Less than 60 minutes&#39; notice" in page
    assert ">Not bookable<" in page and ">Free<" in page


async def test_publish_book_and_cancel_through_the_forms(
    client: Client, staff: Staff, database: Database
) -> None:
    await signed_in(client, staff.worker)
    empty = await get_page(client, "/worker")
    assert "No office hours in these weeks yet." in empty and "Publish office hours" in empty

    page = await post_form(client, "/worker/office-hours", PUBLISH_FORM)
    assert notice(page) == "Office hours published: Tuesday, Thursday, 09:00–12:00."
    assert ("free", "09:30–10:00") in day_slots(page, date(2026, 3, 3))
    assert counts(database) == (1, 0, 0)
    assert "There are no open cases to book a visit for." in page

    case_id = open_case_in_db(database, staff.worker, "Maria Lopez")
    # A free slot's "Book" link opens the booking form with that time chosen and the client list focused.
    page = await get_page(client, "/worker")
    # (No #fragment: browsers skip autofocus when the address names a fragment.)
    assert f'href="/worker?book={TUESDAY_0930.replace(":", "%3A")}"' in page
    chosen = await get_page(client, f"/worker?book={TUESDAY_0930}")
    assert f'<option value="{TUESDAY_0930}" selected>Tue 3 Mar, 09:30–10:00</option>' in chosen
    assert '<select id="book-case" name="case_id" required autofocus>' in chosen

    page = await post_form(client, "/worker/bookings", [("start", TUESDAY_0930), ("case_id", str(case_id))])
    assert notice(page) == "Booked Maria Lopez for Tuesday 3 March, 09:30."
    assert day_slots(page, date(2026, 3, 3))[:3] == [
        ("free", "09:00–09:30"),
        ("booked", "09:30–10:00"),
        ("free", "10:00–10:30"),
    ]
    with database.session() as s:
        booking = s.exec(select(Booking).where(Booking.status == "booked")).one()
        visit = s.exec(select(Visit).where(Visit.booking_id == booking.id)).one()
    assert booking.case_id == case_id and visit.kiosk_code
    assert f"Kiosk code <strong>{visit.kiosk_code}</strong>" in page
    assert visit.kiosk_code not in notice(page)  # a code in the redirect would stay in the history
    assert "1 booked, 5 free" in page
    assert f'<option value="{TUESDAY_0930}"' not in page  # no longer offered

    # The same slot again: refused, with the reason on the page.
    again = await post_form(client, "/worker/bookings", [("start", TUESDAY_0930), ("case_id", str(case_id))])
    assert "already taken" in error(again)
    assert counts(database) == (1, 0, 1)

    page = await post_form(client, "/worker/bookings/cancel", [("booking_id", str(booking.id))])
    assert notice(page) == "Cancelled Maria Lopez's visit on Tuesday 3 March, 09:30. The slot is free again."
    assert ("free", "09:30–10:00") in day_slots(page, date(2026, 3, 3))
    assert counts(database) == (1, 0, 0)


async def test_cancel_a_date_through_the_form(client: Client, staff: Staff, database: Database) -> None:
    block = publish_in_db(database, staff.worker)
    case_id = open_case_in_db(database, staff.worker)
    await signed_in(client, staff.worker)
    thursday_10 = "2026-03-05T10:00:00-08:00"
    await post_form(client, "/worker/bookings", [("start", thursday_10), ("case_id", str(case_id))])
    assert counts(database) == (1, 0, 1)
    page = await post_form(
        client,
        "/worker/office-hours/cancel-date",
        [("block_id", str(block.id)), ("date", "2026-03-05"), ("reason", "Training day")],
    )
    assert notice(page) == "Thursday 5 March cancelled; 1 booking(s) cancelled."
    assert day_slots(page, date(2026, 3, 5)) == []
    assert '<a href="#day-2026-03-05">' not in page
    assert "Cancelled dates: Thursday 5 March (Training day)" in page
    assert counts(database) == (1, 1, 0)
    # A date the block is not held on is refused with a reason.
    page = await post_form(
        client, "/worker/office-hours/cancel-date", [("block_id", str(block.id)), ("date", "2026-03-04")]
    )
    assert "is not held on 2026-03-04" in error(page)
    assert counts(database) == (1, 1, 0)


async def test_withdraw_office_hours_through_the_form(
    client: Client, staff: Staff, database: Database
) -> None:
    block = publish_in_db(database, staff.worker)
    await signed_in(client, staff.worker)
    page = await post_form(client, "/worker/office-hours/delete", [("block_id", str(block.id))])
    assert notice(page) == "Office hours withdrawn; 0 booking(s) cancelled."
    assert "No office hours in these weeks yet." in page
    assert counts(database) == (0, 0, 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weekdays": None}, "Choose at least one day of the week"),
        ({"end_time": "08:00"}, "end"),
        ({"timezone": "Mars/Olympus_Mons"}, "Unknown time zone 'Mars/Olympus_Mons'"),
        ({"slot_minutes": "0"}, "Slot length must be a whole number from 5 to 480"),
        ({"starts_on": "soon"}, "First day: 'soon' is not a date like 2026-03-10"),
    ],
)
async def test_publish_mistakes_are_explained_and_change_nothing(
    client: Client, staff: Staff, database: Database, change: dict[str, str | None], message: str
) -> None:
    await signed_in(client, staff.worker)
    form = [(k, v) for k, v in PUBLISH_FORM if k not in change]
    form += [(k, v) for k, v in change.items() if v is not None]
    page = await post_form(client, "/worker/office-hours", form)
    assert message.lower() in error(page).lower()
    assert counts(database) == (0, 0, 0)


async def test_form_posts_without_the_right_csrf_token_are_refused(
    client: Client, staff: Staff, database: Database
) -> None:
    block = publish_in_db(database, staff.worker)
    case_id = open_case_in_db(database, staff.worker)
    await signed_in(client, staff.worker)
    page = await post_form(client, "/worker/bookings", [("start", TUESDAY_0930), ("case_id", str(case_id))])
    booking_id = re.search(r'name="booking_id" value="(\d+)"', page)
    assert booking_id is not None
    before = counts(database)
    assert before == (1, 0, 1)
    forms: list[tuple[str, FormData]] = [
        ("/worker/office-hours", PUBLISH_FORM),
        ("/worker/bookings", [("start", "2026-03-05T09:00:00-08:00"), ("case_id", str(case_id))]),
        ("/worker/bookings/cancel", [("booking_id", booking_id.group(1))]),
        ("/worker/office-hours/cancel-date", [("block_id", str(block.id)), ("date", "2026-03-03")]),
        ("/worker/office-hours/delete", [("block_id", str(block.id)), ("cancel_bookings", "yes")]),
        ("/sign-out", []),
    ]
    for path, data in forms:
        for token in ([], [("csrf_token", "forged")], [("csrf_token", "")]):
            resp = await client.post(path, data=[*token, *data], allow_redirects=False)
            body = await resp.text()
            assert resp.status == 403, (path, token, resp.status)
            assert resp.content_type == "text/html" and "<h1>Form expired</h1>" in body, body[:300]
    assert counts(database) == before
    await get_page(client, "/worker")  # still signed in: the forged sign-out did nothing


async def test_cross_site_form_post_is_refused(client: Client, staff: Staff, database: Database) -> None:
    await signed_in(client, staff.worker)
    token = csrf_of(await get_page(client, "/worker"))
    resp = await client.post(
        "/worker/office-hours",
        data=[("csrf_token", token), *PUBLISH_FORM],
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert counts(database) == (0, 0, 0)


async def test_a_worker_cannot_see_another_teams_worker_page(
    client: Client, staff: Staff, database: Database
) -> None:
    publish_in_db(database, staff.other_worker, title="Other team's hours")
    await signed_in(client, staff.worker)
    page = await get_page(client, f"/worker?worker_id={staff.other_worker.id}", 403)
    assert "<h1>Not allowed</h1>" in page
    assert f"Worker {staff.other_worker.id} is not in your team" in page
    assert "Other team&#39;s hours" not in page and staff.other_worker.timezone not in page
    assert "Sign out" in page  # still the signed-in frame, with a way back
    assert '<a href="/worker">Back to your office hours</a>' in page
    await get_page(client, "/worker?worker_id=abc", 404)
    await get_page(client, "/worker?worker_id=²", 404)  # a digit to str.isdigit, not an id
    # Writing to it with a valid token is refused too, and changes nothing.
    token = csrf_of(await get_page(client, "/worker"))
    resp = await client.post(
        f"/worker/office-hours?worker_id={staff.other_worker.id}",
        data=[("csrf_token", token), *PUBLISH_FORM],
    )
    assert resp.status == 403
    assert counts(database) == (1, 0, 0)


async def test_walk_in_hours_show_as_a_queue(client: Client, staff: Staff, database: Database) -> None:
    publish_in_db(database, staff.worker, weekdays=("WE",), mode="walk_in")
    open_case_in_db(database, staff.worker)
    await signed_in(client, staff.worker)
    page = await get_page(client, "/worker")
    assert day_slots(page, date(2026, 3, 4)) == [("walk_in", "09:00–12:00")]
    assert "Clients queue; no booking needed" in page
    assert "No free slots in these weeks." in page


async def test_an_admin_books_for_a_worker_through_the_form(
    client: Client, staff: Staff, database: Database
) -> None:
    publish_in_db(database, staff.other_worker)
    case_id = open_case_in_db(database, staff.other_worker, "Sam Client")
    await signed_in(client, staff.admin)
    team = await get_page(client, "/supervisor")
    assert staff.worker.name in team and staff.other_worker.name in team
    path = f"/worker?worker_id={staff.other_worker.id}"
    page = await get_page(client, path)
    assert f"<h1>{staff.other_worker.name}: office hours</h1>" in page
    assert "Times are in <strong>Europe/London</strong> (GMT, UTC)." in page
    assert f'action="/worker/bookings?worker_id={staff.other_worker.id}"' in page
    start = "2026-03-03T09:00:00+00:00"
    booking_link = f"/worker?worker_id={staff.other_worker.id}&amp;book={quote(start, safe='')}"
    assert f'href="{booking_link}"' in page
    token = csrf_of(page)
    resp = await client.post(
        f"/worker/bookings?worker_id={staff.other_worker.id}",
        data={"csrf_token": token, "start": start, "case_id": str(case_id)},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"].startswith(f"{path}&notice=")
    page = await get_page(client, resp.headers["Location"])
    assert notice(page) == "Booked Sam Client for Tuesday 3 March, 09:00."
    assert day_slots(page, date(2026, 3, 3))[0] == ("booked", "09:00–09:30")
