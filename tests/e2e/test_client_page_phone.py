"""The client's own page on a 390 px phone in headless Chromium: readable, labelled, and it works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, BrowserContext, expect
from sqlmodel import select

from caserecord.audit import Actor
from caserecord.cases import create_case
from caserecord.db import Database
from caserecord.models import Booking, ClientLink
from scheduler import blocks, bookings
from tests.conftest import Clock, add_user
from tests.e2e.helpers import block_spec, plain_chromium, serve
from tests.e2e.test_browser import PHONE_CONTEXT, check_page

LA = ZoneInfo("America/Los_Angeles")


@pytest.fixture
async def client_page(sqlite_db: Database, clock: Clock, tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    """Serve the app with one booked visit; yield its client's page URL and the booking id."""
    worker = add_user(sqlite_db, "wren.worker@agency.test", "worker", tz="America/Los_Angeles")
    assert worker.id is not None
    me = Actor(worker.id, "worker")
    spec = block_spec(("TU", "TH"), time(9), time(12), date(2026, 3, 1))
    with sqlite_db.session(write=True) as s:
        case, _ = create_case(
            s, me, worker_id=worker.id, client_name="Maria Lopez", email="maria@example.net"
        )
        blocks.create_block(s, me, worker.id, spec)
        assert case.id is not None
        booking, _ = bookings.book(
            s, me, worker.id, case.id, datetime(2026, 3, 5, 9, 0, tzinfo=LA), clock.now
        )
        token = s.exec(select(ClientLink).where(ClientLink.booking_id == booking.id)).one().token
    assert booking.id is not None
    async with serve(sqlite_db, clock, tmp_path, outbox_sender=False) as base:
        yield f"{base}/c/{token}", booking.id


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with plain_chromium() as chromium:
        yield chromium


async def phone_in(browser: Browser, zone: str, javascript: bool = True) -> BrowserContext:
    """Open a 390 px phone whose clock is in `zone`."""
    return await browser.new_context(**PHONE_CONTEXT, timezone_id=zone, java_script_enabled=javascript)


def start_of(db: Database, booking_id: int) -> datetime:
    """The booking's start as the database holds it."""
    with db.session() as s:
        booking = s.get(Booking, booking_id)
        assert booking is not None
        return booking.start_at


async def test_the_client_moves_their_visit_on_a_phone(
    client_page: tuple[str, int], browser: Browser, sqlite_db: Database
) -> None:
    url, booking_id = client_page
    context = await phone_in(browser, "America/Los_Angeles")  # the worker's zone: the times read the same
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(url)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your visit with Wren Worker")
    await check_page(page, "client-page")
    await page.get_by_label("Thursday 5 March 2026, 10:00").check()
    await page.get_by_role("button", name="Move my visit").click()
    await expect(page.get_by_role("status")).to_have_text("Your visit has moved.")
    await check_page(page, "client-page-moved")
    await context.close()
    assert start_of(sqlite_db, booking_id) == datetime(2026, 3, 5, 10, 0, tzinfo=LA)


async def test_a_phone_in_another_zone_sees_its_own_times_and_without_script_the_workers(
    client_page: tuple[str, int], browser: Browser, sqlite_db: Database
) -> None:
    url, booking_id = client_page
    # Without JavaScript: the worker's zone, named.
    plain = await phone_in(browser, "America/New_York", javascript=False)
    page = await plain.new_page()
    await page.goto(url)
    when = page.locator("time[data-local]").first
    await expect(when).to_have_text("Thursday 5 March 2026, 09:00")
    await expect(page.locator(".zone")).to_have_text("(America/Los_Angeles)")
    await plain.close()

    # A phone in New York: 09:00 in Los Angeles is 12:00 there, and the page says so.
    context = await phone_in(browser, "America/New_York")
    context.set_default_timeout(10_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    when = page.locator("time[data-local]").first
    await expect(when).to_have_text("Thursday 5 March 2026, 12:00")
    await expect(when).to_have_attribute("datetime", "2026-03-05T17:00:00Z")
    await expect(page.locator(".zone")).to_have_text("(America/New_York)")
    await expect(page.locator("#zone-note")).to_contain_text("your device's time zone, America/New_York")
    await check_page(page, "client-page-new-york")
    # The 10:00 slot in Los Angeles is offered as 13:00 in New York; choosing it books 10:00 there.
    await page.get_by_label("Thursday 5 March 2026, 13:00").check()
    await page.get_by_role("button", name="Move my visit").click()
    await expect(page.get_by_role("status")).to_have_text("Your visit has moved.")
    await expect(page.locator("time[data-local]").first).to_have_text("Thursday 5 March 2026, 13:00")
    assert errors == []
    await context.close()
    assert start_of(sqlite_db, booking_id) == datetime(2026, 3, 5, 10, 0, tzinfo=LA)
