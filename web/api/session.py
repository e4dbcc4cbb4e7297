"""Signing in and out over the API, and who am I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints
from sqlmodel import Session

from caserecord import accounts, audit
from caserecord.audit import Actor
from caserecord.models import User
from web.api.common import STAFF, In, UserOut, user_out
from web.auth import clear_session_cookie, end_session, set_session_cookie
from web.routing import Call, Routes, client_ip, json_response

routes = Routes("session")


class LoginIn(In):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class SessionOut(BaseModel):
    user: UserOut
    token: str = Field(description="Send as `Authorization: Bearer <token>` if not using the cookie")
    csrf_token: str
    expires_at: datetime


def _audit_failed_login(s: Session, email: str, ip: str | None) -> None:
    audit.record(s, Actor(None, "anonymous", ip), "session.login_failed", "user", None, email=email[:254])


@routes.post("/api/session", None, SessionOut, errors=(401,))
async def login(call: Call[LoginIn, None]) -> web.StreamResponse:
    """Sign in; sets the session cookie."""
    svc, body = call.svc, call.body
    ip = client_ip(call.request)
    now = svc.clock()
    ua = call.request.headers.get("User-Agent")

    def run(s: Session) -> tuple[User, str, str, datetime]:
        user = accounts.authenticate(s, body.email, body.password, ip)
        token, row = accounts.open_session(s, user, now, svc.session_policy, ip, ua)
        return user, token, row.csrf_token, row.expires_at

    try:
        user, token, csrf, expires = await svc.db.write(run)
    except Exception:
        svc.metrics.logins.labels("failed").inc()
        # The failed attempt is audited in its own transaction (the sign-in one rolled back).
        await svc.db.write(_audit_failed_login, body.email, ip)
        raise
    svc.metrics.logins.labels("ok").inc()
    out = SessionOut(user=user_out(user, svc.links, True), token=token, csrf_token=csrf, expires_at=expires)
    resp = json_response(out)
    set_session_cookie(resp, token, svc.settings)
    return resp


@routes.delete("/api/session", STAFF, status=204)
async def logout(call: Call[None, None]) -> web.StreamResponse:
    """Sign out."""
    await end_session(call.request)
    resp = web.Response(status=204)
    clear_session_cookie(resp)
    return resp


@routes.get("/api/me", STAFF, UserOut)
async def me(call: Call[None, None]) -> web.StreamResponse:
    """Who am I."""
    assert call.identity is not None
    return json_response(user_out(call.identity.user, call.svc.links, True))
