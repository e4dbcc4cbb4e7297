"""Helpers of the page tests: sign in, read a page, post its forms, read what it says."""

from __future__ import annotations

import html
import re
from datetime import date, time
from typing import Any

from sqlmodel import col, select

from caserecord.audit import Actor
from caserecord.cases import create_case
from caserecord.db import Database
from caserecord.models import Booking, OfficeHourBlock, OfficeHourException, User
from scheduler import blocks, hours
from tests.conftest import PASSWORD
from tests.helpers import Client

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SLOT = re.compile(r'<li class="slot (\w+)">\s*<span class="time">([^<]+)</span>')
TUESDAY_0930 = "2026-03-03T09:30:00-08:00"
FormData = list[tuple[str, str]]


async def sign_in(client: Client, email: str, password: str = PASSWORD, next_path: str = "") -> Any:
    """Post the sign-in form; return the (unfollowed) response."""
    form = {"email": email, "password": password, "next": next_path}
    return await client.post("/", data=form, allow_redirects=False)


async def signed_in(client: Client, user: User) -> None:
    resp = await sign_in(client, user.email)
    assert resp.status == 303, await resp.text()


async def get_page(client: Client, path: str, status: int = 200) -> str:
    resp = await client.get(path, allow_redirects=False)
    text = await resp.text()
    assert resp.status == status, f"{resp.status} != {status}: {text[:500]}"
    if status == 200:
        assert resp.content_type == "text/html"
    return text


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


async def post_form(client: Client, path: str, data: FormData, *, page: str = "/worker") -> str:
    """Post a form with the CSRF token scraped from `page`; follow the redirect back; return the page."""
    token = csrf_of(await get_page(client, page))
    resp = await client.post(path, data=[("csrf_token", token), *data], allow_redirects=False)
    assert resp.status == 303, f"{resp.status}: {(await resp.text())[:500]}"
    return await get_page(client, resp.headers["Location"])


def notice(page: str) -> str:
    found = re.search(r'<p[^>]*class="notice" role="status"[^>]*>([^<]*)</p>', page)
    assert found is not None, "no notice on the page"
    return html.unescape(found.group(1))


def error(page: str) -> str:
    found = re.search(r'<p[^>]*class="error" role="alert"[^>]*>([^<]*)</p>', page)
    assert found is not None, "no error on the page"
    return html.unescape(found.group(1))


def day_slots(page: str, day: date) -> list[tuple[str, str]]:
    """Return (state, time) of each slot in the calendar's section for local date `day`."""
    found = re.search(rf'<section class="day" id="day-{day.isoformat()}".*?</section>', page, re.S)
    if found is None:
        return []
    return [(state, html.unescape(t)) for state, t in SLOT.findall(found.group(0))]


def publish_in_db(db: Database, worker: User, **kw: Any) -> OfficeHourBlock:
    """Publish Tuesday and Thursday mornings, 30-minute slots, directly in the case record."""
    assert worker.id is not None
    spec = hours.BlockSpec(
        weekdays=kw.pop("weekdays", ("TU", "TH")),
        start_time=time(9),
        end_time=time(12),
        timezone=worker.timezone,
        slot_minutes=30,
        mode=kw.pop("mode", "booked"),
        starts_on=date(2026, 3, 1),
        min_notice_minutes=60,
        **kw,
    )
    with db.session(write=True) as s:
        block = blocks.create_block(s, Actor(worker.id, "worker"), worker.id, spec)
        s.expunge(block)
        return block


def open_case_in_db(db: Database, worker: User, name: str = "Client A") -> int:
    assert worker.id is not None
    with db.session(write=True) as s:
        case, _ = create_case(s, Actor(worker.id, "worker"), worker_id=worker.id, client_name=name)
        assert case.id is not None
        return case.id


def counts(db: Database) -> tuple[int, int, int]:
    """Return how many live blocks, exceptions and active bookings there are."""
    with db.session() as s:
        blocks = len(s.exec(select(OfficeHourBlock).where(col(OfficeHourBlock.deleted_at).is_(None))).all())
        excs = len(s.exec(select(OfficeHourException)).all())
        booked = len(s.exec(select(Booking).where(Booking.status == "booked")).all())
    return blocks, excs, booked


PUBLISH_FORM: FormData = [
    ("weekdays", "TU"),
    ("weekdays", "TH"),
    ("start_time", "09:00"),
    ("end_time", "12:00"),
    ("mode", "booked"),
    ("slot_minutes", "30"),
    ("starts_on", "2026-03-02"),
    ("timezone", "America/Los_Angeles"),
    ("buffer_minutes", "0"),
    ("until", ""),
    ("min_notice_minutes", "60"),
    ("max_days_ahead", "60"),
    ("title", "Benefits questions"),
]
