"""The client's own page from the link in their messages, and the admin's outbox page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from caserecord.db import Database
from caserecord.models import Booking, ClientLink
from tests.conftest import AppMaker, Clock, Staff, login
from tests.helpers import Client
from tests.scheduler.mailbox import booked, mailing_app, outbox_rows
from web.services import SERVICES

START = datetime(2026, 3, 5, 17, 0, tzinfo=UTC)


def link_of(db: Database, booking_id: int) -> str:
    with db.session() as s:
        link = s.exec(select(ClientLink).where(ClientLink.booking_id == booking_id)).one()
        return link.token


def booking_row(db: Database, booking_id: int) -> Booking:
    with db.session() as s:
        row = s.get(Booking, booking_id)
        assert row is not None
        return row


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found is not None, html
    return found.group(1)


async def page(client: Client, token: str, status: int = 200) -> str:
    resp = await client.get(f"/c/{token}")
    html = await resp.text()
    assert resp.status == status, html
    return html


async def client_link(
    make_client: AppMaker,
    staff: Staff,
    database: Database,
    tmp_path: Path,
    language: str = "en",
    **settings: Any,
) -> tuple[Client, dict[str, Any], str]:
    """Start the app (sender off) and book Ana Client (in `language`); return it, the booking, the link."""
    client = await make_client(outbox_sender=False, data_dir=tmp_path, **settings)
    _, booking = await booked(client, staff.worker, language=language)
    return client, booking, link_of(database, booking["id"])


async def test_the_client_sees_moves_and_cancels_their_visit(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    client, booking, token = await client_link(make_client, staff, database, tmp_path)
    assert token not in booking["client_join_url"]
    html = await page(client, token)
    assert "Your visit with Worker" in html and "Thursday 5 March 2026, 09:00" in html
    assert "America/Los_Angeles" in html and "Booked" in html and "Join visit</button>" not in html
    assert 'name="viewport" content="width=device-width' in html
    assert 'value="2026-03-05T09:30:00-08:00"' in html and 'value="2026-03-05T09:00:00-08:00"' not in html

    # A form from elsewhere (no or a wrong token) changes nothing.
    resp = await client.post(f"/c/{token}/reschedule", data={"start": "2026-03-05T09:30:00-08:00"})
    assert resp.status == 422 and "nothing was changed" in await resp.text()
    for bad in ("2026-03-05T09:10:00-08:00", "2026-03-05T09:30:00", "tomorrow"):
        refused = await client.post(
            f"/c/{token}/reschedule", data={"start": bad, "csrf_token": csrf_of(html)}
        )
        assert refused.status == 422 and "choose one of the times listed" in (await refused.text()).lower()
    moved = await client.post(
        f"/c/{token}/reschedule",
        data={"start": "2026-03-05T09:30:00-08:00", "csrf_token": csrf_of(html)},
        allow_redirects=False,
    )
    assert moved.status == 303 and moved.headers["Location"] == f"/c/{token}?done=moved"
    row = booking_row(database, booking["id"])
    assert row.start_at == START + timedelta(minutes=30) and row.sequence == 1
    # The old page's form is now out of date: a second post from it is refused.
    stale = await client.post(f"/c/{token}/cancel", data={"csrf_token": csrf_of(html)}, allow_redirects=False)
    assert stale.status == 422 and booking_row(database, booking["id"]).status == "booked"
    html = await page(client, f"{token}?done=moved")
    assert "Your visit has moved." in html and "09:30" in html
    gone = await client.post(f"/c/{token}/cancel", data={"csrf_token": csrf_of(html)}, allow_redirects=False)
    assert gone.status == 303
    assert booking_row(database, booking["id"]).status == "cancelled"
    html = await page(client, token)
    assert "Cancelled" in html and "Move my visit" not in html


async def test_changes_stop_at_the_cutoff_and_the_join_button_shows_when_it_is_time(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    client, booking, token = await client_link(make_client, staff, database, tmp_path, client_cutoff_hours=24)
    html = await page(client, token)
    clock.now = START - timedelta(hours=23)
    resp = await client.post(f"/c/{token}/cancel", data={"csrf_token": csrf_of(html)})
    assert resp.status == 422 and "up to 24 hours before" in await resp.text()
    html = await page(client, token)
    assert "Move my visit" not in html and "call your worker" in html
    clock.now = START - timedelta(minutes=10)
    html = await page(client, token)
    assert f'action="/j/{booking["client_join_url"].rsplit("/", 1)[1]}"' in html
    clock.now = START + timedelta(minutes=30, hours=24, seconds=1)
    html = await page(client, token, 410)
    assert "expired" in html
    await page(client, "not-a-real-token-at-all-xxxxxxxx", 410)


async def test_the_admin_sees_failed_and_waiting_messages(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path, "554 5.7.1 Rejected", outbox_max_attempts=1) as (_, client):
        await booked(client, staff.worker)
        await client.app[SERVICES].sender.run_due(clock.now)
    admin = await login(client, staff.admin.email)
    resp = await client.get("/admin/outbox", headers=admin)
    html = await resp.text()
    assert resp.status == 200, html
    assert "Failed (1)" in html and "554" in html and "invitation by email to client@example.net" in html
    assert "reminder_24h by sms" in html and "SMS file outbox (1)" in html
    worker = await login(client, staff.worker.email)
    assert (await client.get("/admin/outbox", headers=worker)).status == 403
    anonymous = await client.get("/admin/outbox", allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"].startswith("/?next=")
    assert any(r.state == "failed" for r in outbox_rows(database))


async def test_a_spanish_speaking_client_sees_their_page_in_spanish(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    client, _, token = await client_link(make_client, staff, database, tmp_path, language="es")
    resp = await client.get(f"/c/{token}")
    html = await resp.text()
    assert resp.status == 200 and '<html lang="es">' in html
    assert "Su cita con Worker" in html and "Reservada" in html and "Cambiar mi cita" in html
    assert "Cancelar mi cita" in html and "Your visit" not in html and "Move my visit" not in html
    # The worker's zone, named, and the instant for the device's zone to take over.
    assert '<time datetime="2026-03-05T17:00:00Z" data-local>jueves 5 de marzo de 2026, 09:00</time>' in html
    assert "(America/Los_Angeles)" in html and "la zona horaria de su trabajador" in html
    assert '<time datetime="2026-03-05T17:30:00Z" data-local>jueves 5 de marzo de 2026, 09:30</time>' in html
    # Scripts come from /static only: the CSP forbids inline ones.
    assert '<script type="module" src="/static/client-times.js"></script>' in html
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    script = await client.get("/static/client-times.js")
    assert script.status == 200 and "Intl.DateTimeFormat" in await script.text()

    refused = await client.post(
        f"/c/{token}/reschedule", data={"start": "mañana", "csrf_token": csrf_of(html)}
    )
    assert refused.status == 422 and "Elija una de las horas de la lista" in await refused.text()
    moved = await client.post(
        f"/c/{token}/reschedule",
        data={"start": "2026-03-05T09:30:00-08:00", "csrf_token": csrf_of(html)},
    )
    assert moved.status == 200 and "Su cita cambió de hora." in await moved.text()
    clock.now = START + timedelta(days=3)
    gone = await page(client, token, 410)
    assert '<html lang="es">' in gone and "Este enlace caducó" in gone
    unknown = await client.get(
        "/c/not-a-real-token-at-all-xxxxxxxx", headers={"Accept-Language": "es-MX,es;q=0.9"}
    )
    assert unknown.status == 410 and "Este enlace no es válido" in await unknown.text()
