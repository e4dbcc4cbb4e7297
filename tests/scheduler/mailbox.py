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
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from icalendar import Calendar
from sqlmodel import col, select

from caserecord.db import Database
from caserecord.models import OutboxMessage
from tests.conftest import login
from tests.helpers import ok, publish


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


async def booked(
    client: TestClient[web.Request, web.Application],
    worker_id: int,
    worker_email: str,
    start: str = "2026-03-05T09:00:00-08:00",
    language: str = "en",
) -> tuple[dict[str, str], dict[str, Any]]:
    """Sign the worker in, publish office hours, open a case and book `start`; return headers and booking."""
    headers = await login(client, worker_email)
    await publish(client, headers, worker_id)
    body = {
        "worker_id": worker_id,
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
            json={"worker_id": worker_id, "case_id": case["id"], "start": start},
            headers=headers,
        ),
        201,
    )
    return headers, booking


def outbox_rows(db: Database, booking_id: int | None = None) -> list[OutboxMessage]:
    with db.session() as s:
        q = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if booking_id is not None:
            q = q.where(OutboxMessage.booking_id == booking_id)
        return list(s.exec(q))


def subject(msg: Message) -> str:
    """Return the Subject unfolded, as a mail reader shows it."""
    return " ".join(str(msg["Subject"]).split())
