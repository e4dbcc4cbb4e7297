"""Clients and their cases."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from caserecord import audit
from caserecord.access import require_case, require_worker, visible_cases
from caserecord.accounts import normalize_email
from caserecord.audit import Actor
from caserecord.errors import Invalid
from caserecord.models import Booking, Case, Client, Visit

PHONE_RE = re.compile(r"^\+?[0-9 ()\-.]{6,24}$")


def normalize_phone(phone: str) -> str:
    """Return `phone` as digits with an optional leading +, or raise Invalid."""
    raw = phone.strip()
    if not PHONE_RE.match(raw):
        raise Invalid(f"{phone!r} is not a phone number")
    digits = re.sub(r"[^0-9]", "", raw)
    if not 6 <= len(digits) <= 15:
        raise Invalid(f"{phone!r} is not a phone number")
    return ("+" if raw.startswith("+") else "") + digits


def create_case(
    s: Session,
    actor: Actor,
    *,
    worker_id: int,
    client_name: str,
    phone: str | None = None,
    email: str | None = None,
    language: str = "en",
    title: str = "",
) -> tuple[Case, Client]:
    """Open a case for a new client, assigned to `worker_id` (who must be in `actor`'s team)."""
    worker = require_worker(s, actor, worker_id)
    if worker.role not in ("worker", "supervisor"):
        raise Invalid(f"user {worker_id} does not hold a caseload")
    if not client_name.strip():
        raise Invalid("client name must not be empty")
    if not re.fullmatch(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})?", language):
        raise Invalid(f"{language!r} is not a language tag such as 'en' or 'es'")
    client = Client(
        name=client_name.strip(),
        phone=normalize_phone(phone) if phone else None,
        email=normalize_email(email) if email else None,
        language=language.lower(),
    )
    s.add(client)
    s.flush()
    assert client.id is not None
    case = Case(client_id=client.id, worker_id=worker_id, title=title.strip())
    s.add(case)
    s.flush()
    audit.record(s, actor, "case.create", "case", case.id, case_id=case.id, worker_id=worker_id)
    return case, client


def read_case(s: Session, actor: Actor, case_id: int) -> tuple[Case, Client, list[Booking], list[Visit]]:
    """Return a case with its client, bookings and visits; the read is audited."""
    case = require_case(s, actor, case_id)
    client = s.get(Client, case.client_id)
    assert client is not None
    bookings = list(s.exec(select(Booking).where(Booking.case_id == case_id).order_by(col(Booking.start_at))))
    visits = list(s.exec(select(Visit).where(Visit.case_id == case_id).order_by(col(Visit.id))))
    audit.record(s, actor, "case.read", "case", case_id, case_id=case_id)
    return case, client, bookings, visits


def list_cases(s: Session, actor: Actor) -> list[tuple[Case, Client]]:
    """Return the cases in the caller's caseload with their clients, newest first; the read is audited."""
    found = visible_cases(s, actor)
    clients = {
        c.id: c for c in s.exec(select(Client).where(col(Client.id).in_({k.client_id for k in found})))
    }
    out = [(case, clients[case.client_id]) for case in found if case.client_id in clients]
    audit.record(s, actor, "case.list", "case", None, count=len(out))
    return out
