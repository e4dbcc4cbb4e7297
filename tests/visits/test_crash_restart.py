"""`kill -9` of a real `lastmile serve` during a visit, or while its note is drafted.

The server runs as its own process with live transcription (the bundled tiny.en). A client and
the worker speak espeak-ng WAVs up real aiortc uplinks; the process is killed with SIGKILL once
their audio is on disk; a new process on the same database and data folder must file exactly one
note holding the words said before the kill, and a further restart must file nothing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from sqlalchemy import text
from sqlmodel import col, func, select

from caserecord.audit import Actor
from caserecord.cases import create_case
from caserecord.db import Database
from caserecord.models import AuditEvent, Note, TranscriptSegment, Visit, VisitParticipant
from caserecord.types import utcnow
from tests.conftest import DB_KINDS, PASSWORD, Staff
from tests.helpers import poll
from tests.visits.audio_fixtures import concat_wavs, make_speech_wav
from tests.visits.peers import offer_for
from visits.audio import SAMPLE_RATE, wav_data_bytes

REPO = Path(__file__).resolve().parents[2]
# Said before the kill: a first sentence the live transcriber stores, then a second one that is
# (most likely) only on disk when the process dies.
CLIENT_FIRST = "My landlord gave me an eviction notice last week."
CLIENT_SECOND = "The rent is due on Friday and I cannot pay it this month."
WORKER_SAID = "Thank you for calling. We can apply for emergency rental assistance today."
# Words of each sentence; any one shows the sentence reached the note (tiny.en mishears now and then).
SENTENCE_WORDS = (
    ("landlord", "eviction", "notice"),
    ("friday", "cannot pay", "this month"),
    ("emergency", "assistance"),
)
PCM_BYTES_PER_SECOND = SAMPLE_RATE * 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_database_url(db: Database) -> str:
    """Return a URL that reaches the test's database (and, on PostgreSQL, its own schema)."""
    url = db.engine.url
    if db.dialect == "sqlite":
        return url.render_as_string(hide_password=False)
    with db.engine.connect() as conn:
        search_path = str(conn.execute(text("SHOW search_path")).scalar()).replace(" ", "")
    return url.update_query_dict({"options": f"-csearch_path={search_path}"}).render_as_string(
        hide_password=False
    )


@dataclass
class Server:
    """One `lastmile serve` process; its log goes to a file the assertions quote."""

    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@dataclass
class Servers:
    """Starts `lastmile serve` processes on one database and data folder; kills leftovers."""

    env: dict[str, str]
    folder: Path
    started: list[Server] = field(default_factory=list)

    def _spawn(self, env: dict[str, str]) -> Server:
        port = _free_port()
        log = self.folder / f"server-{len(self.started) + 1}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "web.cli", "serve"],
                env={**self.env, **env, "LASTMILE_PORT": str(port)},
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(proc, f"http://127.0.0.1:{port}", log)
        self.started.append(server)
        return server

    async def start(self, **env: str) -> Server:
        """Start a server process (`env`: more LASTMILE_* settings) and wait until it answers /healthz."""
        server = self._spawn(env)
        proc = server.proc
        deadline = time.monotonic() + 90
        async with aiohttp.ClientSession() as http:
            while True:
                assert proc.poll() is None, f"the server exited: {server.tail()}"
                try:
                    async with http.get(f"{server.base}/healthz") as resp:
                        if resp.status == 200:
                            return server
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, f"the server did not come up: {server.tail()}"
                await asyncio.sleep(0.2)

    def kill9(self, server: Server) -> None:
        os.kill(server.proc.pid, signal.SIGKILL)
        assert server.proc.wait(timeout=30) == -signal.SIGKILL

    def stop(self, server: Server) -> None:
        server.proc.send_signal(signal.SIGINT)
        try:
            server.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
            raise

    def close(self) -> None:
        for server in self.started:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()


@pytest.fixture
def servers(database: Database, tmp_path: Path) -> Iterator[Servers]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTMILE_")}
    env.update(
        LASTMILE_CONFIG=str(tmp_path / "absent.toml"),
        LASTMILE_DATABASE_URL=_server_database_url(database),
        LASTMILE_DATA_DIR=str(tmp_path / "var"),
        LASTMILE_HOST="127.0.0.1",
        LASTMILE_TRANSCRIBE="1",
        LASTMILE_LOG_FORMAT="json",
        LASTMILE_OUTBOX_SENDER="0",
        LASTMILE_DB_THREADS="4",
    )
    running = Servers(env, tmp_path)
    yield running
    running.close()


def _new_visit(db: Database, staff: Staff, *, status: str = "scheduled") -> Visit:
    """A visit of the worker's, open for joining now (as a booking makes one)."""
    worker_id = staff.worker.id
    assert worker_id is not None
    now = utcnow()
    with db.session(write=True) as s:
        case, _ = create_case(s, Actor(worker_id, "worker"), worker_id=worker_id, client_name="Rosa Diaz")
        assert case.id is not None
        visit = Visit(
            case_id=case.id,
            worker_id=worker_id,
            status=status,
            join_token=secrets.token_urlsafe(32),
            join_opens_at=now - timedelta(minutes=10),
            join_expires_at=now + timedelta(hours=1),
            created_at=now,
            started_at=now if status == "ended" else None,
            ended_at=now if status == "ended" else None,
            recording=False if status == "ended" else None,
        )
        s.add(visit)
        s.flush()
        s.refresh(visit)
        return visit


@dataclass
class Talk:
    """A visit in progress on one server: who is in it and their uplink peers."""

    visit_id: int
    client_pid: int
    worker_pid: int
    worker_headers: dict[str, str]
    peers: list[tuple[RTCPeerConnection, MediaPlayer]]
    client_first_end: float
    client_second_end: float


async def _uplink(
    http: aiohttp.ClientSession, base: str, visit_id: int, wav: Path, headers: dict[str, str]
) -> tuple[RTCPeerConnection, MediaPlayer]:
    player = MediaPlayer(str(wav))
    assert player.audio is not None
    pc = await offer_for(player.audio)
    body = {"type": "offer", "sdp": pc.localDescription.sdp}
    async with http.post(f"{base}/api/visits/{visit_id}/uplink", json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc, player


def _seconds(path: Path) -> float:
    import wave

    with wave.open(str(path)) as w:
        return float(w.getnframes() / w.getframerate())


@asynccontextmanager
async def _talking(
    server: Server, db: Database, staff: Staff, folder: Path
) -> AsyncIterator[tuple[aiohttp.ClientSession, Talk]]:
    """Join, admit and start both speakers' uplinks; close the peers on the way out."""
    visit = _new_visit(db, staff)
    assert visit.id is not None
    lead = 0.5
    first = make_speech_wav(folder / "client-1.wav", CLIENT_FIRST, lead_silence=lead, tail_silence=2.0)
    second = make_speech_wav(folder / "client-2.wav", CLIENT_SECOND, lead_silence=0.0, tail_silence=15.0)
    client_wav = concat_wavs(folder / "client.wav", first, second)
    worker_wav = make_speech_wav(folder / "worker.wav", WORKER_SAID, lead_silence=lead, tail_silence=15.0)
    first_len = _seconds(first)
    second_speech = _seconds(second) - 15.0
    peers: list[tuple[RTCPeerConnection, MediaPlayer]] = []
    async with aiohttp.ClientSession(raise_for_status=False) as http:
        try:
            async with http.post(
                f"{server.base}/api/session", json={"email": staff.worker.email, "password": PASSWORD}
            ) as resp:
                assert resp.status == 200, await resp.text()
                worker_headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
            http.cookie_jar.clear()
            async with http.post(
                f"{server.base}/api/join/{visit.join_token}", json={"consent": True, "device": "computer"}
            ) as resp:
                assert resp.status == 200, await resp.text()
                joined = await resp.json()
            async with http.post(
                f"{server.base}/api/visits/{visit.id}/admit",
                json={"participant_id": joined["participant_id"]},
                headers=worker_headers,
            ) as resp:
                assert resp.status == 200, await resp.text()
            client_headers = {"X-Participant-Token": joined["participant_token"]}
            peers.append(await _uplink(http, server.base, visit.id, client_wav, client_headers))
            peers.append(await _uplink(http, server.base, visit.id, worker_wav, worker_headers))
            worker_pid = await poll(
                lambda: _worker_participant(db, visit.id or 0), within=30, what="the worker's participant"
            )
            yield (
                http,
                Talk(
                    visit_id=visit.id,
                    client_pid=int(joined["participant_id"]),
                    worker_pid=worker_pid,
                    worker_headers=worker_headers,
                    peers=peers,
                    client_first_end=first_len,
                    client_second_end=first_len + second_speech,
                ),
            )
        finally:
            for pc, player in peers:
                if player.audio is not None:
                    player.audio.stop()
                await pc.close()


def _worker_participant(db: Database, visit_id: int) -> int | None:
    with db.session() as s:
        q = select(VisitParticipant.id).where(
            VisitParticipant.visit_id == visit_id, VisitParticipant.kind == "worker"
        )
        return s.exec(q).first()


def _segments(db: Database, visit_id: int) -> list[TranscriptSegment]:
    with db.session() as s:
        q = select(TranscriptSegment).where(TranscriptSegment.visit_id == visit_id)
        return list(s.exec(q.order_by(col(TranscriptSegment.start_ms))))


def _on_disk(folder: Path, participant_id: int) -> float:
    """Seconds of a participant's first audio part that the file on disk holds right now."""
    return wav_data_bytes(folder / f"{participant_id}-1.wav") / PCM_BYTES_PER_SECOND


async def _until_spoken(db: Database, data_dir: Path, talk: Talk) -> None:
    """Wait until the first sentences are transcribed live and all speech is on disk."""
    folder = data_dir / "audio" / str(talk.visit_id)
    client, worker = f"client:{talk.client_pid}", f"worker:{talk.worker_pid}"

    def ready() -> bool:
        speakers = {seg.speaker for seg in _segments(db, talk.visit_id)}
        return (
            client in speakers
            and worker in speakers
            and _on_disk(folder, talk.client_pid) > talk.client_second_end + 0.3
        )

    await poll(ready, within=90, what="live segments of both speakers and the client's speech on disk")


def _notes(db: Database, visit_id: int) -> list[Note]:
    with db.session() as s:
        return list(s.exec(select(Note).where(Note.visit_id == visit_id)))


def _visit(db: Database, visit_id: int) -> Visit:
    with db.session() as s:
        visit = s.get(Visit, visit_id)
        assert visit is not None
        return visit


def _note_drafts(db: Database, visit_id: int) -> int:
    """Count the audit log's note.draft events of a visit."""
    with db.session() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "note.draft"))
        return sum(json.loads(e.detail).get("visit_id") == visit_id for e in events)


def _check_note(db: Database, talk: Talk) -> Note:
    """Exactly one note, drafted once, whose transcript holds what both speakers said."""
    (note,) = _notes(db, talk.visit_id)
    assert _note_drafts(db, talk.visit_id) == 1
    lines: list[dict[str, Any]] = json.loads(note.body)["transcript"]
    said = " ".join(str(line["text"]) for line in lines).lower()
    missing = [words for words in SENTENCE_WORDS if not any(w in said for w in words)]
    assert not missing, f"{missing} not in the note's transcript: {said!r}"
    speakers = {seg.speaker for seg in _segments(db, talk.visit_id)}
    assert speakers == {f"client:{talk.client_pid}", f"worker:{talk.worker_pid}"}
    return note


async def _restart_files_nothing_twice(servers: Servers, db: Database, staff: Staff, talk: Talk) -> None:
    """Start once more: the catch-up runs (it drafts a sentinel visit's note) and leaves ours alone."""
    before = [(n.id, n.version, n.body) for n in _notes(db, talk.visit_id)]
    segments = len(_segments(db, talk.visit_id))
    sentinel = _new_visit(db, staff, status="ended")
    assert sentinel.id is not None and sentinel.id > talk.visit_id
    server = await servers.start()
    await poll(lambda: _notes(db, sentinel.id or 0), within=60, what="the sentinel visit's note")
    assert [(n.id, n.version, n.body) for n in _notes(db, talk.visit_id)] == before
    assert _note_drafts(db, talk.visit_id) == 1
    assert len(_segments(db, talk.visit_id)) == segments
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(Note)).one() == 2
    servers.stop(server)


# Every restart path runs on SQLite; PostgreSQL runs the one a crash leaves most often (the code
# after the restart is the same on both; each case costs ~35 s of real Whisper and two processes).
MID_VISIT_CASES = [("sqlite", path) for path in ("window_passed", "worker_ends", "nobody_returns")]
if "postgresql" in DB_KINDS:
    MID_VISIT_CASES.append(("postgresql", "nobody_returns"))


@pytest.mark.parametrize(("database", "after_restart"), MID_VISIT_CASES, indirect=["database"])
async def test_killed_mid_visit_the_note_holds_what_was_said(
    servers: Servers, database: Database, staff: Staff, tmp_path: Path, after_restart: str
) -> None:
    server = await servers.start()
    async with _talking(server, database, staff, tmp_path) as (http, talk):
        await _until_spoken(database, tmp_path / "var", talk)
        servers.kill9(server)
    assert _visit(database, talk.visit_id).status == "in_progress"
    assert not _notes(database, talk.visit_id)

    if after_restart == "window_passed":
        # The server comes back after the visit's join window: the catch-up ends the visit.
        with database.session(write=True) as s:
            visit = s.get(Visit, talk.visit_id)
            assert visit is not None
            visit.join_expires_at = utcnow() - timedelta(minutes=1)
            s.add(visit)
        server = await servers.start()
        await poll(lambda: _notes(database, talk.visit_id), within=120, what="the note after the restart")
        ended = _visit(database, talk.visit_id)
        assert ended.status == "ended" and ended.end_reason == "ended after the server restarted"
    elif after_restart == "nobody_returns":
        # Back within the window, but nobody comes back to the call: it ends as one everyone left.
        server = await servers.start(LASTMILE_VISIT_EMPTY_SECONDS="2")
        await poll(lambda: _notes(database, talk.visit_id), within=120, what="the note after the restart")
        ended = _visit(database, talk.visit_id)
        assert ended.status == "ended" and ended.end_reason == "everyone left"
    else:
        # Back within the window: the visit is still on; the worker ends it from the new process.
        server = await servers.start()
        assert _visit(database, talk.visit_id).status == "in_progress"
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{server.base}/api/session", json={"email": staff.worker.email, "password": PASSWORD}
            ) as resp:
                headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
            async with http.post(
                f"{server.base}/api/visits/{talk.visit_id}/end", json={}, headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
        assert _visit(database, talk.visit_id).status == "ended"
    _check_note(database, talk)
    servers.stop(server)
    await _restart_files_nothing_twice(servers, database, staff, talk)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_killed_while_the_note_is_drafted(
    servers: Servers, database: Database, staff: Staff, tmp_path: Path
) -> None:
    server = await servers.start()
    async with _talking(server, database, staff, tmp_path) as (http, talk):
        await _until_spoken(database, tmp_path / "var", talk)

        async def end() -> None:
            url = f"{server.base}/api/visits/{talk.visit_id}/end"
            async with http.post(url, json={}, headers=talk.worker_headers) as resp:
                await resp.read()

        ending = asyncio.create_task(end())
        # Killed the moment the visit is recorded as ended: its uplinks and note are still in hand.
        await poll(
            lambda: _visit(database, talk.visit_id).status == "ended", within=30, what="the end", every=0.02
        )
        servers.kill9(server)
        with contextlib.suppress(aiohttp.ClientError):
            await ending
    killed_with_note = bool(_notes(database, talk.visit_id))

    server = await servers.start()
    await poll(lambda: _notes(database, talk.visit_id), within=120, what="the note after the restart")
    _check_note(database, talk)
    servers.stop(server)
    await _restart_files_nothing_twice(servers, database, staff, talk)
    # Not asserted (timing), but worth seeing when the test is read with -rP.
    print(f"note filed before the kill: {killed_with_note}")
