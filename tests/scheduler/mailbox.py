"""Real servers on loopback for the outbox tests: an SMTP sink, a hanging SMTP server, an SMS provider."""

from __future__ import annotations

import asyncio
import base64
import email
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.policy import default
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from icalendar import Calendar
from sqlmodel import col, select

from caserecord.db import Database
from caserecord.models import OutboxMessage, User
from tests.conftest import AppMaker, login
from tests.helpers import Client, ok, publish


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every message (or refuses all with `refuse`)."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: str | None = None

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        if self.refuse:
            return self.refuse
        data = envelope.content
        assert isinstance(data, bytes)
        msg = email.message_from_bytes(data, policy=default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@contextmanager
def smtp_sink(refuse: str | None = None) -> Iterator[tuple[Recorder, int]]:
    """Run a real SMTP server on 127.0.0.1 that records what it receives."""
    recorder = Recorder(refuse=refuse)
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


@asynccontextmanager
async def hanging_smtp() -> AsyncIterator[int]:
    """A server that accepts connections and never says a word."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


def calendar_part(msg: Message) -> tuple[str, Calendar]:
    """Return the MIME method= and the parsed calendar of a message's text/calendar part."""
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return str(part.get_param("method")), Calendar.from_ical(payload)
    raise AssertionError("no text/calendar part")


def text_part(msg: EmailMessage, subtype: str = "plain") -> str:
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None
    content: str = part.get_content()
    return content


@dataclass
class SmsProvider:
    """A Twilio-like Messages endpoint that records each request (the HTTP edge of the SMS adapter)."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 201

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        auth = request.headers.get("Authorization", "")
        user = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth.startswith("Basic ") else ""
        self.requests.append({"path": request.path, "auth": user, **{k: str(v) for k, v in form.items()}})
        return web.json_response({"sid": f"SM{len(self.requests)}"}, status=self.status)


@asynccontextmanager
async def sms_provider() -> AsyncIterator[tuple[SmsProvider, str]]:
    """Run the provider on 127.0.0.1; yield it and the LASTMILE_SMS_URL that reaches it."""
    provider = SmsProvider()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/AC1/Messages.json", provider.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield provider, f"http://AC1:secret@127.0.0.1:{server.port}/2010-04-01/Accounts/AC1/Messages.json"
    finally:
        await server.close()


def mail_settings(port: int, tmp_path: Path, **settings: Any) -> dict[str, Any]:
    """App settings to mail 127.0.0.1:`port`, keep data in `tmp_path` and leave the sender to the test."""
    return {"smtp_url": f"smtp://127.0.0.1:{port}", "outbox_sender": False, "data_dir": tmp_path, **settings}


@asynccontextmanager
async def mailing_app(
    make_client: AppMaker, tmp_path: Path, refuse: str | None = None, **settings: Any
) -> AsyncIterator[tuple[Recorder, Client]]:
    """Run an SMTP sink (refusing all with `refuse`) and the app mailing to it, per `mail_settings`."""
    with smtp_sink(refuse) as (mailbox, port):
        yield mailbox, await make_client(**mail_settings(port, tmp_path, **settings))


async def booked(
    client: TestClient[web.Request, web.Application],
    worker: User,
    start: str = "2026-03-05T09:00:00-08:00",
    language: str = "en",
) -> tuple[dict[str, str], dict[str, Any]]:
    """Sign the worker in, publish office hours, open a case and book `start`; return headers and booking."""
    assert worker.id is not None
    headers = await login(client, worker.email)
    await publish(client, headers, worker.id)
    body = {
        "worker_id": worker.id,
        "client": {
            "name": "Ana Client",
            "email": "client@example.net",
            "phone": "+1 503 555 0199",
            "language": language,
        },
    }
    case = await ok(await client.post("/api/cases", json=body, headers=headers), 201)
    booking = await ok(
        await client.post(
            "/api/bookings",
            json={"worker_id": worker.id, "case_id": case["id"], "start": start},
            headers=headers,
        ),
        201,
    )
    return headers, booking


async def book_another(
    client: Client,
    headers: dict[str, str],
    worker: User,
    start: str,
    name: str = "B",
    email: str = "b@example.net",
) -> dict[str, Any]:
    """Open a case for another client (e-mail only) and book `start` for it; return the booking."""
    assert worker.id is not None
    body = {"worker_id": worker.id, "client": {"name": name, "email": email}}
    case = await ok(await client.post("/api/cases", json=body, headers=headers), 201)
    booking = {"worker_id": worker.id, "case_id": case["id"], "start": start}
    made: dict[str, Any] = await ok(await client.post("/api/bookings", json=booking, headers=headers), 201)
    return made


async def reschedule(client: Client, headers: dict[str, str], booking_id: int, start: str) -> dict[str, Any]:
    """Move a booking to `start` over the API; return the booking."""
    path = f"/api/bookings/{booking_id}/reschedule"
    moved: dict[str, Any] = await ok(await client.post(path, json={"start": start}, headers=headers))
    return moved


async def cancel(client: Client, headers: dict[str, str], booking_id: int) -> dict[str, Any]:
    """Cancel a booking over the API; return the booking."""
    gone: dict[str, Any] = await ok(
        await client.post(f"/api/bookings/{booking_id}/cancel", json={}, headers=headers)
    )
    return gone


def outbox_rows(db: Database, booking_id: int | None = None) -> list[OutboxMessage]:
    """The outbox's messages (of one booking, if given) in the order they were queued."""
    with db.session() as s:
        q = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if booking_id is not None:
            q = q.where(OutboxMessage.booking_id == booking_id)
        return list(s.exec(q))


def subject(msg: Message) -> str:
    """Return the Subject unfolded, as a mail reader shows it."""
    return " ".join(str(msg["Subject"]).split())


def states(rows: list[OutboxMessage]) -> dict[str, str]:
    """Each message by its key less the booking part ("reminder_1h:email:s0"), and its state."""
    return {r.key.split(":", 1)[1]: r.state for r in rows}


def outbox_states(db: Database, booking_id: int) -> dict[str, str]:
    """The `states` of a booking's messages."""
    return states(outbox_rows(db, booking_id))
