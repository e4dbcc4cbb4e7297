"""E-mail through a real SMTP server on loopback: invites that calendars read, in the client's language."""

from __future__ import annotations

import dataclasses
import email.policy
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import recurring_ical_events
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from caserecord.db import Database
from caserecord.models import Booking, OutboxMessage
from scheduler import mail
from scheduler.delivery import MessageContext
from tests.conftest import AppMaker, Clock, Staff
from tests.helpers import add_exception, ok
from tests.scheduler.mailbox import (
    Recorder,
    book_another,
    booked,
    calendar_part,
    cancel,
    free_port,
    mail_settings,
    mailing_app,
    reschedule,
    subject,
    text_part,
)
from web.services import SERVICES


async def test_invite_reschedule_and_cancel_arrive_with_one_uid_and_rising_sequence(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    mail_from = "Riverside Services <visits@riverside.test>"
    async with mailing_app(make_client, tmp_path, mail_from=mail_from) as (mailbox, client):
        sender = client.app[SERVICES].sender
        headers, booking = await booked(client, staff.worker)
        await sender.run_due(clock.now)
        await reschedule(client, headers, booking["id"], "2026-03-05T11:30:00-08:00")
        await sender.run_due(clock.now)
        await cancel(client, headers, booking["id"])
        await sender.run_due(clock.now)

    assert len(mailbox.messages) == 3
    methods, uids, sequences, starts = [], set(), [], []
    for msg in mailbox.messages:
        method, cal = calendar_part(msg)
        assert str(cal["METHOD"]) == method
        methods.append(method)
        (event,) = cal.walk("VEVENT")
        uids.add(str(event["UID"]))
        sequences.append(int(event.decoded("SEQUENCE")))
        starts.append(event.decoded("DTSTART"))
        assert cal.walk("VTIMEZONE"), "a TZID needs its VTIMEZONE"
    assert methods == ["REQUEST", "REQUEST", "CANCEL"]
    assert len(uids) == 1 and sequences == [0, 1, 2]
    assert starts[0] == datetime(2026, 3, 5, 17, 0, tzinfo=UTC)
    assert starts[1] == datetime(2026, 3, 5, 19, 30, tzinfo=UTC)

    # An independent reader finds the invited visit at the booked time.
    _, first = calendar_part(mailbox.messages[0])
    found = recurring_ical_events.of(first).between(date(2026, 3, 5), date(2026, 3, 6))
    assert [e.decoded("DTSTART").astimezone(UTC) for e in found] == [datetime(2026, 3, 5, 17, 0, tzinfo=UTC)]

    first_msg = mailbox.messages[0]
    assert subject(first_msg).startswith("Your visit with Worker: Thursday 5 March 2026, 09:00")
    assert first_msg["To"] == "client@example.net" and mailbox.envelopes[0][1] == ["client@example.net"]
    assert first_msg["From"].addresses[0].addr_spec == "visits@riverside.test"
    plain = text_part(first_msg)
    assert "Hello Ana Client," in plain and booking["client_join_url"] in plain and "/c/" in plain
    html = text_part(first_msg, "html")
    assert f'<a href="{booking["client_join_url"]}">' in html
    # No staff address reaches the client: the organizer is the agency's sending address.
    for msg in mailbox.messages:
        raw = msg.as_string()
        assert staff.worker.email not in raw and "agency.test" not in raw
        _, cal = calendar_part(msg)
        (event,) = cal.walk("VEVENT")
        assert str(event["ORGANIZER"]) == "mailto:visits@riverside.test"
        assert event["ORGANIZER"].params["CN"] == "Worker"
    assert subject(mailbox.messages[2]).startswith("Cancelled:")


async def test_a_spanish_speaking_client_gets_spanish(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path
) -> None:
    async with mailing_app(make_client, tmp_path) as (mailbox, client):
        await booked(client, staff.worker, language="es")
        await client.app[SERVICES].sender.run_due(clock.now)
    (msg,) = mailbox.messages
    assert subject(msg).startswith("Su cita con Worker: jueves 5 de marzo de 2026, 09:00")
    assert msg["Content-Language"] == "es"
    assert "Hola Ana Client:" in text_part(msg)


async def test_an_office_hour_date_cancelled_tells_the_client_why(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path
) -> None:
    assert staff.worker.id is not None
    async with mailing_app(make_client, tmp_path) as (mailbox, client):
        headers, _ = await booked(client, staff.worker)
        await client.app[SERVICES].sender.run_due(clock.now)
        blocks = await ok(await client.get(f"/api/workers/{staff.worker.id}/office-hours", headers=headers))
        day_off = {"date": "2026-03-05", "reason": "training day"}
        await ok(await add_exception(client, headers, staff.worker.id, blocks[0]["id"], day_off), 201)
        await client.app[SERVICES].sender.run_due(clock.now)
    cancel = mailbox.messages[-1]
    method, _ = calendar_part(cancel)
    assert method == "CANCEL" and "office hours that day were cancelled" in text_part(cancel)
    assert "training day" not in cancel.as_string()


async def test_bad_addresses_are_refused_when_the_case_is_opened(
    make_client: AppMaker, staff: Staff, tmp_path: Path
) -> None:
    from tests.conftest import login
    from tests.helpers import problem

    assert staff.worker.id is not None
    client = await make_client(outbox_sender=False, data_dir=tmp_path)
    headers = await login(client, staff.worker.email)
    for bad, says in (
        ({"email": "not-an-address"}, "not an e-mail address"),
        ({"phone": "call me"}, "phone"),
    ):
        body = {"worker_id": staff.worker.id, "client": {"name": "B", **bad}}
        out = await problem(await client.post("/api/cases", json=body, headers=headers), 422)
        assert says in out["detail"], out


def test_composing_with_the_caching_policy_writes_what_the_stock_policy_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime(2030, 6, 4, 12, tzinfo=UTC)
    booking = Booking(
        id=1,
        worker_id=1,
        case_id=1,
        start_at=now + timedelta(hours=1),
        end_at=now + timedelta(hours=1, minutes=10),
        uid="b1@lastmile.test",
        block_id=1,
        created_by=1,
        created_at=now,
        updated_at=now,
    )
    organizer = mail.sender_address(
        "Lastmile Agency of the Greater Metropolitan Area Human Services Department Ñ <visits@agency.test>",
        "https://lastmile.test",
    )

    def write(kind: str, language: str, policy: Any) -> bytes:
        message = OutboxMessage(
            id=1,
            key=f"b1:{kind}:email:s0",
            booking_id=1,
            kind=kind,
            channel="email",
            recipient="client@example.net",
            due_at=now,
        )
        ctx = MessageContext(
            message,
            booking,
            "Clïent Ñame",
            "client@example.net",
            language,
            "Worker With A Rather Long Name",
            "America/Los_Angeles",
            "https://lastmile.test/j/abc",
            "https://lastmile.test/c/def",
            "123456",
            "token",
        )
        monkeypatch.setattr(mail, "POLICY", policy)
        raw = bytes(mail.compose(ctx, now, organizer, timedelta(minutes=15)))
        return re.sub(rb"={15}\d+==", b"BOUNDARY", raw)

    cached = mail.POLICY
    for _ in range(2):  # the second round reuses the parsed headers
        for kind in ("invitation", "reminder_1h", "cancelled"):
            for language in ("en", "es"):
                assert write(kind, language, cached) == write(kind, language, email.policy.default)


class _OnePerConnection(Recorder):
    """Takes one message per connection, and answers 421 to a second one on the same."""

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        if getattr(session, "took_one", False):
            return "421 4.7.0 One message per connection, please reconnect"
        session.took_one = True  # type: ignore[attr-defined]
        return await super().handle_DATA(server, session, envelope)


async def test_a_kept_connection_the_server_closes_is_opened_again_for_the_same_message(
    make_client: AppMaker, staff: Staff, database: Database, clock: Clock, tmp_path: Path
) -> None:
    recorder = _OnePerConnection()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        client = await make_client(**mail_settings(port, tmp_path))
        headers, _ = await booked(client, staff.worker)
        for start in ("2026-03-05T09:30:00-08:00", "2026-03-05T10:00:00-08:00"):
            await book_another(client, headers, staff.worker, start)
        sender = client.app[SERVICES].sender
        sender.config = dataclasses.replace(sender.config, concurrency=1)  # one connection for all
        report = await sender.run_due(clock.now)
    finally:
        controller.stop()
    assert report["sent"] == 4 and "retry" not in report  # 3 e-mails (and 1 SMS), none deferred
    assert len(recorder.messages) == 3 == len({m["Message-ID"] for m in recorder.messages})
