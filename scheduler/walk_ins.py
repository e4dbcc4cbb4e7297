"""Walk-in hours: when a worker's walk-in queue is open, and which queues a kiosk may show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from caserecord.models import OfficeHourBlock, User
from scheduler.hours import load_rules
from scheduler.rules import BlockRule, occurrences


def _open_windows(rules: Sequence[BlockRule], now: datetime) -> list[tuple[int, datetime, datetime]]:
    """Return (worker id, start, end) of each walk-in occurrence open at `now`."""
    found = []
    for rule in rules:
        if rule.mode != "walk_in":
            continue
        day = now.astimezone(rule.tz).date()
        for start, end in occurrences(rule, day - timedelta(days=1), day):
            if start.astimezone(UTC) <= now < end.astimezone(UTC):
                found.append((rule.worker_id, start, end))
    return found


def walk_in_window(s: Session, worker_id: int, now: datetime) -> tuple[datetime, datetime] | None:
    """Return the worker's walk-in hours open at `now` (start, end), if any; the longest-lasting wins."""
    windows = _open_windows(load_rules(s, [worker_id]), now)
    if not windows:
        return None
    _, start, end = max(windows, key=lambda w: w[2].astimezone(UTC))
    return start, end


CASELOAD_ROLES = ("worker", "supervisor")  # who can take a walk-in (a walk-in opens a case)


@dataclass(frozen=True, slots=True)
class OpenWalkIn:
    """A worker's walk-in hours open right now, as a public kiosk may show them."""

    worker_id: int
    worker_name: str
    start: datetime
    end: datetime  # in the block's own time zone


def open_walk_ins(s: Session, now: datetime) -> list[OpenWalkIn]:
    """Return the walk-in hours open at `now` across active workers, one per worker, by name."""
    q = select(OfficeHourBlock.worker_id).where(
        col(OfficeHourBlock.deleted_at).is_(None), OfficeHourBlock.mode == "walk_in"
    )
    worker_ids = sorted(set(s.exec(q)))
    if not worker_ids:
        return []
    latest: dict[int, tuple[datetime, datetime]] = {}
    for worker_id, start, end in _open_windows(load_rules(s, worker_ids), now):
        held = latest.get(worker_id)
        if held is None or end.astimezone(UTC) > held[1].astimezone(UTC):
            latest[worker_id] = (start, end)
    if not latest:
        return []
    users = s.exec(select(User).where(col(User.id).in_(latest)))
    out = [
        OpenWalkIn(u.id, u.name, *latest[u.id])
        for u in users
        if u.id is not None and u.active and u.role in CASELOAD_ROLES
    ]
    return sorted(out, key=lambda w: (w.worker_name.casefold(), w.worker_id))


def next_walk_in(s: Session, worker_id: int, now: datetime) -> datetime | None:
    """Return when the worker's walk-in hours next open (within four weeks), if ever."""
    found: list[datetime] = []
    for rule in load_rules(s, [worker_id]):
        if rule.mode != "walk_in":
            continue
        day = now.astimezone(rule.tz).date()
        found += [
            st for st, _ in occurrences(rule, day, day + timedelta(days=28)) if st.astimezone(UTC) > now
        ]
    return min(found, key=lambda d: d.astimezone(UTC)) if found else None
