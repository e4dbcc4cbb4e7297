"""The pages listening for live nudges: a worker's own pages, and the supervisors' team pages.

The server only sends nudges ("a client is waiting", "visits" or "risk" changed); a team page then
fetches the authoritative lists from the API, so a missed nudge costs nothing but a delay (the
page also refreshes every 30 s) and these sockets never carry case data beyond a waiting client's
name to their own worker. `Feeds` is what the visits package is handed as its `Notifier`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlmodel import Session

from caserecord.db import Database
from caserecord.models import User

log = logging.getLogger(__name__)


@dataclass
class Feeds:
    """Open `/ws/worker` sockets by worker, and `/ws/supervisor` sockets by user (admins hear all)."""

    db: Database
    workers: dict[int, set[web.WebSocketResponse]] = field(default_factory=dict)
    teams: dict[int, tuple[str, set[web.WebSocketResponse]]] = field(default_factory=dict)

    def add_worker(self, user_id: int, ws: web.WebSocketResponse) -> None:
        self.workers.setdefault(user_id, set()).add(ws)

    def discard_worker(self, user_id: int, ws: web.WebSocketResponse) -> None:
        self.workers.get(user_id, set()).discard(ws)

    def add_team(self, user_id: int, role: str, ws: web.WebSocketResponse) -> None:
        self.teams.setdefault(user_id, (role, set()))[1].add(ws)

    def discard_team(self, user_id: int, ws: web.WebSocketResponse) -> None:
        entry = self.teams.get(user_id)
        if entry is not None:
            entry[1].discard(ws)
            if not entry[1]:
                del self.teams[user_id]

    async def worker(self, worker_id: int, message: dict[str, Any]) -> None:
        """Send a message to every open /worker page of one worker."""
        for ws in list(self.workers.get(worker_id, ())):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(message)

    async def team(self, worker_id: int, kind: str) -> None:
        """Nudge the pages of `worker_id`'s supervisor and of every admin that `kind` changed."""
        if not self.teams:
            return
        try:
            boss = await self.db.read(_supervisor_of, worker_id)
            for user_id, (role, sockets) in list(self.teams.items()):
                if role == "admin" or user_id == boss:
                    for ws in list(sockets):
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await ws.send_json({"type": kind})
        except Exception:  # a nudge must never break the action that caused it
            log.exception("could not notify the team page")

    async def close(self) -> None:
        """Close every listening socket (the server is stopping)."""
        sockets = [ws for group in self.workers.values() for ws in group]
        sockets += [ws for _, group in self.teams.values() for ws in group]
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close(message=b"server shutting down")


def _supervisor_of(s: Session, worker_id: int) -> int | None:
    user = s.get(User, worker_id)
    return user.supervisor_id if user is not None else None
