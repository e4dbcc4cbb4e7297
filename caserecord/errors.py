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
    status, title = 422, "Unprocessable request"


class Unauthenticated(RecordError):
    status, title = 401, "Sign-in required"


class Forbidden(RecordError):
    status, title = 403, "Forbidden"


class NotFound(RecordError):
    status, title = 404, "Not found"


class Conflict(RecordError):
    status, title = 409, "Conflict"
