"""A walk-in at a library kiosk in headless Chromium: pick a queue, name, check, consent, wait, talk.

The worker holds walk-in hours now. The kiosk lists them; the client taps the worker, types a
name, goes through the device check and consent, and waits. The worker's page hears of it, the
worker admits, the call connects, and after "End visit" the kiosk is back at its start and keeps
nothing of the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from caserecord.audit import Actor
from caserecord.db import Database
from scheduler import blocks
from tests.conftest import Clock, add_user
from tests.e2e.helpers import (
    ARTIFACTS,
    admit_and_connect,
    block_spec,
    chromium_saying,
    media_context,
    serve,
    sign_in,
    speech_wav,
)
from tests.e2e.test_visit_call import SPEECH

CLIENT = "Ada Obi"


@pytest.fixture
async def served(sqlite_db: Database, clock: Clock, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """The real app on a free port; the worker's walk-in hours are open (Monday 09:00-11:00 LA)."""
    worker = add_user(sqlite_db, "wren@agency.test", "worker", tz="America/Los_Angeles")
    assert worker.id is not None
    now = datetime(2026, 3, 2, 17, 5, tzinfo=UTC)  # Monday 09:05 in Los Angeles
    clock.now = now
    spec = block_spec(("MO",), time(9), time(11), now.date() - timedelta(days=7), mode="walk_in")
    with sqlite_db.session(write=True) as s:
        blocks.create_block(s, Actor(worker.id, "worker"), worker.id, spec)
    # No Whisper model here: the audio uplink still runs; captions are the other test's business.
    async with serve(sqlite_db, clock, tmp_path / "var", visit_grace_seconds=5, transcribe=False) as base:
        yield base, tmp_path / "var"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium whose microphone says the call test's SPEECH once."""
    async with chromium_saying(speech_wav(tmp_path / "speech.wav", SPEECH)) as chromium:
        yield chromium


async def test_a_walk_in_at_the_kiosk(served: tuple[str, Path], browser: Browser) -> None:
    base, data_dir = served
    # The worker sits on their own page, which hears of anyone waiting.
    worker = await sign_in(await media_context(browser), base, "wren@agency.test", "/worker")

    kiosk_ctx = await media_context(browser, viewport={"width": 1024, "height": 768})
    kiosk = await kiosk_ctx.new_page()
    errors: list[str] = []
    kiosk.on("pageerror", lambda e: errors.append(str(e)))
    await kiosk.goto(f"{base}/kiosk")
    await expect(kiosk.get_by_label("Type the 6-digit code from your invitation")).to_be_visible()
    queues = kiosk.locator("#walk-ins")
    await expect(queues).to_contain_text("open until 11:00 PST")
    ARTIFACTS.mkdir(exist_ok=True)
    await kiosk.screenshot(path=ARTIFACTS / "kiosk-walk-ins.png", full_page=True)
    await queues.get_by_role("button", name="Wren").click()

    await expect(kiosk.get_by_role("heading", name="Walk-in hours with Wren")).to_be_visible()
    await expect(kiosk.get_by_text("Camera: working")).to_be_visible()
    await expect(kiosk.locator("#check-net")).to_contain_text("good")
    # The name is required: the form does not go without it.
    await kiosk.get_by_role("button", name="Join visit").click()
    await expect(kiosk.locator("#consent")).to_be_visible()
    assert await kiosk.evaluate("() => window.lastmile.state") == "check,consent"
    await kiosk.get_by_label("Your name").fill(CLIENT)
    await kiosk.get_by_label("I agree that this visit will be recorded and transcribed", exact=False).check()
    await kiosk.get_by_role("button", name="Join visit").click()
    await expect(kiosk.locator("#waiting-status")).to_contain_text("Wren")
    # The name is off the screen while the client waits.
    await expect(kiosk.locator("#walkin-who")).to_be_hidden()
    assert await kiosk.locator("#walkin-name").input_value() == ""
    await kiosk.screenshot(path=ARTIFACTS / "kiosk-walk-in-waiting.png", full_page=True)

    # The worker is told, opens the visit and admits the walk-in like any waiting client.
    banner = worker.get_by_role("alert")
    await expect(banner).to_contain_text(f"{CLIENT} is waiting (on a kiosk)")
    await banner.get_by_role("link", name="Open the visit").click()
    await worker.wait_for_url("**/visit/**")
    visit_id = int(worker.url.rstrip("/").rsplit("/", 1)[1])
    await expect(worker.locator("#waiting-list")).to_contain_text("kiosk · agreed to recording")
    await admit_and_connect(worker, kiosk, CLIENT)
    await expect(kiosk.locator("#recording-note")).to_contain_text("recorded and transcribed")
    await expect(worker.locator("#people")).to_contain_text(f"{CLIENT} (client): connected")
    await kiosk.screenshot(path=ARTIFACTS / "kiosk-walk-in-call.png", full_page=True)
    await kiosk.wait_for_timeout(2_000)

    worker.once("dialog", lambda dialog: dialog.accept())
    await worker.get_by_role("button", name="End visit").click()
    await expect(kiosk.get_by_text("The visit has ended")).to_be_visible()
    await expect(worker.locator("#visit-status")).to_have_text("ended")

    # The kiosk goes back to its start by itself and keeps nothing of the client.
    await expect(kiosk.get_by_label("Type the 6-digit code from your invitation")).to_be_visible(
        timeout=20_000
    )
    assert kiosk.url == f"{base}/kiosk"
    await expect(kiosk.locator("#walk-ins")).to_contain_text("open until 11:00 PST")
    assert CLIENT not in await kiosk.content()
    assert await kiosk.evaluate("() => sessionStorage.length + localStorage.length") == 0
    assert [c["name"] for c in await kiosk_ctx.cookies()] == ["lastmile_kiosk"]
    await kiosk.screenshot(path=ARTIFACTS / "kiosk-walk-in-reset.png", full_page=True)
    # The client's voice went to the server, as they agreed; the kiosk pages ran without an error.
    assert list((data_dir / "audio" / str(visit_id)).glob("*.wav"))
    assert errors == []
