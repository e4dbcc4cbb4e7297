"""From the call to an approved note, in Chromium: the worker and the client each speak, the worker
confirms the risk flag and signs, the supervisor approves.

Each side runs in its own headless Chromium so that each has its own espeak-ng microphone (the
fake capture file is a browser-wide flag); the supervisor signs in from a second context of the
worker's browser.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect
from sqlmodel import col, select

from caserecord.db import Database
from caserecord.models import Note, TranscriptSegment
from tests.conftest import Clock, Staff
from tests.e2e.helpers import (
    ARTIFACTS,
    book_visit,
    launch_chromium,
    media_context,
    serve,
    sign_in,
    speech_wav,
)
from tests.helpers import poll

CLIENT_SAYS = (
    "Hello, this is Maria. My landlord gave me an eviction notice, and we will be homeless next month."
)
# Either word raises the eviction flag; Whisper tiny.en mishears one now and then ("a victim").
CLIENT_RISK_WORDS = ("evict", "homeless")
WORKER_SAYS = "Thank you, Maria. I will apply for emergency rental assistance for you today."
POLL_EVERY = 0.25  # seconds between looks at the database


def _said(db: Database, visit_id: int) -> dict[str, str]:
    """Each speaker's stored transcript ("worker" / "client"), lower-cased."""
    with db.session() as s:
        q = select(TranscriptSegment).where(TranscriptSegment.visit_id == visit_id)
        rows = list(s.exec(q.order_by(col(TranscriptSegment.start_ms))))
    said: dict[str, str] = {}
    for row in rows:
        who = row.speaker.split(":")[0]
        said[who] = f"{said.get(who, '')} {row.text.lower()}"
    return said


def _note(db: Database, visit_id: int) -> Note | None:
    with db.session() as s:
        return s.exec(select(Note).where(Note.visit_id == visit_id)).first()


@pytest.fixture
async def browsers(tmp_path: Path) -> AsyncIterator[tuple[Browser, Browser]]:
    """The worker's and the client's Chromium, each with its own looping espeak-ng microphone."""
    worker_mic = speech_wav(tmp_path / "worker.wav", WORKER_SAYS, lead=2.0, tail=2.0)
    client_mic = speech_wav(tmp_path / "client.wav", CLIENT_SAYS, lead=1.0, tail=2.0)
    async with async_playwright() as p:
        worker = await launch_chromium(p, worker_mic, loop=True)
        client = await launch_chromium(p, client_mic, loop=True)
        try:
            yield worker, client
        finally:
            await client.close()
            await worker.close()


async def test_a_visit_note_is_signed_and_approved(
    database: Database, staff: Staff, clock: Clock, tmp_path: Path, browsers: tuple[Browser, Browser]
) -> None:
    worker_browser, client_browser = browsers
    _, visit = book_visit(database, staff.worker, clock)
    assert visit.id is not None and staff.worker.id is not None and staff.supervisor.id is not None
    visit_id = visit.id
    async with serve(database, clock, tmp_path / "var", visit_grace_seconds=5) as base:
        worker = await sign_in(await media_context(worker_browser), base, staff.worker.email, "/worker")
        await worker.goto(f"{base}/visit/{visit_id}")

        phone = await media_context(
            client_browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        client = await phone.new_page()
        await client.goto(f"{base}/j/{visit.join_token}")
        await expect(client.get_by_text("Camera: working")).to_be_visible()
        await client.get_by_label(
            "I agree that this visit will be recorded and transcribed", exact=False
        ).check()
        await client.get_by_role("button", name="Join visit").click()
        await expect(client.locator("#waiting-status")).to_contain_text("has been told you are here")

        await worker.get_by_role("button", name="Admit Maria Lopez").click()
        await client.wait_for_function("window.lastmile.pcState === 'connected'", timeout=30_000)
        await client.wait_for_function(
            "window.lastmile.uplink()?.connectionState === 'connected'", timeout=30_000
        )
        await worker.wait_for_function(
            "window.lastmile.uplink()?.connectionState === 'connected'", timeout=30_000
        )
        # Both keep talking (their microphones loop) until each has been heard and transcribed.
        heard: dict[str, str] = {}

        def both_heard() -> bool:
            heard.update(_said(database, visit_id))
            client_said = heard.get("client", "")
            return any(w in client_said for w in CLIENT_RISK_WORDS) and "assistance" in heard.get(
                "worker", ""
            )

        try:
            await poll(
                both_heard, within=120, what="both speakers' words in the stored transcript", every=POLL_EVERY
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; heard {heard}") from None
        # The supervisor watches the team page while the worker confirms the risk heard live.
        reviewer = await worker_browser.new_context(viewport={"width": 1100, "height": 800})
        reviewer.set_default_timeout(15_000)
        supervisor = await sign_in(reviewer, base, staff.supervisor.email, "/supervisor")
        await expect(supervisor.locator("#live")).to_contain_text("Maria Lopez")
        live_confirm = worker.get_by_role("button", name="Confirm risk: Eviction or homelessness").first
        await expect(live_confirm).to_be_visible(timeout=60_000)
        await live_confirm.click()
        await expect(worker.get_by_text("Your supervisor has been told").first).to_be_visible()
        await expect(supervisor.locator("#live-banner")).to_contain_text("New risk alert", timeout=30_000)
        await expect(supervisor.locator("#alerts")).to_contain_text("Maria Lopez")

        worker.once("dialog", lambda dialog: dialog.accept())
        await worker.get_by_role("button", name="End visit").click()
        await expect(client.get_by_text("The visit has ended")).to_be_visible(timeout=30_000)
        await expect(worker.locator("#visit-status")).to_have_text("ended", timeout=30_000)
        await phone.close()

        # The worker reviews the draft: confirms the suggested flag, saves, signs.
        note = await poll(
            lambda: _note(database, visit_id), within=60, what="the drafted note", every=POLL_EVERY
        )
        await worker.goto(f"{base}/notes/{note.id}")
        await expect(worker.get_by_role("heading", name="Visit note: Maria Lopez")).to_be_visible()
        confirmed = worker.get_by_role("radio", name="confirmed")
        assert await confirmed.count() >= 1, "the client's words raise an eviction flag"
        for i in range(await confirmed.count()):
            await confirmed.nth(i).check()
        await worker.get_by_role("button", name="Save").click()
        await expect(worker.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
        for i in range(await confirmed.count()):
            await expect(confirmed.nth(i)).to_be_checked()
        await worker.get_by_role("button", name="Sign the note").click()
        await expect(worker.get_by_role("status").filter(has_text="Signed.")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        await worker.screenshot(path=ARTIFACTS / "note-signed.png", full_page=True)

        # The worker's supervisor, in a context of their own, approves it.
        await supervisor.goto(f"{base}/notes/{note.id}")
        await supervisor.get_by_role("button", name="Approve").click()
        await expect(supervisor.get_by_role("status").filter(has_text="Approved.")).to_be_visible()
        await supervisor.screenshot(path=ARTIFACTS / "note-approved.png", full_page=True)

    approved = _note(database, visit_id)
    assert approved is not None
    assert approved.status == "approved"
    assert approved.signed_by == staff.worker.id and approved.signed_at is not None
    assert approved.reviewed_by == staff.supervisor.id and approved.reviewed_at is not None
    body = json.loads(approved.body)
    flags = body["risk_flags"]
    assert flags and all(f["status"] == "confirmed" for f in flags), flags
    assert "eviction_or_homelessness" in {f["category"] for f in flags}
    # The note's transcript holds both speakers' words.
    by_speaker: dict[str, str] = {}
    for line in body["transcript"]:
        who = str(line["role"])
        by_speaker[who] = f"{by_speaker.get(who, '')} {str(line['text']).lower()}"
    assert any(w in by_speaker.get("client", "") for w in CLIENT_RISK_WORDS), by_speaker
    assert "assistance" in by_speaker.get("worker", ""), by_speaker
