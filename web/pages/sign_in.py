"""Signing in and out on the site."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import Session

from caserecord import accounts
from caserecord.access import REVIEWERS
from caserecord.errors import Unauthenticated
from caserecord.models import User
from web.auth import clear_session_cookie, end_session, set_session_cookie
from web.pages.common import form, identity, page, render, require, services
from web.routing import client_ip


def home_for(user: User) -> str:
    return "/supervisor" if user.role in REVIEWERS else "/worker"


def safe_next(value: str) -> str:
    """Keep `next` on this site: a path, never `//host` or `/\\host` (which browsers read as `//`)."""
    ok = value.startswith("/") and not value.startswith(("//", "/\\")) and "\\" not in value
    return value if ok else ""


@page
async def sign_in_page(request: web.Request) -> web.StreamResponse:
    """GET /: the sign-in form (or home, when already signed in)."""
    ident = identity(request)
    if ident is not None:
        raise web.HTTPSeeOther(home_for(ident.user))
    demo = services(request).settings.demo
    nxt = safe_next(request.query.get("next", ""))
    return render(request, "sign_in.html", error="", next=nxt, demo=demo, email="")


@page
async def sign_in(request: web.Request) -> web.StreamResponse:
    """POST /: check the password, open a session and go home (or to `next`)."""
    svc = services(request)
    posted = await request.post()
    email = str(posted.get("email", ""))[:254]
    password = str(posted.get("password", ""))[:1000]
    nxt = safe_next(str(posted.get("next", "")))
    ip = client_ip(request)
    now = svc.clock()

    def run(s: Session) -> tuple[User, str]:
        user = accounts.authenticate(s, email, password, ip)
        agent = request.headers.get("User-Agent")
        token, _ = accounts.open_session(s, user, now, svc.session_policy, ip, agent)
        return user, token

    try:
        user, token = await svc.db.write(run)
    except Unauthenticated as exc:
        svc.metrics.logins.labels("failed").inc()
        demo = svc.settings.demo
        return render(request, "sign_in.html", status=401, error=exc.detail, next=nxt, demo=demo, email=email)
    svc.metrics.logins.labels("ok").inc()
    resp = web.HTTPSeeOther(nxt or home_for(user))
    set_session_cookie(resp, token, svc.settings)
    raise resp


@page
async def sign_out(request: web.Request) -> web.StreamResponse:
    """POST /sign-out: end the session."""
    await form(request, require(request))
    await end_session(request)
    resp = web.HTTPSeeOther("/")
    clear_session_cookie(resp)
    raise resp


ROUTES = [web.get("/", sign_in_page), web.post("/", sign_in), web.post("/sign-out", sign_out)]
