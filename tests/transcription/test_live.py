"""Speech sent up a real WebRTC uplink is transcribed while the visit runs, captioned and stored."""

from __future__ import annotations

from pathlib import Path

import jiwer

from tests.conftest import AppMaker, Clock, Staff, login
from tests.helpers import admit, next_message, ok
from tests.transcription.live_visit import speak, waiting_visit
from tests.visits.audio_fixtures import make_speech_wav

SAID = "I lost my job last month and I need help paying the rent"


async def test_a_clients_words_become_a_caption_and_a_transcript_line(
    make_client: AppMaker, staff: Staff, clock: Clock, tmp_path: Path
) -> None:
    visit = await waiting_visit(make_client, staff, clock, tmp_path, within=30)
    client, w, visit_id = visit.client, visit.worker, visit.visit_id
    await admit(client, w, visit_id, visit.joined["participant_id"])

    # The client's browser, played by aiortc: its microphone is a WAV of espeak-ng speech.
    wav = make_speech_wav(tmp_path / "said.wav", SAID, lead_silence=0.5, tail_silence=1.5)
    uplink = await speak(visit, wav)
    try:
        caption = await next_message(visit.worker_ws, "caption", within=30)  # live, while the visit runs
    finally:
        await uplink.close()
    assert caption["speaker"] == "client"
    assert jiwer.wer(SAID.lower(), caption["text"].lower().strip(" .")) < 0.3, caption["text"]

    await ok(await client.post(f"/api/visits/{visit_id}/end", json={}, headers=w))
    lines = await ok(await client.get(f"/api/visits/{visit_id}/transcript", headers=w))
    assert [(line["speaker"], line["name"]) for line in lines] == [("client", "Maria Lopez")]
    assert lines[0]["text"] == caption["text"] and 0 <= lines[0]["start"] < lines[0]["end"]
    # Each line points into the speaker's own recording, which plays with seeking.
    audio = await client.get(lines[0]["audio_url"], headers={**w, "Range": "bytes=44-"})
    assert audio.status == 206 and audio.content_type == "audio/wav" and len(await audio.read()) > 16000
    assert 0 <= lines[0]["audio_at"] <= lines[0]["start"]
    # Only the caseload reads it.
    other = await login(client, staff.other_worker.email)
    resp = await client.get(f"/api/visits/{visit_id}/transcript", headers=other)
    assert resp.status == 403

    # The draft note was filed by the time "End visit" answered, from the transcript.
    note = await ok(await client.get(f"/api/visits/{visit_id}/note", headers=w))
    assert note["status"] == "draft" and note["generated"] is True and note["header"]["consent"] is True
    assert [q["text"] for q in note["transcript"]] == [caption["text"]]
    assert any("rent" in q["text"].lower() for q in note["sections"]["client_words"])
    assert (await client.get(f"/api/visits/{visit_id}/note", headers=other)).status == 403

    # The worker edits (with the version they saw), signs; a signed note is not edited in place.
    edited = await ok(
        await client.patch(
            f"/api/notes/{note['id']}", json={"version": 1, "analysis": "Needs rent help."}, headers=w
        )
    )
    assert edited["version"] == 2 and edited["sections"]["analysis"] == "Needs rent help."
    stale = await client.patch(f"/api/notes/{note['id']}", json={"version": 1, "analysis": "x"}, headers=w)
    assert stale.status == 409  # someone else's edit is never silently overwritten
    signed = await ok(await client.post(f"/api/notes/{note['id']}/sign", headers=w))
    assert signed["status"] == "signed" and signed["signed_at"]
    # With no retention set, the audio is deleted at signing, and the note says what and when.
    assert signed["audio_deleted_at"] and any(name.endswith(".wav") for name in signed["audio_deleted"])
    assert not list((tmp_path / "var" / "audio" / str(visit_id)).glob("*"))
    gone = await client.get(lines[0]["audio_url"], headers=w)
    assert gone.status == 410
    late = await client.patch(f"/api/notes/{note['id']}", json={"version": 2, "analysis": "x"}, headers=w)
    assert late.status == 409
    # The supervisor reviews; returning needs a comment.
    sup = await login(client, staff.supervisor.email)
    assert (await client.post(f"/api/notes/{note['id']}/return", json={}, headers=sup)).status == 422
    assert (await client.post(f"/api/notes/{note['id']}/approve", json={}, headers=other)).status == 403
    approved = await ok(
        await client.post(f"/api/notes/{note['id']}/approve", json={"comment": "ok"}, headers=sup)
    )
    assert approved["status"] == "approved"
