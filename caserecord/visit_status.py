"""A visit's status and the only ways it may change: the one home of the visit state machine.

    scheduled -> waiting      a client checked in (a walk-in's visit starts here)
    waiting -> in_progress    the worker admitted a client
    scheduled | waiting | in_progress -> ended
    scheduled -> no_show      nobody came a while after the start
    no_show -> scheduled      the client moved the missed visit to a new time
    scheduled -> cancelled    the booking was cancelled

`ended` and `cancelled` are final. Every package that changes a visit's status calls `move` (or,
for a conditional UPDATE, names `SOURCES[target]` in its WHERE), so no rule is written twice.
"""

from __future__ import annotations

from typing import Final

from caserecord.errors import Conflict
from caserecord.models import Visit

SCHEDULED: Final = "scheduled"
WAITING: Final = "waiting"
IN_PROGRESS: Final = "in_progress"
ENDED: Final = "ended"
NO_SHOW: Final = "no_show"
CANCELLED: Final = "cancelled"

STATUSES = (SCHEDULED, WAITING, IN_PROGRESS, ENDED, NO_SHOW, CANCELLED)
LIVE = (SCHEDULED, WAITING, IN_PROGRESS)  # a join link or kiosk code may still lead in
ON_NOW = (WAITING, IN_PROGRESS)  # someone is there
OVER = (ENDED, NO_SHOW)  # a link to it says "this visit has ended"

_NEXT: dict[str, frozenset[str]] = {
    SCHEDULED: frozenset({WAITING, ENDED, NO_SHOW, CANCELLED}),
    WAITING: frozenset({IN_PROGRESS, ENDED}),
    IN_PROGRESS: frozenset({ENDED}),
    NO_SHOW: frozenset({SCHEDULED}),
    ENDED: frozenset(),
    CANCELLED: frozenset(),
}
SOURCES: dict[str, tuple[str, ...]] = {
    target: tuple(s for s in STATUSES if target in _NEXT[s]) for target in STATUSES
}


def can_move(current: str, target: str) -> bool:
    """Return whether a visit in `current` may move to `target`."""
    return target in _NEXT.get(current, frozenset())


def move(visit: Visit, target: str) -> None:
    """Move `visit` to `target`, or raise Conflict naming the status it is in."""
    if not can_move(visit.status, target):
        raise Conflict(f"visit {visit.id} is {visit.status}; it cannot become {target}")
    visit.status = target
