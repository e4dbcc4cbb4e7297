"""Errors the case record raises; the web layer turns each into a problem+json answer."""

from __future__ import annotations


class RecordError(Exception):
    """Base: `status` is the HTTP status the web layer answers with."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Invalid(RecordError):
    status = 422
    title = "Unprocessable request"


class Unauthenticated(RecordError):
    status = 401
    title = "Sign-in required"


class Forbidden(RecordError):
    status = 403
    title = "Forbidden"


class NotFound(RecordError):
    status = 404
    title = "Not found"


class Conflict(RecordError):
    status = 409
    title = "Conflict"
