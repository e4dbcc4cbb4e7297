"""Caseload scoping: who may see which worker and which case. Deny by default."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from caserecord.audit import Actor
from caserecord.errors import Forbidden, NotFound
from caserecord.models import Case, User

T = TypeVar("T")
REVIEWERS = ("admin", "supervisor")  # who reviews a team's work: notes, risk alerts, live visits


def visible_worker_ids(s: Session, actor: Actor) -> set[int] | None:
    """Return the worker ids `actor` may see, or None for all (admins)."""
    if actor.role == "admin":
        return None
    if actor.user_id is None:
        return set()
    if actor.role == "supervisor":
        team = s.exec(select(User.id).where(User.supervisor_id == actor.user_id)).all()
        return {actor.user_id, *(i for i in team if i is not None)}
    if actor.role == "worker":
        return {actor.user_id}
    return set()


def visible_staff(s: Session, actor: Actor, *, admins: bool = True, by_name: bool = False) -> list[User]:
    """Return the active staff `actor` may see (admins too, unless not `admins`), by id or by name."""
    q = select(User).where(col(User.active).is_(True))
    if not admins:
        q = q.where(User.role != "admin")
    q = in_caseload(s, actor, q, User.id)
    return list(s.exec(q.order_by(col(User.name) if by_name else col(User.id))))


def require_worker(s: Session, actor: Actor, worker_id: int) -> User:
    """Return the worker `worker_id` if `actor` may see their calendar, else raise."""
    user = s.get(User, worker_id)
    if user is None or not user.active:
        raise NotFound(f"no worker {worker_id}")
    if not sees(s, actor, worker_id):
        raise Forbidden(f"worker {worker_id} is not in your team")
    return user


def sees(s: Session, actor: Actor, worker_id: int) -> bool:
    """Return whether `worker_id` is in `actor`'s caseload (themselves, their team, or all for admins)."""
    ids = visible_worker_ids(s, actor)
    return ids is None or worker_id in ids


def require_case(s: Session, actor: Actor, case_id: int) -> Case:
    """Return case `case_id` if it is in `actor`'s caseload, else raise."""
    case = s.get(Case, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    if not sees(s, actor, case.worker_id):
        raise Forbidden(f"case {case_id} is not in your caseload")
    return case


def require_role(actor: Actor, *roles: str) -> None:
    """Raise Forbidden unless `actor` holds one of `roles`."""
    if actor.role not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}")


def visible_cases(s: Session, actor: Actor, limit: int = 500) -> list[Case]:
    """Return the cases in `actor`'s caseload, newest first."""
    q = in_caseload(s, actor, select(Case), Case.worker_id)
    return list(s.exec(q.order_by(col(Case.id).desc()).limit(limit)))


def require_worker_write(s: Session, actor: Actor, worker_id: int) -> User:
    """Return worker `worker_id` if `actor` may change their calendar (themselves or an admin)."""
    user = require_worker(s, actor, worker_id)
    if actor.role != "admin" and actor.user_id != worker_id:
        raise Forbidden("only the worker or an admin may change this calendar")
    return user


class _CaseRow(Protocol):
    case_id: int
    worker_id: int


R = TypeVar("R", bound=_CaseRow)


def require_writable(s: Session, actor: Actor, model: type[R], row_id: int) -> R:
    """Return booking or visit `row_id` if `actor` may change it: in their caseload, theirs or an admin's."""
    row = s.get(model, row_id)
    if row is None:
        raise NotFound(f"no {model.__name__.lower()} {row_id}")
    require_case(s, actor, row.case_id)
    require_worker_write(s, actor, row.worker_id)
    return row


def in_caseload(s: Session, actor: Actor, q: SelectOfScalar[T], worker_id: Any) -> SelectOfScalar[T]:
    """Narrow a query to rows whose `worker_id` column is in `actor`'s caseload (admins: all)."""
    ids = visible_worker_ids(s, actor)
    return q if ids is None else q.where(col(worker_id).in_(ids))
