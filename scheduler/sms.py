"""SMS: short texts through a provider adapter over HTTP, or a file outbox without one.

The first provider is Twilio's Messages API (and anything compatible): a form POST of To,
From and Body with HTTP basic auth, the account and token taken from `LASTMILE_SMS_URL`
(``https://ACCOUNT:TOKEN@api.twilio.com/2010-04-01/Accounts/ACCOUNT/Messages.json``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp

import scheduler.texts as texts
from scheduler.delivery import MessageContext
from scheduler.mail import SendError

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "PARAR", "ALTO"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
MAX_LENGTH = 320  # two SMS segments


def compose(ctx: MessageContext, join_early: timedelta) -> str:
    """Write a short text: what, when, and one link (the join link once it works, else the page)."""
    b = ctx.booking
    # A reminder sent once the join link works carries it; earlier ones point to the client's page.
    in_window = ctx.message.kind.startswith("reminder_") and b.start_at - ctx.message.due_at <= join_early
    c = texts.compose(
        ctx.message.kind,
        language=ctx.language,
        client_name=ctx.client_name,
        worker_name=ctx.worker_name,
        start=b.start_at,
        timezone=ctx.timezone,
        join_url=ctx.join_url if in_window else None,
        page_url=None if in_window else ctx.page_url,
        kiosk_code=None,
        cancel_reason=b.cancel_reason,
    )
    body = " ".join(c.lines)
    if len(body) > MAX_LENGTH and len(c.lines) > 1:
        # Shorten the words, never the link at the end.
        link = c.lines[-1]
        room = max(MAX_LENGTH - len(link) - 2, 0)
        body = " ".join(c.lines[:-1])[:room].rstrip() + "… " + link
    return body[: max(MAX_LENGTH, len(c.lines[-1]))]


class SmsTransport(Protocol):
    async def send(self, to: str, body: str, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Provider:
    """Where and as whom to post: the endpoint without credentials, and the credentials."""

    endpoint: str
    account: str
    token: str


def parse_url(url: str) -> Provider:
    """Split `LASTMILE_SMS_URL` into the endpoint and its basic-auth credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("LASTMILE_SMS_URL must be an http(s) URL")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    endpoint = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    return Provider(endpoint, unquote(parts.username or ""), unquote(parts.password or ""))


class HttpTransport:
    """Post each text to a Twilio-compatible Messages endpoint."""

    def __init__(self, url: str, sender: str, timeout: float = 30.0) -> None:
        self.provider = parse_url(url)
        self.sender = sender
        self.timeout = timeout

    async def send(self, to: str, body: str, key: str) -> None:
        p = self.provider
        headers = {}
        if p.account:
            creds = base64.b64encode(f"{p.account}:{p.token}".encode()).decode()
            headers["Authorization"] = f"Basic {creds}"
        form = {"To": to, "From": self.sender, "Body": body}
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session,
                session.post(p.endpoint, data=form, headers=headers) as resp,
            ):
                if resp.status < 300:
                    return
                detail = (await resp.text())[:300]
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(f"SMS provider unreachable: {type(exc).__name__}: {exc}") from exc
        # 4xx: the provider refused this message (a bad number); retrying will not help.
        raise SendError(f"SMS provider answered {resp.status}: {detail}", permanent=400 <= resp.status < 500)


@dataclass(frozen=True, slots=True)
class FileTransport:
    """Without a provider, keep each text as a JSON file that the admin page lists."""

    folder: Path

    async def send(self, to: str, body: str, key: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9.-]", "_", key)
        (self.folder / f"{name}.json").write_text(json.dumps({"to": to, "body": body, "key": key}))


def transport(sms_url: str, sender: str, outbox_dir: Path, timeout: float) -> SmsTransport:
    """Return the HTTP provider, or the file outbox when no provider is configured."""
    if sms_url:
        return HttpTransport(sms_url, sender, timeout)
    return FileTransport(outbox_dir / "sms")


@dataclass(frozen=True, slots=True)
class FileSms:
    """A text kept in the file outbox."""

    to: str
    body: str
    key: str
    written: datetime


def file_outbox(folder: Path, limit: int = 200) -> list[FileSms]:
    """Return the texts in the file outbox, newest first."""
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.json"), key=lambda f: f.stat().st_mtime, reverse=True)[:limit]
    out = []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        written = datetime.fromtimestamp(f.stat().st_mtime, UTC)
        out.append(
            FileSms(str(data.get("to", "")), str(data.get("body", "")), str(data.get("key", "")), written)
        )
    return out


def signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """Return Twilio's X-Twilio-Signature for a form POST to `url`."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def check_signature(token: str, url: str, params: Mapping[str, str], given: str) -> bool:
    """Return whether `given` is the provider's signature of this request."""
    return hmac.compare_digest(signature(token, url, params), given)


def reply_word(body: str) -> str | None:
    """Return "STOP" or "START" when an inbound text asks to stop or restart SMS, else None."""
    word = body.strip().upper().rstrip(".!")
    if word in STOP_WORDS:
        return "STOP"
    if word in START_WORDS:
        return "START"
    return None
