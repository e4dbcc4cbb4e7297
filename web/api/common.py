"""What the API modules share: the input base, the roles, and the shapes several answer with."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from caserecord import access
from caserecord.models import Booking, User, Visit
from scheduler.links import Links
from scheduler.rules import Slot

ADMINS = ("admin",)
STAFF = ("admin", "supervisor", "worker")
WRITERS = ("admin", "worker")
REVIEWERS = access.REVIEWERS
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class In(BaseModel):
    """A request body: unknown fields are refused, and so is NUL in any text."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail on insert.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    timezone: str
    supervisor_id: int | None
    feed_url: str | None = None


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


class SlotOut(BaseModel):
    start: datetime
    end: datetime
    available: bool
    block_id: int
    mode: str


def user_out(user: User, links: Links, with_feed: bool) -> UserOut:
    return UserOut.model_validate(
        user.model_dump() | {"feed_url": links.feed(user.feed_token) if with_feed else None}
    )


def booking_out(b: Booking, v: Visit | None, tz: ZoneInfo, links: Links) -> BookingOut:
    """A booking in the worker's zone; the join link and kiosk code only while it stands."""
    assert b.id is not None
    live = v is not None and b.status == "booked"
    return BookingOut(
        id=b.id,
        visit_id=v.id if v is not None else None,
        worker_id=b.worker_id,
        case_id=b.case_id,
        start=b.start_at.astimezone(tz),
        end=b.end_at.astimezone(tz),
        status=b.status,
        sequence=b.sequence,
        client_join_url=links.join(v.join_token) if live and v is not None else None,
        kiosk_code=v.kiosk_code if live and v is not None else None,
    )


def slot_out(slot: Slot) -> SlotOut:
    return SlotOut(
        start=slot.start, end=slot.end, available=slot.available, block_id=slot.block_id, mode=slot.mode
    )
