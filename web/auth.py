"""Who is calling: session cookie or bearer token, checked on the server for every request."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from aiohttp import web

from caserecord.accounts import close_session, resolve_session
from caserecord.audit import Actor
from web.problems import Handler, ProblemError
from web.services import IDENTITY, SERVICES, Identity
from web.settings import Settings

COOKIE = "lastmile_session"
_SKIP_PREFIXES = ("/static/", "/healthz", "/metrics", "/calendar/", "/api/openapi.json")
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def request_token(request: web.Request) -> tuple[str | None, bool]:
    """Return the caller's token and whether it came from the cookie."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip(), False
    cookie = request.cookies.get(COOKIE)
    return (cookie, True) if cookie else (None, False)


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the caller's identity; refuse cross-site writes made with the cookie."""
    if request.path.startswith(_SKIP_PREFIXES):
        return await handler(request)
    svc = request.app[SERVICES]
    token, from_cookie = request_token(request)
    if token:
        # A write transaction: resolving may expire the session or touch its idle timer.
        found = await svc.db.write(resolve_session, token, svc.clock(), svc.session_policy)
        if found is not None:
            user, row = found
            assert user.id is not None
            request[IDENTITY] = Identity(
                user=user,
                actor=Actor(user.id, user.role, request.remote),
                csrf_token=row.csrf_token,
                token=token,
            )
            if from_cookie and request.method in _UNSAFE:
                check_origin(request, svc.settings)
    return await handler(request)


def same_origin(request: web.Request, settings: Settings) -> bool:
    """Return whether a browser's write comes from this site (a cross-site one always names its Origin)."""
    origin = request.headers.get("Origin")
    return origin is None or origin in {_origin(settings.base_url), f"{request.scheme}://{request.host}"}


def check_origin(request: web.Request, settings: Settings) -> None:
    """Refuse a cookie-authenticated write from another site."""
    if not same_origin(request, settings):
        raise ProblemError(
            403,
            "Forbidden",
            f"cross-site request from {request.headers.get('Origin')} refused",
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_csrf(request: web.Request, identity: Identity, submitted: str) -> None:
    """Raise 403 unless a form's CSRF token matches the session's."""
    if not hmac.compare_digest(identity.csrf_token.encode(), submitted.encode()):
        raise ProblemError(403, "Forbidden", "the form has expired; reload the page and try again")


def set_session_cookie(response: web.StreamResponse, token: str, settings: Settings) -> None:
    """Set the HttpOnly, SameSite=Lax session cookie (Secure behind https)."""
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
        path="/",
        max_age=int(settings.session_absolute.total_seconds()),
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")


async def end_session(request: web.Request) -> None:
    """Forget the caller's session on the server."""
    token, _ = request_token(request)
    if token:
        await request.app[SERVICES].db.write(close_session, token)
