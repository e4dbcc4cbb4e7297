"""The outbox against the real app, database and a real SMTP server on loopback: once, on time, or failed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from caserecord.db import Database
from scheduler import delivery, outbox
from tests.conftest import AppMaker, Clock, Staff
from tests.scheduler.mailbox import (
    book_another,
    booked,
    cancel,
    hanging_smtp,
    mail_settings,
    mailing_app,
    outbox_rows,
    outbox_states,
    reschedule,
    smtp_sink,
    states,
    subject,
)
from web.services import SERVICES

START = datetime(2026, 3, 5, 17, 0, tzinfo=UTC)  # Thursday 09:00 in Los Angeles


async def test_a_booking_queues_its_invitation_and_reminders(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    client = await make_client(outbox_sender=False, data_dir=tmp_path)
    _, booking = await booked(client, staff.worker)
    rows = outbox_rows(database, booking["id"])
    assert states(rows) == {
        "invitation:email": "pending",
        "invitation:sms": "pending",
        "reminder_24h:email:s0": "pending",
        "reminder_24h:sms:s0": "pending",
        "reminder_1h:email:s0": "pending",
        "reminder_1h:sms:s0": "pending",
        "reminder_10m:email:s0": "pending",
        "reminder_10m:sms:s0": "pending",
    }
    due = {r.kind: r.due_at for r in rows}
    assert due == {
        "invitation": clock.now,
        "reminder_24h": START - timedelta(hours=24),
        "reminder_1h": START - timedelta(hours=1),
        "reminder_10m": START - timedelta(minutes=10),
    }
    assert {r.recipient for r in rows} == {"client@example.net", "+15035550199"}
    # Writing the same change again adds nothing: the keys are unique.
    with database.session(write=True) as s:
        from caserecord.models import Booking

        row = s.get(Booking, booking["id"])
        assert row is not None
        outbox.on_booked(s, row, clock.now)
    assert len(outbox_rows(database, booking["id"])) == 8


async def test_reminders_leave_on_time_once_and_late_ones_still_go(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path) as (mailbox, client):
        sender = client.app[SERVICES].sender
        _, booking = await booked(client, staff.worker)
        assert (await sender.run_due(clock.now))["sent"] == 2  # invitation by e-mail and SMS
        clock.now = START - timedelta(hours=24, seconds=1)
        assert sum((await sender.run_due(clock.now)).values()) == 0
        clock.now = START - timedelta(hours=24)
        assert (await sender.run_due(clock.now))["sent"] == 2
        # The sender was down: the 1-hour reminder is 70 minutes late, the 10-minute one 10 minutes.
        clock.now = START
        assert (await sender.run_due(clock.now))["sent"] == 4
        assert sum((await sender.run_due(clock.now)).values()) == 0
    subjects = [subject(m) for m in mailbox.messages]
    assert len(subjects) == 4 and subjects[0].startswith("Your visit with Worker")
    assert all(s.startswith("Reminder:") for s in subjects[1:])
    assert {r.state for r in outbox_rows(database, booking["id"])} == {"sent"}
    texts = {p.name: json.loads(p.read_text()) for p in (tmp_path / "outbox" / "sms").iterdir()}
    last = next(v for k, v in texts.items() if "reminder_10m" in k)
    assert last["to"] == "+15035550199" and booking["client_join_url"] in last["body"]
    first = next(v for k, v in texts.items() if "invitation" in k)
    assert "/c/" in first["body"] and "/j/" not in first["body"]


async def test_two_senders_and_a_restart_send_each_message_once(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    with smtp_sink() as (mailbox, port):
        settings = mail_settings(port, tmp_path)
        first = await make_client(**settings)
        second = await make_client(**settings)
        await booked(first, staff.worker)
        clock.now = START - timedelta(hours=24)
        reports = await asyncio.gather(
            first.app[SERVICES].sender.run_due(clock.now), second.app[SERVICES].sender.run_due(clock.now)
        )
        assert reports[0]["sent"] + reports[1]["sent"] == 4  # invitation and 24-hour reminder, two channels
        assert len(mailbox.messages) == 2
        # The process stops; the 1-hour reminder falls due; a fresh process catches up at start-up.
        await first.close()
        await second.close()
        clock.now = START - timedelta(minutes=30)
        third = await make_client(**{**settings, "outbox_sender": True})
        await asyncio.wait_for(third.app[SERVICES].sender.idle.wait(), 10)
        assert len(mailbox.messages) == 3
        await third.app[SERVICES].sender.run_due(clock.now)
        kinds = sorted(subject(m).split(":")[0] for m in mailbox.messages)
        assert kinds == ["Reminder", "Reminder", "Your visit with Worker"]


async def test_a_claim_whose_process_died_is_sent_after_its_lease(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path) as (mailbox, client):
        _, booking = await booked(client, staff.worker)
        email_row = next(
            r for r in outbox_rows(database, booking["id"]) if r.key.endswith("invitation:email")
        )
        assert email_row.id is not None
        ctx = await database.write(delivery.claim, email_row.id, clock.now, "http://lastmile.test")
        assert ctx is not None  # ...and the process dies before sending
        sender = client.app[SERVICES].sender
        await sender.run_due(clock.now)
        assert mailbox.messages == []
        clock.advance(seconds=delivery.LEASE.total_seconds() + 1)
        await sender.run_due(clock.now)
        await sender.run_due(clock.now)
        assert len(mailbox.messages) == 1


async def test_a_cancelled_booking_sends_no_reminder(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path) as (mailbox, client):
        headers, booking = await booked(client, staff.worker)
        sender = client.app[SERVICES].sender
        await sender.run_due(clock.now)
        await cancel(client, headers, booking["id"])
        rows = outbox_states(database, booking["id"])
        assert rows["reminder_24h:email:s0"] == "withdrawn" and rows["cancelled:email"] == "pending"
        clock.now = START + timedelta(hours=1)
        await sender.run_due(clock.now)
    assert [subject(m).split(":")[0] for m in mailbox.messages] == ["Your visit with Worker", "Cancelled"]


async def test_a_booking_cancelled_before_its_invitation_left_sends_nothing(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    client = await make_client(outbox_sender=False, data_dir=tmp_path)
    headers, booking = await booked(client, staff.worker)
    await cancel(client, headers, booking["id"])
    assert {r.state for r in outbox_rows(database, booking["id"])} == {"withdrawn"}


async def test_a_reschedule_withdraws_the_old_reminders_and_queues_new_ones(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    client = await make_client(outbox_sender=False, data_dir=tmp_path)
    headers, booking = await booked(client, staff.worker)
    # Moved before the invitation left: the invitation, written when it leaves, has the new time.
    await reschedule(client, headers, booking["id"], "2026-03-05T11:30:00-08:00")
    rows = outbox_states(database, booking["id"])
    assert rows["reminder_1h:email:s0"] == "withdrawn" and rows["reminder_1h:email:s1"] == "pending"
    assert "rescheduled:email:s1" not in rows and rows["invitation:email"] == "pending"
    await client.app[SERVICES].sender.run_due(clock.now)
    await reschedule(client, headers, booking["id"], "2026-03-05T10:00:00-08:00")
    rows = outbox_states(database, booking["id"])
    assert rows["rescheduled:email:s2"] == "pending" and rows["reminder_1h:sms:s1"] == "withdrawn"
    assert rows["reminder_10m:sms:s2"] == "pending"
    due = {r.key: r.due_at for r in outbox_rows(database, booking["id"])}
    new_start = datetime(2026, 3, 5, 18, 0, tzinfo=UTC)
    assert due[f"b{booking['id']}:reminder_1h:email:s2"] == new_start - timedelta(hours=1)


async def test_a_refusing_server_is_retried_with_backoff_then_failed_and_shown(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    refuse = "451 4.3.0 Try again later"
    retry = {"outbox_max_attempts": 3, "outbox_retry_seconds": 60}
    async with mailing_app(make_client, tmp_path, refuse, **retry) as (_, client):
        _, booking = await booked(client, staff.worker)
        sender = client.app[SERVICES].sender
        report = await sender.run_due(clock.now)
        assert report["retry"] == 1 and report["sent"] == 1  # the SMS is not held up
        row = next(r for r in outbox_rows(database, booking["id"]) if r.key.endswith("invitation:email"))
        assert (
            row.state == "pending" and row.attempts == 1 and row.due_at == clock.now + timedelta(seconds=60)
        )
        assert row.last_error is not None and "451" in row.last_error
        clock.advance(seconds=59)
        assert sum((await sender.run_due(clock.now)).values()) == 0
        clock.advance(seconds=1)
        assert (await sender.run_due(clock.now))["retry"] == 1
        clock.advance(seconds=120)
        assert (await sender.run_due(clock.now))["failed"] == 1
        clock.advance(hours=1)
        assert sum((await sender.run_due(clock.now)).values()) == 0
    row = next(r for r in outbox_rows(database, booking["id"]) if r.key.endswith("invitation:email"))
    assert row.state == "failed" and row.attempts == 3


async def test_a_hanging_server_times_out_without_holding_up_the_others(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with hanging_smtp() as port:
        settings = mail_settings(port, tmp_path, smtp_timeout_seconds=0.5, outbox_max_attempts=1)
        client = await make_client(**settings)
        _, booking = await booked(client, staff.worker)
        began = time.monotonic()
        report = await client.app[SERVICES].sender.run_due(clock.now)
        assert time.monotonic() - began < 5
    assert report["failed"] == 1 and report["sent"] == 1
    rows = outbox_states(database, booking["id"])
    assert rows["invitation:email"] == "failed" and rows["invitation:sms"] == "sent"


async def test_a_booking_wakes_the_running_sender_at_once(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path, outbox_sender=True) as (mailbox, client):
        sender = client.app[SERVICES].sender
        await asyncio.wait_for(sender.idle.wait(), 10)  # the start-up pass found nothing
        await booked(client, staff.worker)
        await asyncio.wait_for(sender.idle.wait(), 10)
        assert [subject(m).split(":")[0] for m in mailbox.messages] == ["Your visit with Worker"]


def test_reminder_offsets_parse_and_name_themselves() -> None:
    assert outbox.parse_reminders("10, 1440,60") == (
        timedelta(hours=24),
        timedelta(hours=1),
        timedelta(minutes=10),
    )
    assert [outbox.reminder_kind(d) for d in outbox.parse_reminders("90,120")] == [
        "reminder_2h",
        "reminder_90m",
    ]
    for bad in ("0", "-5", "soon"):
        try:
            outbox.parse_reminders(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


async def test_reminder_offsets_come_from_the_settings(
    make_client: AppMaker, staff: Staff, database: Database, tmp_path: Path
) -> None:
    client = await make_client(outbox_sender=False, data_dir=tmp_path, reminder_minutes="30")
    _, booking = await booked(client, staff.worker)
    reminders = {
        r.kind: r.due_at for r in outbox_rows(database, booking["id"]) if r.kind.startswith("reminder")
    }
    assert reminders == {"reminder_30m": START - timedelta(minutes=30)}


async def test_a_message_whose_booking_is_cancelled_after_its_claim_does_not_leave(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    client = await make_client(outbox_sender=False, data_dir=tmp_path)
    headers, booking = await booked(client, staff.worker)
    claimed = await database.write(delivery.claim_due, clock.now, "http://lastmile.test", 10)
    # Both invitations (e-mail and SMS) in one claim, under one token.
    assert claimed.rows == 2 and len({c.claim_token for c in claimed.contexts}) == 1
    again = await database.write(delivery.claim_due, clock.now, "http://lastmile.test", 10)
    assert again.rows == 0  # a second sender finds nothing to take
    await cancel(client, headers, booking["id"])
    by_channel = {c.message.channel: c for c in claimed.contexts}
    mail_id, sms_id = by_channel["email"].message.id, by_channel["sms"].message.id
    assert mail_id is not None and sms_id is not None
    # Checked just before it leaves: the e-mail is withdrawn instead of sent.
    assert not await database.write(delivery.still_ours, mail_id, by_channel["email"].claim_token, clock.now)
    rows = outbox_states(database, booking["id"])
    assert rows["invitation:email"] == "withdrawn" and rows["reminder_24h:email:s0"] == "withdrawn"
    # The SMS had left before the cancel: it is marked sent, and the e-mail cannot be any more.
    outcomes = [delivery.Outcome(sms_id, by_channel["sms"].claim_token), delivery.Outcome(mail_id, "stolen")]
    marked = await database.write(delivery.mark_results, outcomes, clock.now, 5, timedelta(minutes=1))
    assert marked == {sms_id: "sent", mail_id: None}


async def test_many_due_messages_leave_once_over_kept_connections(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path) as (mailbox, client):
        headers, _ = await booked(client, staff.worker)
        for start in ("2026-03-05T09:30:00-08:00", "2026-03-05T10:00:00-08:00", "2026-03-05T10:30:00-08:00"):
            await book_another(client, headers, staff.worker, start)
        sender = client.app[SERVICES].sender
        sender.config = dataclasses.replace(sender.config, batch=2, concurrency=2)
        report = await sender.run_due(clock.now)
        assert report["sent"] == 5 and sum(report.values()) == 5  # 4 e-mails, 1 SMS
        assert sum((await sender.run_due(clock.now)).values()) == 0
    ids = [m["Message-ID"] for m in mailbox.messages]
    assert len(ids) == 4 == len(set(ids))
    assert {r.state for r in outbox_rows(database) if r.kind == "invitation"} == {"sent"}


async def test_e_mail_and_sms_speak_the_clients_language(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path) as (mailbox, client):
        await booked(client, staff.worker, language="es")
        clock.now = START - timedelta(hours=24)
        assert (await client.app[SERVICES].sender.run_due(clock.now))["sent"] == 4
    subjects = sorted(subject(m) for m in mailbox.messages)
    assert subjects[0].startswith("Recordatorio: su cita con Worker") and subjects[1].startswith(
        "Su cita con"
    )
    bodies = [json.loads(p.read_text())["body"] for p in (tmp_path / "outbox" / "sms").iterdir()]
    assert len(bodies) == 2 and all("cita virtual con Worker" in b for b in bodies)
    assert any("jueves 5 de marzo de 2026, 09:00" in b for b in bodies)
