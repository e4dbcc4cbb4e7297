"""What other services post to us: the SMS provider's replies (STOP opts a number out, START back in)."""

from __future__ import annotations

import logging

from aiohttp import web

from caserecord.cases import normalize_phone
from caserecord.errors import Invalid
from scheduler import outbox, sms
from web.services import SERVICES

log = logging.getLogger(__name__)


async def sms_inbound(request: web.Request) -> web.StreamResponse:
    """POST /sms/inbound: the provider forwards a reply; STOP opts the number out, START back in."""
    svc = request.app[SERVICES]
    if not svc.settings.sms_url:
        raise web.HTTPNotFound()
    posted = await request.post()
    params = {k: str(v) for k, v in posted.items()}
    provider = sms.parse_url(svc.settings.sms_url)
    given = request.headers.get("X-Twilio-Signature", "")
    if not provider.token or not sms.check_signature(provider.token, svc.links.sms_inbound(), params, given):
        raise web.HTTPForbidden(text="bad signature")
    word = sms.reply_word(params.get("Body", ""))
    try:
        phone = normalize_phone(params.get("From", ""))
    except Invalid:
        word = None
    if word == "STOP":
        await svc.db.write(outbox.opt_out, phone, svc.clock())
        log.info("an SMS recipient opted out")
    elif word == "START":
        await svc.db.write(outbox.opt_in, phone)
    # An empty TwiML answer: the provider sends its own STOP confirmation.
    return web.Response(text="<Response/>", content_type="application/xml")


ROUTES = [web.post("/sms/inbound", sms_inbound)]
