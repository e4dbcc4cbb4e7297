"""Walk-in hours: when a worker's walk-in queue is open, which queues a kiosk may show, walk-in links.

A worker's walk-in link (`/w/<token>`) and the kiosk's list both lead to one worker's queue; the
visits package puts a client in it while the hours are open (`queue_at` says whether they are).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from caserecord.access import require_worker_write
from caserecord.audit import Actor
from caserecord.errors import NotFound
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


@dataclass(frozen=True, slots=True)
class Queue:
    """One worker's walk-in queue as a link or kiosk finds it: open now (until when) or when next."""

    worker: User
    window: tuple[datetime, datetime] | None
    next_open: datetime | None


def _queue(s: Session, worker: User, now: datetime) -> Queue:
    assert worker.id is not None
    window = walk_in_window(s, worker.id, now)
    return Queue(worker, window, None if window is not None else next_walk_in(s, worker.id, now))


def worker_of_link(s: Session, token: str) -> User:
    """Return the worker behind a walk-in link, or raise NotFound."""
    user = s.exec(select(User).where(User.walkin_token == token)).first() if 20 <= len(token) <= 64 else None
    if user is None or not user.active or user.id is None:
        raise NotFound("this walk-in link is not valid")
    return user


def worker_of_kiosk(s: Session, worker_id: int) -> User:
    """Return the worker a kiosk client picked from the open walk-in hours, or raise NotFound."""
    user = s.get(User, worker_id)
    if user is None or not user.active or user.id is None or user.role not in CASELOAD_ROLES:
        raise NotFound("no walk-in queue for that worker; pick one from the list on the kiosk")
    return user


def queue_of_link(s: Session, token: str, now: datetime) -> Queue:
    """Return the queue a worker's walk-in link leads to, or raise NotFound."""
    return _queue(s, worker_of_link(s, token), now)


def queue_of_kiosk(s: Session, worker_id: int, now: datetime) -> Queue:
    """Return the queue a kiosk client picked, or raise NotFound."""
    return _queue(s, worker_of_kiosk(s, worker_id), now)


def link_token(s: Session, actor: Actor, worker_id: int) -> str:
    """Return the worker's walk-in link secret, making it the first time."""
    worker = require_worker_write(s, actor, worker_id)
    if worker.walkin_token is None:
        worker.walkin_token = secrets.token_urlsafe(24)
        s.add(worker)
        s.flush()
    assert worker.walkin_token is not None
    return worker.walkin_token
