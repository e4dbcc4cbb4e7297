"""The admin's outbox page over HTTP: a failed message is retried by hand and then leaves."""

from __future__ import annotations

import re
from pathlib import Path

from sqlmodel import select

from caserecord.db import Database
from caserecord.models import AuditEvent
from tests.conftest import AppMaker, Clock, Staff, login
from tests.scheduler.mailbox import book_another, booked, mailing_app, outbox_rows, subject
from web.services import SERVICES

REJECTED = "554 5.7.1 Rejected"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


async def test_an_admin_retries_a_failed_message_and_it_is_sent(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path, REJECTED, outbox_max_attempts=1) as (mailbox, client):
        _, booking = await booked(client, staff.worker)
        sender = client.app[SERVICES].sender
        assert (await sender.run_due(clock.now))["failed"] == 1
        failed = next(r for r in outbox_rows(database, booking["id"]) if r.state == "failed")
        admin = await login(client, staff.admin.email)
        html = await (await client.get("/admin/outbox", headers=admin)).text()
        assert f'action="/admin/outbox/{failed.id}/retry"' in html and "Retry all failed" in html
        token = csrf_of(html)

        # A worker may not; a form without the session's token changes nothing.
        worker = await login(client, staff.worker.email)
        worker_html = await (await client.get("/worker", headers=worker)).text()
        refused = await client.post(
            f"/admin/outbox/{failed.id}/retry", data={"csrf_token": csrf_of(worker_html)}, headers=worker
        )
        assert refused.status == 403
        forged = await client.post(
            f"/admin/outbox/{failed.id}/retry", data={"csrf_token": "x" * 40}, headers=admin
        )
        assert forged.status == 403
        anonymous = await client.post(f"/admin/outbox/{failed.id}/retry", allow_redirects=False)
        # Signing in from there comes back to the outbox page, not to the POST-only button's address.
        assert anonymous.status == 303 and anonymous.headers["Location"] == "/?next=/admin/outbox"
        assert next(r for r in outbox_rows(database) if r.id == failed.id).state == "failed"

        mailbox.refuse = None  # the mail server takes messages again
        resp = await client.post(
            f"/admin/outbox/{failed.id}/retry",
            data={"csrf_token": token},
            headers=admin,
            allow_redirects=False,
        )
        assert resp.status == 303 and resp.headers["Location"].startswith("/admin/outbox?notice=")
        row = next(r for r in outbox_rows(database) if r.id == failed.id)
        assert row.state == "pending" and row.attempts == 0 and row.due_at == clock.now
        page = await (await client.get(resp.headers["Location"], headers=admin)).text()
        assert "1 message will be sent again now." in page and "Failed (0)" in page
        assert (await sender.run_due(clock.now))["sent"] == 1
    assert [subject(m).split(":")[0] for m in mailbox.messages] == ["Your visit with Worker"]
    row = next(r for r in outbox_rows(database) if r.id == failed.id)
    assert row.state == "sent" and row.attempts == 1
    with database.session() as s:
        events = list(s.exec(select(AuditEvent).where(AuditEvent.action == "outbox.retry")))
    assert len(events) == 1 and events[0].entity_id == failed.id


async def test_retry_all_failed_puts_every_failed_message_back(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path, REJECTED, outbox_max_attempts=1) as (mailbox, client):
        headers, _ = await booked(client, staff.worker)
        await book_another(client, headers, staff.worker, "2026-03-05T10:00:00-08:00", "Bo", "bo@example.net")
        sender = client.app[SERVICES].sender
        assert (await sender.run_due(clock.now))["failed"] == 2
        admin = await login(client, staff.admin.email)
        html = await (await client.get("/admin/outbox", headers=admin)).text()
        mailbox.refuse = None
        resp = await client.post(
            "/admin/outbox/retry-failed",
            data={"csrf_token": csrf_of(html)},
            headers=admin,
            allow_redirects=False,
        )
        assert resp.status == 303 and "2%20messages" in resp.headers["Location"]
        assert (await sender.run_due(clock.now))["sent"] == 2
    assert len(mailbox.messages) == 2
    assert not [r for r in outbox_rows(database) if r.state == "failed"]
