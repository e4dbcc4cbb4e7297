"""SMS through the provider adapter, against a local HTTP server that records requests; STOP replies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from caserecord.db import Database
from scheduler import sms
from tests.conftest import AppMaker, Clock, Staff, login
from tests.scheduler.mailbox import booked, outbox_rows, outbox_states, sms_provider
from web.services import SERVICES

START = datetime(2026, 3, 5, 17, 0, tzinfo=UTC)
INBOUND = "http://lastmile.test/sms/inbound"


async def test_texts_go_to_the_provider_and_stop_ends_them(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    assert staff.worker.id is not None
    async with sms_provider() as (provider, url):
        client = await make_client(
            sms_url=url, sms_from="+15550001111", outbox_sender=False, data_dir=tmp_path
        )
        sender = client.app[SERVICES].sender
        _, booking = await booked(client, staff.worker)
        await sender.run_due(clock.now)
        (sent,) = provider.requests
        assert (
            sent["auth"] == "AC1:secret" and sent["To"] == "+15035550199" and sent["From"] == "+15550001111"
        )
        assert "Thursday 5 March 2026, 09:00" in sent["Body"] and "http://lastmile.test/c/" in sent["Body"]
        assert len(sent["Body"]) <= sms.MAX_LENGTH

        reply = {"From": "+15035550199", "To": "+15550001111", "Body": " stop "}
        forged = await client.post("/sms/inbound", data=reply, headers={"X-Twilio-Signature": "nope"})
        assert forged.status == 403
        signed = {"X-Twilio-Signature": sms.signature("secret", INBOUND, reply)}
        assert (await client.post("/sms/inbound", data=reply, headers=signed)).status == 200
        rows = outbox_states(database, booking["id"])
        assert rows["reminder_24h:sms:s0"] == "withdrawn" and rows["reminder_24h:email:s0"] == "pending"
        clock.now = START
        await sender.run_due(clock.now)
        assert len(provider.requests) == 1  # nothing more by SMS; the e-mail reminders went to files

        # A new booking for the number that said STOP queues no SMS at all.
        headers = await login(client, staff.worker.email)
        body = {"worker_id": staff.worker.id, "client": {"name": "Ana", "phone": "+1 (503) 555-0199"}}
        case = await (await client.post("/api/cases", json=body, headers=headers)).json()
        again = await client.post(
            "/api/bookings",
            json={"worker_id": staff.worker.id, "case_id": case["id"], "start": "2026-03-12T09:00:00-07:00"},
            headers=headers,
        )
        assert again.status == 201
        assert outbox_rows(database, (await again.json())["id"]) == []


async def test_a_number_the_provider_refuses_fails_at_once(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with sms_provider() as (provider, url):
        provider.status = 400
        client = await make_client(sms_url=url, outbox_sender=False, data_dir=tmp_path)
        _, booking = await booked(client, staff.worker)
        report = await client.app[SERVICES].sender.run_due(clock.now)
    assert report["failed"] == 1 and report["sent"] == 1
    row = next(r for r in outbox_rows(database, booking["id"]) if r.key.endswith("invitation:sms"))
    assert row.state == "failed" and row.attempts == 1 and "400" in (row.last_error or "")


async def test_without_a_provider_texts_land_in_the_file_outbox(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path
) -> None:
    client = await make_client(outbox_sender=False, data_dir=tmp_path)
    await booked(client, staff.worker)
    clock.advance(minutes=1)
    await client.app[SERVICES].sender.run_due(clock.now)
    (text,) = sms.file_outbox(tmp_path / "outbox" / "sms")
    assert text.to == "+15035550199" and "Worker" in text.body
    assert (await client.post("/sms/inbound", data={"From": "+1", "Body": "STOP"})).status == 404
    assert timedelta(0) <= datetime.now(UTC) - text.written < timedelta(minutes=5)


def test_a_long_text_is_shortened_but_keeps_its_link() -> None:
    from caserecord.models import Booking, OutboxMessage
    from scheduler.delivery import MessageContext

    booking = Booking(
        id=1,
        uid="u",
        worker_id=1,
        case_id=1,
        block_id=1,
        start_at=START,
        end_at=START + timedelta(minutes=30),
        created_by=1,
    )
    row = OutboxMessage(
        key="b1:invitation:sms", booking_id=1, kind="invitation", channel="sms", recipient="+1", due_at=START
    )
    link = "http://lastmile.test/c/" + "x" * 43
    ctx = MessageContext(
        message=row,
        booking=booking,
        client_name="Ana",
        client_email=None,
        language="en",
        worker_name="W" * 300,
        timezone="America/Los_Angeles",
        join_url=None,
        page_url=link,
        kiosk_code=None,
        claim_token="t",
    )
    body = sms.compose(ctx, timedelta(minutes=15))
    assert len(body) <= sms.MAX_LENGTH and body.endswith(link)
