"""Notes are filed exactly once per visit, also when the server stopped before drafting one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlmodel import func, select

from caserecord import transcripts
from caserecord.audit import Actor
from caserecord.db import Database
from caserecord.models import Note
from tests.conftest import AppMaker, Clock, Staff, login
from tests.helpers import admit, check_in, drafted_note, ok, tuesday_visit
from visits import lifecycle
from web.services import SERVICES


async def _ended_visit(
    make_client: AppMaker, staff: Staff, clock: Clock, consent: bool
) -> tuple[int, Database]:
    """Book, check in, admit and end a visit directly in the database, as a crashed server left it."""
    client, _, booking = await tuesday_visit(make_client, staff, clock, "Rosa Diaz")
    joined = await check_in(client, booking, consent=consent)
    visit_id = int(booking["visit_id"])
    db: Database = client.app[SERVICES].db
    assert staff.worker.id is not None
    worker = Actor(staff.worker.id, "worker")
    with db.session(write=True) as s:
        lifecycle.admit(s, worker, visit_id, joined["participant_id"], clock.now)
        pid = joined["participant_id"]
        if consent:
            transcripts.add_segment(
                s, visit_id, f"client:{pid}", 3.0, 6.5, "My landlord says we will be evicted.", []
            )
            transcripts.add_segment(
                s, visit_id, f"client:{pid}", 3.0, 6.5, "My landlord says we will be evicted.", []
            )
        lifecycle.end(s, worker, visit_id, "server stopped", clock.now)
    await client.close()
    return visit_id, db


async def test_a_restart_drafts_the_missing_note_once(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    visit_id, db = await _ended_visit(make_client, staff, clock, consent=True)
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(Note)).one() == 0
    first, second = await make_client(), await make_client()  # two processes start on one database
    note = await drafted_note(first, await login(first, staff.worker.email), visit_id)
    await asyncio.sleep(0.3)  # let the second process's catch-up run too
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(Note)).one() == 1
    assert second.app is not None
    # The segment stored twice (a re-transcription after the crash) is in the transcript once.
    assert [q["text"] for q in note["transcript"]] == ["My landlord says we will be evicted."]
    (flag,) = note["risk_flags"]
    assert (
        flag["status"] == "suggested" and "evicted" in flag["quote"]["text"] and flag["quote"]["start"] >= 3.0
    )


async def test_a_visit_without_consent_has_a_note_without_transcript(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    visit_id, _ = await _ended_visit(make_client, staff, clock, consent=False)
    client = await make_client()
    note = await drafted_note(client, await login(client, staff.worker.email), visit_id)
    assert note["header"]["consent"] is False and note["transcript"] == []
    assert "not recorded" in " ".join(note["sections"]["remarks"])


async def test_audio_is_kept_for_the_retention_period_after_signing(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path
) -> None:
    visit_id, db = await _ended_visit(make_client, staff, clock, consent=True)
    folder = tmp_path / "var" / "audio" / str(visit_id)
    folder.mkdir(parents=True)
    (folder / "2-1.wav").write_bytes(b"RIFF")
    (folder / "2-1.json").write_text("{}")
    client = await make_client(audio_retention_days=30)
    w = await login(client, staff.worker.email)
    note = await drafted_note(client, w, visit_id)
    signed = await ok(await client.post(f"/api/notes/{note['id']}/sign", headers=w))
    assert signed["audio_deleted_at"] is None and (folder / "2-1.wav").exists()
    clock.advance(days=29)
    assert await client.app[SERVICES].visits.enforce_retention() == 0 and (folder / "2-1.wav").exists()
    clock.advance(days=1, minutes=1)
    assert await client.app[SERVICES].visits.enforce_retention() == 1
    assert not folder.exists()
    with db.session() as s:
        kept = s.exec(select(Note).where(Note.visit_id == visit_id)).one()
    assert kept.audio_deleted_at == clock.now and kept.audio_deleted == '["2-1.json", "2-1.wav"]'


async def test_audio_left_on_disk_by_a_crash_is_transcribed_into_the_note(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path
) -> None:
    """The server died mid-visit (kill -9): the WAV on disk holds speech no segment covers."""
    import wave
    from datetime import UTC, datetime

    from tests.visits.audio_fixtures import make_speech_wav
    from visits.audio import AudioStore

    # The crashed process's transcriber never ran.
    client, w, booking = await tuesday_visit(make_client, staff, clock, "Rosa Diaz", transcribe=False)
    joined = await check_in(client, booking, consent=True)
    visit_id, pid = int(booking["visit_id"]), int(joined["participant_id"])
    await admit(client, w, visit_id, pid)
    said = "My landlord says we will be evicted next month."
    wav = make_speech_wav(tmp_path / "said.wav", said, rate=16_000, lead_silence=0.5, tail_silence=0.5)
    with wave.open(str(wav)) as f:
        pcm = f.readframes(f.getnframes())
    store = AudioStore(tmp_path / "var" / "audio")
    part = await store.open_part(visit_id, pid, f"client:{pid}", offset=12.0, started_at=datetime.now(UTC))
    await part.write(pcm)
    await part.flush()  # what reached the disk before the kill; the part is never closed
    store.close()
    await client.close()

    clock.advance(hours=2)  # the server comes back after the visit's time
    first, second = await make_client(), await make_client()
    w = await login(first, staff.worker.email)
    note = await drafted_note(first, w, visit_id)
    detail = await ok(await first.get(f"/api/visits/{visit_id}", headers=w))
    assert detail["status"] == "ended" and detail["end_reason"] == "ended after the server restarted"
    (line,) = note["transcript"]
    assert "evicted" in line["text"].lower() and line["start"] >= 12.0
    assert [f["category"] for f in note["risk_flags"]] == ["eviction_or_homelessness"]
    await asyncio.sleep(0.5)
    db: Database = first.app[SERVICES].db
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(Note)).one() == 1
    assert second.app is not None
