"""The admin's page of messages not yet sent: failed ones to retry, waiting ones, the SMS file outbox."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from sqlmodel import Session

from caserecord import audit
from caserecord.models import OUTBOX_FAILED, OUTBOX_PENDING, OUTBOX_SENDING, OutboxMessage
from scheduler import outbox, sms
from web.pages.common import PageError, form, page, render, require, services
from web.services import Identity


def _admin(request: web.Request, why: str) -> Identity:
    ident = require(request, back="/admin/outbox")
    if ident.user.role != "admin":
        raise PageError(403, why)
    return ident


@page
async def outbox_page(request: web.Request) -> web.StreamResponse:
    """GET /admin/outbox: messages waiting, being sent or failed, and the SMS file outbox (admins)."""
    ident = _admin(request, "only an agency admin may see the outbox")
    svc = services(request)

    def run(s: Session) -> list[OutboxMessage]:
        rows = outbox.list_messages(s, (OUTBOX_FAILED, OUTBOX_SENDING, OUTBOX_PENDING))
        audit.record(s, ident.actor, "outbox.read", "outbox", None, count=len(rows))
        return rows

    rows = await svc.db.write(run)
    st = svc.settings
    return render(
        request,
        "admin_outbox.html",
        failed=[r for r in rows if r.state == OUTBOX_FAILED],
        waiting=[r for r in rows if r.state != OUTBOX_FAILED],
        files=sms.file_outbox(st.data_dir / "outbox" / "sms") if not st.sms_url else [],
        sms_configured=bool(st.sms_url),
        mail_configured=bool(st.smtp_url),
        notice=request.query.get("notice", "")[:200],
    )


@page
async def outbox_retry(request: web.Request) -> web.StreamResponse:
    """POST /admin/outbox/{id}/retry or /admin/outbox/retry-failed: failed messages go again, now."""
    ident = _admin(request, "only an agency admin may retry messages")
    await form(request, ident)
    svc = services(request)
    raw = request.match_info.get("message_id")
    count = await svc.db.write(outbox.retry_failed, ident.actor, svc.clock(), int(raw) if raw else None)
    if count == 0:
        notice = "Nothing to retry: the message is no longer failed."
    else:
        notice = (
            "1 message will be sent again now." if count == 1 else f"{count} messages will be sent again now."
        )
    raise web.HTTPSeeOther(f"/admin/outbox?notice={quote(notice)}")


ROUTES = [
    web.get("/admin/outbox", outbox_page),
    web.post(r"/admin/outbox/{message_id:\d{1,18}}/retry", outbox_retry),
    web.post("/admin/outbox/retry-failed", outbox_retry),
]
