"""The outbox sender's lifetime in the app, and the admin's page of messages not yet sent."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import quote

from aiohttp import web
from sqlmodel import Session

from caserecord import audit
from caserecord.models import OUTBOX_FAILED, OUTBOX_PENDING, OUTBOX_SENDING, OutboxMessage
from scheduler import mail, outbox, sms
from scheduler.sender import Sender, SenderConfig
from web.auth import check_csrf
from web.pages import render
from web.problems import ProblemError
from web.runtime import IDENTITY, RUNTIME, Identity

log = logging.getLogger(__name__)
SENDER = web.AppKey("sender", Sender)


async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the sender from the settings; start its scheduler unless this process must not send."""
    rt = app[RUNTIME]
    st = rt.settings
    folder = st.data_dir / "outbox"
    config = SenderConfig(
        base_url=st.base_url,
        organizer=mail.sender_address(st.mail_from, st.base_url),
        join_early=timedelta(minutes=st.join_early_minutes),
        max_attempts=max(st.outbox_max_attempts, 1),
        retry=timedelta(seconds=st.outbox_retry_seconds),
        poll=timedelta(seconds=max(st.outbox_poll_seconds, 1.0)),
        send_timeout=st.smtp_timeout_seconds,
        no_show_after=timedelta(minutes=st.no_show_minutes) if st.no_show_minutes > 0 else None,
    )
    sender = Sender(
        rt.db,
        config,
        rt.clock,
        mail.transport(st.smtp_url, folder, st.smtp_timeout_seconds),
        sms.transport(st.sms_url, st.sms_from, folder, st.smtp_timeout_seconds),
    )
    app[SENDER] = sender
    if st.outbox_sender:
        await sender.start()
    yield
    await sender.stop()


def _not_allowed(ident: Identity, detail: str, title: str = "Not allowed") -> web.Response:
    return render("error.html", status=403, me=ident.user, csrf=ident.csrf_token, title=title, detail=detail)


async def outbox_page(request: web.Request) -> web.StreamResponse:
    """GET /admin/outbox: messages waiting, being sent or failed, and the SMS file outbox (admins)."""
    ident = request.get(IDENTITY)
    if ident is None:
        raise web.HTTPSeeOther(f"/?next={quote(request.path_qs)}")
    if ident.user.role != "admin":
        return _not_allowed(ident, "only an agency admin may see the outbox")
    rt = request.app[RUNTIME]

    def run(s: Session) -> list[OutboxMessage]:
        rows = outbox.list_messages(s, (OUTBOX_FAILED, OUTBOX_SENDING, OUTBOX_PENDING))
        audit.record(s, ident.actor, "outbox.read", "outbox", None, count=len(rows))
        return rows

    rows = await rt.db.write(run)
    failed = [r for r in rows if r.state == OUTBOX_FAILED]
    waiting = [r for r in rows if r.state != OUTBOX_FAILED]
    files = sms.file_outbox(rt.settings.data_dir / "outbox" / "sms") if not rt.settings.sms_url else []
    return render(
        "admin_outbox.html",
        me=ident.user,
        csrf=ident.csrf_token,
        failed=failed,
        waiting=waiting,
        files=files,
        sms_configured=bool(rt.settings.sms_url),
        mail_configured=bool(rt.settings.smtp_url),
        notice=request.query.get("notice", "")[:200],
    )


async def outbox_retry(request: web.Request) -> web.StreamResponse:
    """POST /admin/outbox/{id}/retry or /admin/outbox/retry-failed: failed messages go again, now."""
    ident = request.get(IDENTITY)
    if ident is None:
        raise web.HTTPSeeOther("/?next=/admin/outbox")
    if ident.user.role != "admin":
        return _not_allowed(ident, "only an agency admin may retry messages")
    form = await request.post()
    try:
        check_csrf(request, ident, str(form.get("csrf_token", "")))
    except ProblemError:
        return _not_allowed(
            ident,
            "This form has expired or did not come from this site, so nothing was changed. "
            "Go back, reload the page and try again.",
            "Form expired",
        )
    raw = request.match_info.get("message_id")
    message_id = int(raw) if raw is not None else None
    rt = request.app[RUNTIME]
    count = await rt.db.write(outbox.retry_failed, ident.actor, rt.clock(), message_id)
    request.app[SENDER].nudge()
    if count == 0:
        notice = "Nothing to retry: the message is no longer failed."
    else:
        notice = (
            "1 message will be sent again now." if count == 1 else f"{count} messages will be sent again now."
        )
    raise web.HTTPSeeOther(f"/admin/outbox?notice={quote(notice)}")


def install_admin_pages(app: web.Application) -> None:
    app.router.add_get("/admin/outbox", outbox_page)
    app.router.add_post(r"/admin/outbox/{message_id:\d{1,18}}/retry", outbox_retry)
    app.router.add_post("/admin/outbox/retry-failed", outbox_retry)
