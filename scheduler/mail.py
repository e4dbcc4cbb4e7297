"""E-mail: one message per recipient, plain text and HTML, with the iCalendar invite as a part.

Addresses. A message names only its one recipient and the agency's sending address
(`mail_from`). The invite's ORGANIZER must be an address, and calendars show it: it is the
agency's sending address with the worker's name as CN, never the worker's own address, so
no staff address reaches a client. Replies go to the agency's mailbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

import scheduler.ical as ical
import scheduler.texts as texts
from caserecord.models import Booking
from scheduler.delivery import MessageContext
from scheduler.outbox import CANCELLED, INVITATION, RESCHEDULED

ICS_KINDS = (INVITATION, RESCHEDULED, CANCELLED)


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, but it builds each header's class once, not per header set,
    and parses the headers every message has alike (MIME, From) once.

    The stock registry makes a new class with `type()` on every lookup and parses every value;
    that was most of composing a message (3 ms of CPU), and a sender composes a thousand at once.
    The messages are byte for byte the ones the stock policy writes.
    """

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made

    def __call__(self, name: str, value: str) -> BaseHeader:
        # The MIME headers and the sender are the same in every message: parse each once.
        # Header objects are immutable strings, so messages may share them.
        key = (name.lower(), str(value))
        if key[0] not in _SAME_IN_EVERY_MESSAGE:
            return super().__call__(name, value)
        found = self._parsed.get(key)
        if found is None or found.name != name:
            found = super().__call__(name, value)
            if len(self._parsed) < 256:
                self._parsed[key] = found
        return found


_SAME_IN_EVERY_MESSAGE = frozenset(
    {"from", "mime-version", "auto-submitted", "content-language"}
    | {"content-type", "content-transfer-encoding"}
)


POLICY = email.policy.default.clone(header_factory=_HeaderClasses())


class SendError(Exception):
    """A message could not be sent; `permanent` when retrying cannot help."""

    def __init__(self, detail: str, permanent: bool = False) -> None:
        super().__init__(detail)
        self.permanent = permanent


def sender_address(mail_from: str, base_url: str) -> Address:
    """Return the agency's sending address: `mail_from`, or no-reply at the public host."""
    name, addr = parseaddr(mail_from) if mail_from else ("", "")
    if not addr or "@" not in addr:
        host = urlsplit(base_url).hostname or "localhost"
        name, addr = "Lastmile", f"no-reply@{host}"
    user, domain = addr.rsplit("@", 1)
    return Address(display_name=name or "Lastmile", username=user, domain=domain)


def invite_event(
    b: Booking,
    *,
    worker_name: str,
    timezone: str,
    client_name: str | None,
    client_email: str | None,
    join_url: str | None,
    kiosk_code: str | None,
    organizer_email: str,
) -> ical.BookingEvent:
    """The one description of a booking as an invite, e-mailed or downloaded alike.

    The organizer is the agency's sending address, never a member of staff's.
    """
    description = "Virtual visit"
    if join_url:
        description = f"Join from your phone or computer: {join_url}"
        if kiosk_code:
            description += f"\nKiosk code: {kiosk_code}"
    return ical.BookingEvent(
        uid=b.uid,
        sequence=b.sequence,
        start=b.start_at,
        end=b.end_at,
        timezone=timezone,
        cancelled=b.status != "booked",
        summary=f"Virtual visit with {worker_name}",
        description=description,
        url=join_url,
        organizer_name=worker_name,
        organizer_email=organizer_email,
        attendee_name=client_name,
        attendee_email=client_email,
        created=b.created_at,
        updated=b.updated_at,
    )


def booking_event(ctx: MessageContext, organizer: Address) -> ical.BookingEvent:
    """Describe the booking for the e-mailed invite."""
    return invite_event(
        ctx.booking,
        worker_name=ctx.worker_name,
        timezone=ctx.timezone,
        client_name=ctx.client_name,
        client_email=ctx.client_email,
        join_url=ctx.join_url,
        kiosk_code=ctx.kiosk_code,
        organizer_email=organizer.addr_spec,
    )


def _content(ctx: MessageContext, join_early: timedelta) -> texts.Content:
    kind = ctx.message.kind
    b = ctx.booking
    worker = ctx.message.audience == "worker"
    # A reminder sent once the join link works carries it; earlier ones point to the client's page.
    in_window = ctx.message.kind.startswith("reminder_") and b.start_at - ctx.message.due_at <= join_early
    join = ctx.join_url if (kind in (INVITATION, RESCHEDULED) or in_window) and not worker else None
    return texts.compose(
        kind,
        language="en" if worker else ctx.language,
        client_name=ctx.client_name,
        worker_name=ctx.worker_name,
        start=b.start_at,
        timezone=ctx.timezone,
        join_url=join,
        page_url=None if worker else ctx.page_url,  # the client's secret, not the worker's
        kiosk_code=None if worker else ctx.kiosk_code,
        cancel_reason=b.cancel_reason,
        greet=ctx.worker_name if worker else None,
    )


def _html_line(text: str, urls: tuple[str | None, ...]) -> str:
    escaped = html.escape(text)
    for url in urls:
        if url:
            quoted = html.escape(url)
            escaped = escaped.replace(quoted, f'<a href="{quoted}">{quoted}</a>')
    return escaped


def compose(ctx: MessageContext, now: datetime, organizer: Address, join_early: timedelta) -> EmailMessage:
    """Write the e-mail of one outbox message (one recipient)."""
    c = _content(ctx, join_early)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = organizer
    msg["To"] = ctx.message.recipient
    msg["Subject"] = c.subject
    msg["Date"] = format_datetime(now)
    # Stable per outbox row, so a retried message is recognisably the same one.
    msg["Message-ID"] = f"<{re.sub(r'[^A-Za-z0-9.-]', '.', ctx.message.key)}@{organizer.domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    lang = "es" if texts.words(ctx.language) is texts.ES and ctx.message.audience != "worker" else "en"
    plain = "\n\n".join([c.greeting, *c.lines, "--", c.footer]) + "\n"
    msg.set_content(plain)
    paragraphs = "".join(f"<p>{_html_line(line, (c.join_url, c.page_url))}</p>" for line in c.lines)
    body = (
        f'<!doctype html><html lang="{lang}"><body>'
        f"<p>{html.escape(c.greeting)}</p>{paragraphs}"
        f'<p style="color:#555">{html.escape(c.footer)}</p></body></html>'
    )
    msg.add_alternative(body, subtype="html")
    if ctx.message.kind in ICS_KINDS:
        event = booking_event(ctx, organizer)
        method = ical.invite_method(event)
        ics = ical.invite_calendar(event, now).decode("utf-8")
        msg.add_alternative(ics, subtype="calendar", params={"method": method})
    # After the parts: set_content would move a Content-* header into the first part.
    msg["Content-Language"] = lang
    return msg


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class MailSession(Protocol):
    """Several messages in a row over one connection, where the transport has connections."""

    async def send(self, message: EmailMessage) -> None: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _OneByOne:
    transport: MailTransport

    async def send(self, message: EmailMessage) -> None:
        await self.transport.send(message)

    async def close(self) -> None:
        return None


def open_session(transport: MailTransport) -> MailSession:
    """Return a session over `transport`: one kept connection for SMTP, one call per message otherwise."""
    if isinstance(transport, SmtpTransport):
        return SmtpSession(transport)
    return _OneByOne(transport)


@contextlib.contextmanager
def _smtp_errors() -> Iterator[None]:
    try:
        yield
    except aiosmtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"recipient refused: {exc}", permanent=True) from exc
    except aiosmtplib.SMTPResponseException as exc:
        # 5xx is the server's final word; 4xx means try again later.
        raise SendError(f"{type(exc).__name__}: {exc}", permanent=exc.code >= 500) from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SmtpTransport:
    """Send over SMTP: smtp://[user:pass@]host[:port][?starttls=1] or smtps://... for TLS."""

    url: str
    timeout: float = 30.0

    def client(self) -> aiosmtplib.SMTP:
        """Return an unconnected SMTP client for the URL."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SendError("LASTMILE_SMTP_URL must look like smtp://host:port or smtps://host:port", True)
        tls = parts.scheme == "smtps"
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes")
        return aiosmtplib.SMTP(
            hostname=parts.hostname,
            port=parts.port or (465 if tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=tls,
            start_tls=starttls,
            timeout=self.timeout,
        )

    async def send(self, message: EmailMessage) -> None:
        session = SmtpSession(self)
        try:
            await session.send(message)
        finally:
            await session.close()


class SmtpSession:
    """One SMTP connection reused for message after message; any error or timeout drops it.

    A dropped connection is opened again for the next message, so one bad exchange never
    leaves a later message in a half-finished SMTP transaction. A kept connection that the
    server has closed, or is closing (421, e.g. too many messages on one connection), is
    opened again at once for the same message: the server did not take it.
    """

    def __init__(self, transport: SmtpTransport) -> None:
        self.transport = transport
        self._smtp: aiosmtplib.SMTP | None = None

    async def send(self, message: EmailMessage) -> None:
        try:
            with _smtp_errors():
                kept = self._smtp is not None and self._smtp.is_connected
                try:
                    await self._send(message)
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as exc:
                    closing = not isinstance(exc, aiosmtplib.SMTPResponseException) or exc.code == 421
                    if not (kept and closing):
                        raise
                    self._drop()
                    await self._send(message)
        except BaseException:
            self._drop()  # a timeout cancels us mid-exchange, too
            raise

    async def _send(self, message: EmailMessage) -> None:
        if self._smtp is None or not self._smtp.is_connected:
            smtp = self.transport.client()
            self._smtp = smtp
            await smtp.connect()
        await self._smtp.send_message(message)

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None or not smtp.is_connected:
            return
        try:
            await asyncio.wait_for(smtp.quit(), min(self.transport.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()


@dataclass(frozen=True, slots=True)
class FileTransport:
    """Without an SMTP server, keep each message as an .eml file for the admin to see."""

    folder: Path

    async def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9.-]", "_", str(message["Message-ID"]).strip("<>"))
        (self.folder / f"{name}.eml").write_bytes(bytes(message))


def transport(smtp_url: str, outbox_dir: Path, timeout: float) -> MailTransport:
    """Return the SMTP transport, or the file outbox when no SMTP server is configured."""
    if smtp_url:
        return SmtpTransport(smtp_url, timeout)
    return FileTransport(outbox_dir / "mail")
