"""A visit's whole life in a running process: check-in, the waiting room, admit, the call, end.

`VisitRuntime` owns the live parts (presence, the server's audio peers, the audio store) and calls
the case record for every change. What happens around a visit is handed in by the app factory,
so this package imports neither the web layer nor transcription:

- `notify` tells the worker's and the supervisors' pages that something changed;
- `sink_factory` gives each visit the sink its consenting speakers' audio streams to;
- `on_ended` runs once the visit is over and its last audio is in (the note is drafted there).

Blocking work (the database, file deletion) runs off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiortc import RTCIceServer
from sqlmodel import Session

import visits.admission as admission
import visits.lifecycle as lifecycle
from caserecord import notes
from caserecord.audit import Actor
from caserecord.db import Database
from caserecord.errors import RecordError
from caserecord.models import Note, User, Visit, VisitParticipant
from caserecord.visit_status import LIVE
from visits.audio import AudioPart, AudioStore
from visits.hub import Peer, Presence, VisitHub
from visits.lifecycle import VisitSnapshot
from visits.uplink import AudioSink, UplinkKey, UplinkRegistry

log = logging.getLogger(__name__)

Publish = Callable[[int, dict[str, Any], str | None], Awaitable[None]]
SinkFactory = Callable[[int, Publish], AudioSink | None]
OnEnded = Callable[[int], Awaitable[None]]
RETENTION_EVERY = 24 * 3600.0


class Notifier(Protocol):
    """Where the pages that watch visits hear that something changed (the web layer's sockets)."""

    async def worker(self, worker_id: int, message: dict[str, Any]) -> None:
        """Tell the worker's own pages `message` (a client is waiting)."""

    async def team(self, worker_id: int, kind: str) -> None:
        """Nudge the pages of the worker's supervisors: their `kind` ("visits", "risk") changed."""


@dataclass(frozen=True, slots=True)
class VisitOptions:
    """How visits behave in this deployment."""

    grace: float = 20.0  # a dropped participant is "reconnecting" this long before counting as gone
    empty_timeout: float = 300.0  # a visit everyone has left ends after this long
    server_ice_servers: tuple[dict[str, Any], ...] = ()  # for the server's own audio peer
    audio_retention: timedelta = timedelta(0)  # audio is kept this long after the note is signed
    walk_in_grace: timedelta = timedelta(minutes=30)  # a walk-in's link works this long after the hours


@dataclass(frozen=True, slots=True)
class Admission:
    """A client in the waiting room: who, their secret participant token, and the visit."""

    participant: VisitParticipant
    token: str
    visit: Visit


def rtc_servers(servers: tuple[dict[str, Any], ...]) -> list[RTCIceServer]:
    """Turn configured ICE servers into aiortc's."""
    return [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in servers
    ]


def staff_state(snap: VisitSnapshot, presence: Presence) -> dict[str, Any]:
    """What the worker's call page is sent: the visit, everyone in it, the waiting room's messages."""
    names = {p.id: p.name for p in snap.participants}
    return {
        "type": "state",
        "visit": {"id": snap.visit.id, "status": snap.visit.status, "recording": snap.visit.recording},
        "participants": [
            {
                "id": p.id,
                "kind": p.kind,
                "name": p.name,
                "state": p.state,
                "presence": presence.of(p.id or 0, p.state),
                "device": p.device,
                "via": p.via,
                "consent": p.consent,
                "joined_at": p.joined_at.isoformat(),
            }
            for p in snap.participants
        ],
        "messages": [
            {
                "participant_id": m.participant_id,
                "name": names.get(m.participant_id, ""),
                "text": m.text,
                "at": m.at.isoformat(),
            }
            for m in snap.messages
        ],
    }


def client_state(snap: VisitSnapshot, presence: Presence, participant_id: int) -> dict[str, Any]:
    """What a client's page is sent: whether the worker is there and whether they are admitted."""
    me = next((p for p in snap.participants if p.id == participant_id), None)
    staff = [p for p in snap.participants if p.kind == "worker"]
    return {
        "type": "state",
        "visit": {"id": snap.visit.id, "status": snap.visit.status},
        "worker_present": any((p.id or 0) in presence.connected for p in staff),
        "worker_name": snap.worker_name,
        "admitted": me is not None and me.state == "admitted",
        "workers": [p.id for p in staff if presence.of(p.id or 0, p.state) == "connected"],
    }


def waiting_notice(part: VisitParticipant, visit: Visit, *, walk_in: bool = False) -> dict[str, Any]:
    """What the worker's own pages are told when a client starts waiting."""
    notice: dict[str, Any] = {
        "type": "waiting",
        "visit_id": visit.id,
        "name": part.name,
        "device": part.device,
        "since": part.joined_at.isoformat(),
    }
    if walk_in:
        notice |= {"via": part.via, "walk_in": True}
    return notice


class VisitRuntime:
    """The live side of every visit this process holds."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        store: AudioStore,
        options: VisitOptions,
        *,
        notify: Notifier,
        sink_factory: SinkFactory | None = None,
        on_ended: OnEnded | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.store = store
        self.options = options
        self._notify = notify
        self._on_ended = on_ended
        self.hub = VisitHub(
            grace=options.grace, empty_timeout=options.empty_timeout, on_gone=self._gone, on_empty=self._empty
        )

        def sink_for(visit_id: int) -> AudioSink | None:
            return sink_factory(visit_id, self.publish) if sink_factory is not None else None

        # The server's own ICE servers are separate from the browsers': an unreachable STUN
        # server would cost every uplink 5 s, and loopback or LAN needs none.
        self.uplinks = UplinkRegistry(
            store,
            ice_servers=rtc_servers(options.server_ice_servers) or None,
            clock=clock,
            sink_factory=sink_for,
        )
        self._background: set[asyncio.Task[None]] = set()

    # --- lifetime ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Pick up after a restart: end visits whose time has passed, watch calls cut off; keep retention."""
        for visit_id in await self.db.write(lifecycle.end_stale, self.clock()):
            log.info("visit ended after a restart", extra={"visit_id": visit_id})
        # Calls cut off within their time: if nobody comes back, they end as any call all left.
        for visit_id in await self.db.read(lifecycle.calls_in_progress):
            self.hub.watch(visit_id)
        self.spawn(self._retention_daily())

    async def stop(self) -> None:
        """Stop the background work, close every room and peer, flush the audio store."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.hub.close()
        await self.uplinks.close()  # finishes every visit's sink first
        self.store.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in a task that `stop` waits for (errors are logged)."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)

    # --- presence and state --------------------------------------------------------------------

    def presence(self, visit_id: int) -> Presence:
        """Return who is connected to the visit now."""
        return self.hub.presence(visit_id)

    async def publish(self, visit_id: int, message: dict[str, Any], kind: str | None = None) -> None:
        """Send `message` to everyone connected to the visit (or to one kind: "worker", "client")."""
        await self.hub.broadcast(visit_id, message, kind=kind)

    async def push_state(self, visit_id: int) -> None:
        """Send each connected participant the visit's current state (staff see everyone)."""
        snap = await self.db.read(lifecycle.snapshot, visit_id)
        presence = self.presence(visit_id)
        staff = staff_state(snap, presence)
        for pid, peer in self.hub.connected(visit_id).items():
            message = staff if peer.kind == "worker" else client_state(snap, presence, pid)
            await self.hub.send(visit_id, pid, message)
        # The people in the visit first; then the supervisors' pages (a database read to find them).
        await self._notify.team(snap.visit.worker_id, "visits")

    # --- the client's side ---------------------------------------------------------------------

    async def check_in(
        self,
        join_token: str,
        *,
        device: str,
        consent: bool,
        ip: str | None,
        participant_token: str | None = None,
    ) -> Admission:
        """Check a client in to the waiting room from their link or the kiosk (or rejoin them)."""
        part, token, visit = await self.db.write(
            admission.check_in,
            join_token,
            device=device,
            consent=consent,
            now=self.clock(),
            ip=ip,
            participant_token=participant_token,
        )
        assert visit.id is not None
        await self.push_state(visit.id)
        await self._notify.worker(visit.worker_id, waiting_notice(part, visit))
        return Admission(part, token, visit)

    async def walk_in(
        self,
        worker_of: Callable[[Session], User],
        *,
        name: str,
        phone: str | None,
        consent: bool,
        device: str,
        ip: str | None,
    ) -> Admission:
        """Put a client in a worker's walk-in queue; `worker_of(session)` finds the worker."""
        now = self.clock()

        def run(s: Session) -> tuple[VisitParticipant, str, Visit]:
            return admission.walk_in(
                s,
                worker_of(s),
                now,
                name=name,
                phone=phone,
                consent=consent,
                device=device,
                ip=ip,
                grace=self.options.walk_in_grace,
            )

        part, token, visit = await self.db.write(run)
        await self._notify.worker(visit.worker_id, waiting_notice(part, visit, walk_in=True))
        return Admission(part, token, visit)

    # --- the worker's side ---------------------------------------------------------------------

    async def admit(self, actor: Actor, visit_id: int, participant_id: int) -> VisitSnapshot:
        """Admit a waiting client; the call starts."""
        await self.db.write(lifecycle.admit, actor, visit_id, participant_id, self.clock())
        await self.hub.send(visit_id, participant_id, {"type": "admitted"})
        await self.push_state(visit_id)
        return await self.db.read(lifecycle.snapshot, visit_id)

    async def end(self, actor: Actor, visit_id: int, reason: str, *, check: bool = True) -> VisitSnapshot:
        """End the visit for everyone; once each speaker's last audio is in, `on_ended` runs."""
        visit = await self.db.write(lifecycle.end, actor, visit_id, reason, self.clock(), check=check)
        await self.hub.close_room(visit_id, {"type": "ended", "reason": reason})
        await self._notify.team(visit.worker_id, "visits")
        log.info("visit ended", extra={"visit_id": visit_id, "reason": reason})
        # Finishing the uplinks hands each speaker's last utterance to the sink; then the note.
        await self.uplinks.close_visit(visit_id)
        if self._on_ended is not None:
            try:
                await self._on_ended(visit_id)
            except Exception:  # the visit has ended either way; the note is drafted again after a restart
                log.exception("after the visit: drafting the note failed", extra={"visit_id": visit_id})
        return await self.db.read(lifecycle.snapshot, visit_id)

    async def uplink(self, visit_id: int, sdp: str, *, participant_token: str, actor: Actor | None) -> str:
        """Answer a participant's audio-only offer (raises UplinkError for an offer not answered)."""
        part, visit = await self.db.write(
            lifecycle.uplink_speaker, visit_id, self.clock(), participant_token=participant_token, actor=actor
        )
        lifecycle.check_call_on(visit)
        assert part.id is not None and visit.started_at is not None
        speaker = f"{part.kind}:{part.id}"
        return await self.uplinks.accept(UplinkKey(visit_id, part.id), speaker, visit.started_at, sdp)

    # --- the visit's socket --------------------------------------------------------------------

    async def open_socket(
        self, visit_id: int, *, actor: Actor | None, hello_token: str | None
    ) -> tuple[VisitParticipant, Visit]:
        """Return who a new socket belongs to: signed-in staff, or the client of the hello's token."""
        if actor is not None:
            return await self.db.write(lifecycle.staff_participant, actor, visit_id, self.clock())
        return await self.db.read(admission.hello, visit_id, hello_token or "")

    @staticmethod
    def is_live(visit: Visit) -> bool:
        return visit.status in LIVE

    async def attach(self, visit_id: int, peer: Peer, greeting: dict[str, Any]) -> None:
        """Register a participant's socket, greet it, and tell everyone the new state."""
        await self.hub.attach(visit_id, peer)
        await peer.ws.send_json(greeting)
        await self.push_state(visit_id)

    def detach(self, visit_id: int, peer: Peer) -> None:
        """Forget a closed socket; the others are told from a task of its own.

        aiohttp may cancel the socket's handler when the connection drops, so nothing here awaits.
        """
        self.hub.detach(visit_id, peer)
        self.spawn(self.push_state(visit_id))

    async def relay(self, visit_id: int, peer: Peer, to: int, data: dict[str, Any]) -> str | None:
        """Pass a WebRTC signal on; return why not, if it cannot go."""
        target = self.hub.connected(visit_id).get(to)
        # Media flows between the worker and admitted clients only.
        if target is None or target.kind == peer.kind:
            return f"participant {to} is not reachable"
        if peer.kind == "client" and not await self.db.read(lifecycle.is_admitted, peer.participant_id):
            return "wait until the worker admits you"
        await self.hub.send(visit_id, to, {"type": "signal", "from": peer.participant_id, "data": data})
        return None

    async def client_ready(self, visit_id: int, peer: Peer) -> None:
        """Tell the worker the admitted client's media is ready."""
        await self.hub.broadcast(visit_id, {"type": "ready", "from": peer.participant_id}, kind="worker")

    async def client_message(self, visit_id: int, peer: Peer, text: str) -> str | None:
        """Store a waiting client's message for the worker; return why not, if refused."""
        try:
            await self.db.write(lifecycle.add_message, peer.participant_id, text, self.clock())
        except RecordError as exc:
            return exc.detail
        await self.push_state(visit_id)
        return None

    async def _gone(self, visit_id: int, participant_id: int) -> None:
        await self.db.write(lifecycle.leave, participant_id, self.clock())
        await self.uplinks.close_participant(UplinkKey(visit_id, participant_id))
        await self.push_state(visit_id)

    async def _empty(self, visit_id: int) -> None:
        await self.end(Actor.system(), visit_id, "everyone left", check=False)

    # --- audio and its retention ---------------------------------------------------------------

    async def parts(self, visit_id: int) -> list[AudioPart]:
        """Return the visit's recorded parts."""
        return await asyncio.to_thread(self.store.parts, visit_id)

    async def sign_note(self, actor: Actor, note_id: int) -> Note:
        """Sign a note; with no retention its visit's audio is deleted at once."""
        note = await self.db.write(notes.sign_note, actor, note_id, self.clock())
        if self.options.audio_retention <= timedelta(0):
            await self.enforce_retention()
            note = await self.db.read(notes.get_note, note_id)
        return note

    async def enforce_retention(self) -> int:
        """Delete the audio of signed notes past the agency's retention; return how many visits."""
        now = self.clock()
        due = await self.db.read(notes.audio_due, now, self.options.audio_retention)
        for note in due:
            assert note.id is not None
            files = await asyncio.to_thread(self.store.delete_visit, note.visit_id)
            await self.db.write(notes.record_audio_deleted, note.id, files, now)
            log.info(
                "audio deleted", extra={"visit_id": note.visit_id, "note_id": note.id, "files": len(files)}
            )
        return len(due)

    async def _retention_daily(self) -> None:
        while True:
            try:
                await self.enforce_retention()
            except Exception:
                log.exception("enforcing audio retention failed")
            await asyncio.sleep(RETENTION_EVERY)
