"""A caseworker on a phone, in headless Chromium, against the real server and a real SQLite file.

Screenshots land in `test-artifacts/` (gitignored) for a person to look at.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from caserecord.audit import Actor
from caserecord.cases import create_case
from caserecord.db import Database
from caserecord.models import User
from tests.conftest import PASSWORD, Clock, add_user
from tests.e2e.helpers import ARTIFACTS, plain_chromium, serve

PHONE: ViewportSize = {"width": 390, "height": 844}
# The browser context of a phone: 390 x 844, touch, a 24-hour clock.
PHONE_CONTEXT: dict[str, Any] = {
    "viewport": PHONE,
    "is_mobile": True,
    "has_touch": True,
    "locale": "en-GB",
    "device_scale_factor": 1,
}

# Runs in the page: every form control that no label, aria-label or aria-labelledby names.
UNLABELLED_JS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML)"""
NAMELESS_JS = """() => [...document.querySelectorAll('a[href], button, summary')]
  .filter(el => !el.textContent.trim() && !el.getAttribute('aria-label'))
  .map(el => el.outerHTML)"""
HEADINGS_JS = "() => [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => Number(h.tagName[1]))"
# The accessible name a screen reader would give the focused control (enough for these pages).
FOCUSED_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return '';
  const label = el.labels && el.labels[0];
  const name = el.getAttribute('aria-label') || (label ? label.textContent : el.textContent) || '';
  return name.trim().replace(/\\s+/g, ' ');
}"""


@dataclass
class Site:
    """The running server and the caseworker it knows."""

    base: str
    worker: User


@pytest.fixture
async def site(sqlite_db: Database, clock: Clock, tmp_path: Path) -> AsyncIterator[Site]:
    """Serve the real app on a free port of 127.0.0.1, with one caseworker who has two open cases."""
    worker = add_user(sqlite_db, "wren.worker@agency.test", "worker", tz="America/Los_Angeles")
    assert worker.id is not None
    with sqlite_db.session(write=True) as s:
        me = Actor(worker.id, "worker")
        create_case(s, me, worker_id=worker.id, client_name="Maria Lopez", title="SNAP renewal")
        create_case(s, me, worker_id=worker.id, client_name="James Carter", title="Housing application")
    async with serve(sqlite_db, clock, tmp_path) as base:
        yield Site(base, worker)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with plain_chromium() as chromium:
        yield chromium


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[Page]:
    """A phone-sized page (390 x 844, touch, 24-hour clock)."""
    context = await browser.new_context(**PHONE_CONTEXT)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    yield page
    await context.close()


async def check_page(page: Page, name: str) -> None:
    """Check what every page must get right on a phone, and save a screenshot to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page is {width}px wide on a {PHONE['width']}px phone"
    assert await page.evaluate(UNLABELLED_JS) == [], f"{name}: form controls without a label"
    assert await page.evaluate(NAMELESS_JS) == [], f"{name}: links or buttons without a name"
    levels: list[int] = await page.evaluate(HEADINGS_JS)
    assert levels[:1] == [1] and levels.count(1) == 1, f"{name}: one h1, first: {levels}"
    jumps = [(a, b) for a, b in itertools.pairwise(levels) if b > a + 1]
    assert not jumps, f"{name}: headings skip a level: {levels}"
    assert await page.evaluate("document.documentElement.lang") == "en"
    await expect(page.locator("main")).to_have_count(1)


async def focused(page: Page) -> str:
    name: str = await page.evaluate(FOCUSED_JS)
    return name


async def tab_to(page: Page, name: str, limit: int = 60) -> None:
    """Press Tab until the control called `name` has the focus, as a keyboard user would."""
    seen = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        now = await focused(page)
        if now == name:
            return
        seen.append(now)
    raise AssertionError(f"Tab never reached {name!r}; it went through {seen}")


async def tab_and(page: Page, name: str, *, press: str = "", text: str = "") -> None:
    """Tab to the control called `name`, then press the key `press` and type `text` (either, or both)."""
    await tab_to(page, name)
    if press:
        await page.keyboard.press(press)
    if text:
        await page.keyboard.type(text)


async def test_a_caseworker_on_a_phone(site: Site, phone: Page, browser: Browser) -> None:
    page = phone
    # Signed out, the worker page sends you to sign in and back.
    await page.goto(f"{site.base}/worker")
    assert page.url == f"{site.base}/?next=/worker"
    await expect(page).to_have_title("Sign in · Lastmile")
    await check_page(page, "01-sign-in")

    # The skip link is the first stop, visible when focused, and moves focus to the content.
    await page.keyboard.press("Tab")
    assert await focused(page) == "Skip to content"
    box = await page.get_by_role("link", name="Skip to content").bounding_box()
    assert box is not None and box["y"] >= 0 and box["x"] >= 0
    await page.keyboard.press("Enter")
    assert await page.evaluate("location.hash") == "#main"
    assert await page.evaluate("document.activeElement.id") == "main"
    await page.keyboard.press("Tab")
    assert await focused(page) == "E-mail"

    # Typing into the labelled fields; a wrong password is explained and the form kept.
    await page.get_by_label("E-mail").press_sequentially(site.worker.email)
    await page.get_by_label("Password").press_sequentially("not my password")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    await expect(page.get_by_label("E-mail")).to_have_value(site.worker.email)
    assert await focused(page) == "Password"  # straight back to the field to fix
    await check_page(page, "02-sign-in-wrong-password")
    await page.get_by_label("Password").press_sequentially(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{site.base}/worker")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your office hours")
    await expect(page.get_by_text("Times are in America/Los_Angeles (PST, UTC−8).")).to_be_visible()
    await check_page(page, "03-worker-no-hours")

    # Publish Tuesday and Thursday, 10:00 to 12:00, 20-minute slots, with the keyboard only.
    await page.locator("body").focus()
    await tab_and(page, "Tuesday", press="Space")
    await tab_and(page, "Thursday", press="Space")
    await tab_and(page, "From", text="1000")
    await tab_and(page, "Slot length (minutes)", press="Control+A", text="20")
    await tab_and(page, "More options", press="Enter")
    await tab_and(page, "Title (optional)", text="Benefits questions")
    await tab_and(page, "Publish", press="Enter")
    await page.wait_for_url(re.compile(r"/worker\?notice="))
    status = page.get_by_role("status")
    await expect(status).to_have_text("Office hours published: Tuesday, Thursday, 10:00–12:00.")
    await expect(status).to_be_focused()  # so a screen reader reads the outcome first

    # The coming weeks: each day says what it holds in words, not only in colour.
    glance = page.get_by_role("navigation", name="Weeks at a glance")
    await expect(glance.get_by_role("link")).to_have_count(8)
    await expect(glance.get_by_role("link").first).to_have_text(re.compile(r"Tue\s+3\s+March:\s+6 free"))
    tuesday = page.locator("#day-2026-03-03")
    await expect(tuesday.get_by_role("heading", level=4)).to_have_text(
        re.compile(r"Tuesday 3 March\s+6 free")
    )
    await expect(tuesday.locator(".slot .state")).to_have_text(["Free"] * 6)
    await expect(
        page.get_by_text("Clocks changed on Sunday 8 March: times are now PDT, UTC−7.")
    ).to_be_visible()
    await check_page(page, "04-worker-calendar")

    # Book 10:20 on Tuesday for Maria: the slot's link opens the form with the time chosen.
    await tuesday.get_by_role("link", name="Book 10:20–10:40 on Tuesday 3 March").click()
    await expect(page.get_by_label("Free slot")).to_have_value("2026-03-03T10:20:00-08:00")
    await expect(page.get_by_label("Client", exact=True)).to_be_focused()
    await page.locator("#book").screenshot(path=ARTIFACTS / "05-book-form.png")
    await page.get_by_label("Client", exact=True).select_option(label="Maria Lopez (case 1: SNAP renewal)")
    await page.get_by_role("button", name="Book", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Booked Maria Lopez for Tuesday 3 March, 10:20.")
    tuesday = page.locator("#day-2026-03-03")
    await expect(tuesday.locator(".slot .state")).to_have_text(["Free", "Booked"] + ["Free"] * 4)
    booked = tuesday.locator(".slot.booked")
    await expect(booked).to_contain_text("Maria Lopez")
    await expect(booked).to_contain_text(re.compile(r"Kiosk code \d{6}"))
    await check_page(page, "06-worker-booked")
    await tuesday.screenshot(path=ARTIFACTS / "07-booked-day.png")

    # Cancelling asks for a second, deliberate step (and an optional reason).
    await booked.get_by_text("Cancel…").click()
    await booked.get_by_label("Reason for Maria Lopez (optional)").fill("Client asked to move it")
    await booked.get_by_role("button", name="Cancel this visit").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Cancelled Maria Lopez's visit on Tuesday 3 March, 10:20. The slot is free again."
    )
    await expect(page.locator("#day-2026-03-03 .slot .state")).to_have_text(["Free"] * 6)
    await check_page(page, "08-worker-cancelled")

    # The same calendar on a laptop, for the record.
    laptop = await browser.new_context(
        viewport={"width": 1280, "height": 900}, storage_state=await page.context.storage_state()
    )
    wide = await laptop.new_page()
    await wide.goto(f"{site.base}/worker")
    await wide.screenshot(path=ARTIFACTS / "09-worker-laptop.png", full_page=True)
    await laptop.close()


async def test_error_pages_on_a_phone(site: Site, phone: Page) -> None:
    page = phone
    await page.goto(f"{site.base}/")
    await page.get_by_label("E-mail").fill(site.worker.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{site.base}/worker")
    response: Any = await page.goto(f"{site.base}/worker?worker_id=999")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    await expect(page.get_by_role("link", name="Back to your office hours")).to_be_visible()
    await check_page(page, "10-not-found")
