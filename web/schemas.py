"""Request and response bodies of the JSON API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from scheduler.hours import BlockSpec

Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Short = Annotated[str, StringConstraints(max_length=500)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail on insert.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class LoginIn(In):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    timezone: str
    supervisor_id: int | None
    feed_url: str | None = None


class SessionOut(BaseModel):
    user: UserOut
    token: str = Field(description="Send as `Authorization: Bearer <token>` if not using the cookie")
    csrf_token: str
    expires_at: datetime


class WorkerIn(In):
    name: Name
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=8, max_length=1000)]
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    supervisor_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    role: Literal["worker", "supervisor", "admin"] = "worker"


class ClientIn(In):
    name: Name
    phone: Annotated[str, StringConstraints(max_length=32)] | None = None
    email: Annotated[str, StringConstraints(max_length=254)] | None = None
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)] = "en"


class CaseIn(In):
    worker_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    client: ClientIn
    title: Annotated[str, StringConstraints(max_length=200)] = ""


class ClientOut(BaseModel):
    id: int
    name: str
    phone: str | None
    email: str | None
    language: str


class BookingOut(BaseModel):
    id: int
    visit_id: int | None
    worker_id: int
    case_id: int
    start: datetime
    end: datetime
    status: str
    sequence: int
    client_join_url: str | None
    kiosk_code: str | None


class VisitOut(BaseModel):
    id: int
    booking_id: int | None
    status: str
    join_opens_at: datetime
    join_expires_at: datetime


class CaseOut(BaseModel):
    id: int
    title: str
    status: str
    worker_id: int
    opened_at: datetime
    client: ClientOut
    bookings: list[BookingOut] = []
    visits: list[VisitOut] = []


class OfficeHoursIn(In, BlockSpec):
    """A block of office hours to publish."""


class ExceptionOut(BaseModel):
    date: date
    reason: str


class OfficeHoursOut(BaseModel):
    id: int
    worker_id: int
    weekdays: list[str]
    start_time: str
    end_time: str
    timezone: str
    slot_minutes: int
    buffer_minutes: int
    mode: str
    starts_on: date
    until: date | None
    min_notice_minutes: int
    max_days_ahead: int
    title: str
    exceptions: list[ExceptionOut] = []


class ExceptionIn(In):
    date: date
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class ExceptionResult(BaseModel):
    block_id: int
    date: date
    reason: str
    cancelled_bookings: list[int]


class DeleteQuery(BaseModel):
    cancel_bookings: bool = False


class SlotsQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", description="First local date, YYYY-MM-DD")
    to: date = Field(description="Last local date (inclusive), at most 92 days after `from`")


class SlotOut(BaseModel):
    start: datetime
    end: datetime
    available: bool
    block_id: int
    mode: str


class BookingIn(In):
    worker_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    case_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    start: datetime = Field(description="The slot's start, ISO 8601 with offset")


class CancelIn(In):
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class RescheduleIn(In):
    start: datetime


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    version: str
