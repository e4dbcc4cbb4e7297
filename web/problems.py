"""RFC 9457 problem+json answers, and the middleware that guarantees them."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from caserecord.errors import RecordError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    """Return a problem+json response."""
    body = {"type": "about:blank", "status": status, "title": title, "detail": detail, **extra}
    return web.Response(status=status, text=json.dumps(body, default=str), content_type=PROBLEM)


class ProblemError(Exception):
    """Raise from a handler to answer with a problem."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.response = problem(status, title, detail, **extra)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into a problem answer; an unexpected one is logged and is a 500."""
    try:
        return await handler(request)
    except ProblemError as exc:
        return exc.response
    except ConnectionResetError:
        # The client went away (a page left during a socket's handshake): nobody to answer, not a fault.
        log.debug("client went away", extra={"path": request.path})
        return web.Response(status=499)
    except RecordError as exc:
        return problem(exc.status, exc.title, exc.detail)
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_problem(request):
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        if exc.status == 413:
            detail = "the request body is too large"
        resp = problem(exc.status, exc.reason, detail or exc.reason)
        for name in ("Allow", "WWW-Authenticate"):
            if name in exc.headers:
                resp.headers[name] = exc.headers[name]
        return resp
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return problem(500, "Internal Server Error", "something went wrong on our side; it was logged")


def _wants_problem(request: web.Request) -> bool:
    path = request.path
    return (
        path.startswith("/api/")
        or path.startswith("/calendar/")
        or "json" in request.headers.get("Accept", "")
    )
