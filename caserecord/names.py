"""Names for lists: the clients of some cases and the names of some users, in one query each."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from caserecord.models import Case, Client, User


def client_names(s: Session, case_ids: Iterable[int]) -> dict[int, str]:
    """Return the client's name of each case, by case id."""
    ids = set(case_ids)
    if not ids:
        return {}
    rows = s.exec(select(Case.id, Client.name).join(Client).where(col(Case.id).in_(ids)))
    return {case_id: name for case_id, name in rows if case_id is not None}


def user_names(s: Session, user_ids: Iterable[int]) -> dict[int, str]:
    """Return each user's name, by user id."""
    ids = set(user_ids)
    if not ids:
        return {}
    rows = s.exec(select(User.id, User.name).where(col(User.id).in_(ids)))
    return {user_id: name for user_id, name in rows if user_id is not None}
