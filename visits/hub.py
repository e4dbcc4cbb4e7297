"""Live presence of a visit's participants: who is connected, who is reconnecting.

One room per visit, one socket per participant. A dropped socket is not a departure
at once: the participant is "reconnecting" for a grace period, so a network blip costs
nothing. When the grace runs out `on_gone` is called; when a room has been empty for
`empty_timeout`, `on_empty` is. (The browser's WebSocket closes the moment a tab dies,
while ICE takes about 30 s to notice: presence is the socket's, not the media's.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

Gone = Callable[[int, int], Awaitable[None]]
Empty = Callable[[int], Awaitable[None]]


@dataclass(eq=False)
class Peer:
    """One connected socket of one participant."""

    participant_id: int
    kind: str
    name: str
    ws: web.WebSocketResponse


@dataclass(frozen=True, slots=True)
class Presence:
    """Who in a visit has an open socket, and whose socket dropped within the grace period."""

    connected: frozenset[int] = frozenset()
    reconnecting: frozenset[int] = frozenset()

    def of(self, participant_id: int, state: str) -> str:
        """Say where a participant is: "connected", "reconnecting", "away" or "left"."""
        if state == "left":
            return "left"
        if participant_id in self.connected:
            return "connected"
        if participant_id in self.reconnecting:
            return "reconnecting"
        return "away"


@dataclass
class _Room:
    peers: dict[int, Peer] = field(default_factory=dict)
    leaving: dict[int, asyncio.TimerHandle] = field(default_factory=dict)
    empty: asyncio.TimerHandle | None = None


class VisitHub:
    """Rooms of connected participants, with grace periods before anyone counts as gone."""

    def __init__(self, *, grace: float, empty_timeout: float, on_gone: Gone, on_empty: Empty) -> None:
        self.grace = grace
        self.empty_timeout = empty_timeout
        self._on_gone = on_gone
        self._on_empty = on_empty
        self._rooms: dict[int, _Room] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _room(self, visit_id: int) -> _Room:
        return self._rooms.setdefault(visit_id, _Room())

    async def attach(self, visit_id: int, peer: Peer) -> None:
        """Register a participant's socket; an older socket of theirs is closed as replaced."""
        room = self._room(visit_id)
        timer = room.leaving.pop(peer.participant_id, None)
        if timer is not None:
            timer.cancel()
        if room.empty is not None:
            room.empty.cancel()
            room.empty = None
        old = room.peers.get(peer.participant_id)
        room.peers[peer.participant_id] = peer
        if old is not None and old.ws is not peer.ws:
            await old.ws.close(code=4000, message=b"replaced by a newer connection")

    def detach(self, visit_id: int, peer: Peer) -> None:
        """Forget a closed socket; start the participant's grace period."""
        room = self._rooms.get(visit_id)
        if room is None or room.peers.get(peer.participant_id) is not peer:
            return
        del room.peers[peer.participant_id]
        loop = asyncio.get_running_loop()
        room.leaving[peer.participant_id] = loop.call_later(
            self.grace, self._spawn, lambda: self._gone(visit_id, peer.participant_id)
        )
        if not room.peers and room.empty is None:
            room.empty = loop.call_later(self.empty_timeout, self._spawn, lambda: self._empty(visit_id))

    def watch(self, visit_id: int) -> None:
        """Start the empty countdown of a visit nobody has joined here (a call cut off by a restart)."""
        room = self._room(visit_id)
        if not room.peers and room.empty is None:
            loop = asyncio.get_running_loop()
            room.empty = loop.call_later(self.empty_timeout, self._spawn, lambda: self._empty(visit_id))

    def _spawn(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        # The coroutine is made only when the timer fires, so a cancelled timer leaves none behind.
        task = asyncio.ensure_future(make())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _gone(self, visit_id: int, participant_id: int) -> None:
        room = self._rooms.get(visit_id)
        if room is not None:
            room.leaving.pop(participant_id, None)
        try:
            await self._on_gone(visit_id, participant_id)
        except Exception:
            log.exception("on_gone failed", extra={"visit_id": visit_id, "participant_id": participant_id})

    async def _empty(self, visit_id: int) -> None:
        room = self._rooms.get(visit_id)
        if room is None or room.peers:
            return
        room.empty = None
        try:
            await self._on_empty(visit_id)
        except Exception:
            log.exception("on_empty failed", extra={"visit_id": visit_id})

    def connected(self, visit_id: int) -> dict[int, Peer]:
        """Return the participants with an open socket, by id."""
        room = self._rooms.get(visit_id)
        return dict(room.peers) if room is not None else {}

    def presence(self, visit_id: int) -> Presence:
        """Return who is connected and who is reconnecting in the visit."""
        room = self._rooms.get(visit_id)
        if room is None:
            return Presence()
        return Presence(frozenset(room.peers), frozenset(room.leaving))

    async def send(self, visit_id: int, participant_id: int, message: dict[str, Any]) -> bool:
        """Send one message to one participant; return whether they were connected."""
        peer = self.connected(visit_id).get(participant_id)
        if peer is None or peer.ws.closed:
            return False
        try:
            await peer.ws.send_str(json.dumps(message, default=str))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def broadcast(self, visit_id: int, message: dict[str, Any], *, kind: str | None = None) -> None:
        """Send a message to every connected participant (of one kind, if given)."""
        for pid, peer in self.connected(visit_id).items():
            if kind is None or peer.kind == kind:
                await self.send(visit_id, pid, message)

    async def close_room(self, visit_id: int, message: dict[str, Any]) -> None:
        """Tell everyone `message`, close their sockets and forget the room."""
        room = self._rooms.pop(visit_id, None)
        if room is None:
            return
        for timer in room.leaving.values():
            timer.cancel()
        if room.empty is not None:
            room.empty.cancel()
        for peer in list(room.peers.values()):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await peer.ws.send_str(json.dumps(message, default=str))
                await peer.ws.close(code=1000, message=b"visit ended")

    async def close(self) -> None:
        """Close every room and wait for pending callbacks."""
        for visit_id in list(self._rooms):
            await self.close_room(visit_id, {"type": "server_closing"})
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
