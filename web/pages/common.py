"""What the pages share: who is signed in, forms with their CSRF token, going back with a message,
the error page, and reading form fields into values with messages people understand."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import date, time
from typing import Any, TypedDict
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from caserecord.errors import Invalid, RecordError
from web.auth import check_csrf
from web.problems import ProblemError
from web.routing import MAX_ID, parse_id
from web.services import IDENTITY, SERVICES, Identity, Services

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ERROR_TITLES = {401: "Please sign in", 403: "Not allowed", 404: "Not found", 409: "Already taken"}
FORM_EXPIRED = (
    "This form has expired or did not come from this site, so nothing was changed. "
    "Go back, reload the page and try again."
)


class PageError(Exception):
    """Raise from a page handler to answer with the HTML error page."""

    def __init__(self, status: int, detail: str, title: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or ERROR_TITLES.get(status, "That did not work")


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def identity(request: web.Request) -> Identity | None:
    return request.get(IDENTITY)


def require(request: web.Request, back: str = "") -> Identity:
    """Return the signed-in caller, or send them to sign in and come back here (or to `back`)."""
    ident = identity(request)
    if ident is None:
        raise web.HTTPSeeOther(f"/?next={quote(back or request.path_qs)}")
    return ident


def render(request: web.Request, name: str, status: int = 200, **ctx: Any) -> web.Response:
    """Render a page; staff pages get the signed-in user and the CSRF token of their forms."""
    ident = identity(request)
    ctx.setdefault("me", ident.user if ident is not None else None)
    ctx.setdefault("csrf", ident.csrf_token if ident is not None else "")
    return services(request).templates.page(name, status, **ctx)


def public(request: web.Request, name: str, status: int = 200, **ctx: Any) -> web.Response:
    """Render a page for the public (a client, a kiosk): never the staff header, even for a signed-in
    member of staff on the same device."""
    return services(request).templates.page(name, status, me=None, csrf=ctx.pop("csrf", ""), **ctx)


def error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    return render(request, "error.html", status=status, title=title, detail=detail)


def page(fn: Handler) -> Handler:
    """Answer a page handler's PageError or RecordError with the error page, not problem+json."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except PageError as exc:
            return error_page(request, exc.status, exc.title, exc.detail)
        except RecordError as exc:
            return error_page(request, exc.status, ERROR_TITLES.get(exc.status, exc.title), exc.detail)

    return handler


async def form(request: web.Request, ident: Identity) -> Form:
    """Read a posted form whose CSRF token is the session's, or raise PageError."""
    posted = await request.post()
    try:
        check_csrf(request, ident, str(posted.get("csrf_token", "")))
    except ProblemError as exc:
        raise PageError(403, FORM_EXPIRED, "Form expired") from exc
    return posted


def back(path: str, notice: str = "", error: str = "") -> web.HTTPSeeOther:
    """Go back to `path`, which says `notice` (or `error`) at its top."""
    sep = "&" if "?" in path else "?"
    if notice:
        path += f"{sep}notice={quote(notice)}"
    elif error:
        path += f"{sep}error={quote(error)}"
    return web.HTTPSeeOther(path)


class Messages(TypedDict):
    notice: str
    error: str


def messages(request: web.Request) -> Messages:
    """The notice or error a page was sent back with."""
    return {"notice": request.query.get("notice", "")[:500], "error": request.query.get("error", "")[:500]}


def path_id(request: web.Request, name: str) -> int:
    """Return a whole-number id from the path, or answer 404."""
    found = parse_id(request.match_info.get(name, ""))
    if found is None:
        raise web.HTTPNotFound()
    return found


def parse_time(value: str, what: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{what}: {value!r} is not a time like 09:00") from exc


def parse_date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{what}: {value!r} is not a date like 2026-03-10") from exc


def parse_int(value: str, what: str, lo: int = 1, hi: int = MAX_ID) -> int:
    if not value.strip().isdigit() or not lo <= int(value) <= hi:
        raise Invalid(f"{what} must be a whole number from {lo} to {hi}")
    return int(value)
