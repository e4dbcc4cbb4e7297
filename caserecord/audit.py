"""The audit log: every read and write of a case lands here, in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from caserecord.models import AuditEvent


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a signed-in user (or the system, with user_id None) and from where."""

    user_id: int | None
    role: str
    ip: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, role="system")


def record(
    s: Session,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: int | None,
    *,
    case_id: int | None = None,
    **detail: Any,
) -> None:
    """Add one audit event to the session's transaction."""
    s.add(
        AuditEvent(
            actor_id=actor.user_id,
            actor_role=actor.role,
            action=action,
            entity=entity,
            entity_id=entity_id,
            case_id=case_id,
            ip=actor.ip,
            detail=json.dumps(detail, default=str, sort_keys=True),
        )
    )


def events(s: Session, *, case_id: int | None = None, limit: int = 500) -> list[AuditEvent]:
    """Return audit events, newest first, optionally for one case."""
    q = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if case_id is not None:
        q = q.where(AuditEvent.case_id == case_id)
    return list(s.exec(q))
