"""A whole visit in two headless Chromium contexts: link, check, consent, wait, admit, call, end.

The browsers use a fake camera and an espeak-ng WAV as their microphone; the test checks that
the peer connections reached `connected` and that the server's WAV for the client holds speech.
"""

from __future__ import annotations

import array
import json
import math
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from caserecord.db import Database
from tests.conftest import Clock, add_user
from tests.e2e.helpers import (
    ARTIFACTS,
    admit_and_connect,
    book_visit,
    chromium_saying,
    media_context,
    serve,
    sign_in,
    speech_wav,
)

SPEECH = "Hello, this is Maria. I am calling about my rent and the food benefits renewal for next month."


def rms(samples: array.array[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


@pytest.fixture
async def served(
    sqlite_db: Database, clock: Clock, tmp_path: Path
) -> AsyncIterator[tuple[str, int, str, Path]]:
    """The real app on a free port, a worker with office hours and a booked visit about to start."""
    worker = add_user(sqlite_db, "wren@agency.test", "worker", tz="America/Los_Angeles")
    _, visit = book_visit(sqlite_db, worker, clock)
    assert visit.id is not None
    async with serve(sqlite_db, clock, tmp_path / "var", visit_grace_seconds=5) as base:
        yield base, visit.id, visit.join_token, tmp_path / "var"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium whose microphone says SPEECH once, led by two seconds of silence."""
    async with chromium_saying(speech_wav(tmp_path / "speech.wav", SPEECH)) as chromium:
        yield chromium


async def _worker_page(browser: Browser, base: str, visit_id: int) -> Page:
    page = await sign_in(await media_context(browser), base, "wren@agency.test", "/worker")
    await page.goto(f"{base}/visit/{visit_id}")
    return page


async def test_a_visit_from_link_to_end(served: tuple[str, int, str, Path], browser: Browser) -> None:
    base, visit_id, join_token, data_dir = served
    worker = await _worker_page(browser, base, visit_id)
    await expect(worker.get_by_text("Nobody is waiting.")).to_be_visible()

    # CSP bypassed lets the test read window.lastmile; the page itself runs under the CSP.
    phone = await media_context(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    client = await phone.new_page()
    await client.goto(f"{base}/j/{join_token}")
    await expect(client.get_by_text("Camera: working")).to_be_visible()
    await expect(client.locator("#check-net")).to_contain_text("good")
    consent = client.get_by_label("I agree that this visit will be recorded and transcribed", exact=False)
    await consent.check()
    await client.get_by_role("button", name="Join visit").click()
    await expect(client.locator("#waiting-status")).to_contain_text("has been told you are here")
    ARTIFACTS.mkdir(exist_ok=True)
    await client.screenshot(path=ARTIFACTS / "visit-client-waiting.png", full_page=True)

    # The worker is alerted and admits.
    await expect(worker.get_by_role("alert")).to_contain_text("Maria Lopez is waiting")
    await worker.screenshot(path=ARTIFACTS / "visit-worker-waiting.png", full_page=True)
    await admit_and_connect(worker, client, "Maria Lopez")
    await expect(worker.locator("#call-status")).to_contain_text("Connected")
    await client.screenshot(path=ARTIFACTS / "visit-client-call.png", full_page=True)
    await worker.screenshot(path=ARTIFACTS / "visit-worker-call.png", full_page=True)
    # Let the client's speech reach the server.
    await client.wait_for_timeout(4_000)

    # The phone drops every connection at once (as on a switch from Wi-Fi to mobile data):
    # it rebuilds them by itself, without checking in again, and the visit carries on.
    await client.evaluate(
        "() => { const l = window.lastmile; l.socket().ws.close(); l.pc().close(); l.uplink().close(); }"
    )
    await client.wait_for_function(
        "window.lastmile.pcState === 'connected'"
        " && window.lastmile.uplink()?.connectionState === 'connected'",
        timeout=20_000,
    )
    await expect(worker.locator("#people")).to_contain_text("Maria Lopez (client): connected")
    # What she says is captioned live on both pages while the visit runs.
    # (Both browsers' fake microphones play the same sentence.)
    heard = worker.locator("#captions li", has_text="Client:").first
    await expect(heard).to_contain_text("Maria", timeout=20_000)
    await expect(client.locator("#captions li", has_text="You:").first).to_be_visible()
    worker.once("dialog", lambda dialog: dialog.accept())
    await worker.get_by_role("button", name="End visit").click()
    await expect(client.get_by_text("The visit has ended")).to_be_visible()
    await expect(worker.locator("#visit-status")).to_have_text("ended")

    # Seconds later the draft note waits on the worker's page, beside the transcript.
    to_sign = worker.locator("section[aria-labelledby=sign-h] a", has_text="Maria Lopez")
    for _ in range(60):  # "End visit" answers once the note is filed; the socket said "ended" before
        await worker.goto(f"{base}/worker")
        if await to_sign.count():
            break
        await worker.wait_for_timeout(500)
    await to_sign.first.click()
    await expect(worker.get_by_role("heading", name="Visit note: Maria Lopez")).to_be_visible()
    await expect(worker.locator(".transcript li").first).to_be_visible()
    await expect(worker.get_by_text("generated: check before signing")).to_be_visible()
    await worker.screenshot(path=ARTIFACTS / "note-review.png", full_page=True)

    # The server holds the client's speech: 16 kHz mono, seconds long, loud where she speaks.
    folder = data_dir / "audio" / str(visit_id)
    sidecars = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    speakers = sorted(str(side["speaker"]).split(":")[0] for side in sidecars)
    assert set(speakers) == {"client", "worker"}, sidecars  # one clean track per speaker
    client_parts = sorted(
        (side for side in sidecars if str(side["speaker"]).startswith("client:")),
        key=lambda side: side["part"],
    )
    # The rebuilt uplink is a second part of the same speaker, later on the visit's timeline.
    assert [side["part"] for side in client_parts] == [1, 2], client_parts
    assert client_parts[1]["offset"] > client_parts[0]["offset"] + 3
    samples: array.array[int] = array.array("h")
    for part in client_parts:
        with wave.open(str(folder / f"{part['participant_id']}-{part['part']}.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            samples.extend(array.array("h", w.readframes(w.getnframes())))
    seconds = len(samples) / 16000
    assert seconds > 6, f"only {seconds:.1f} s of the client's audio"
    windows = [rms(samples[i : i + 8000]) for i in range(0, len(samples) - 8000, 8000)]
    # The fake microphone plays two seconds of silence, then the sentence: both must show.
    assert max(windows) > 20 * max(1.0, min(windows)), windows
    assert sum(w > 500 for w in windows) >= 4, windows  # at least two seconds of speech


async def test_a_kiosk_visit_without_recording(served: tuple[str, int, str, Path], browser: Browser) -> None:
    """At a library kiosk: type the code, decline recording, talk, and the kiosk forgets it all."""
    base, visit_id, _, data_dir = served
    worker = await _worker_page(browser, base, visit_id)
    kiosk_ctx = await media_context(browser, viewport={"width": 1024, "height": 768})
    kiosk = await kiosk_ctx.new_page()
    await kiosk.goto(f"{base}/kiosk")
    await kiosk.get_by_label("Type the 6-digit code from your invitation").fill("000000")
    await kiosk.get_by_role("button", name="Continue").click()
    await expect(kiosk.get_by_role("alert")).to_contain_text("no visit has that code")
    kiosk_code = await _kiosk_code(base, worker, visit_id)
    await kiosk.get_by_label("Type the 6-digit code from your invitation").fill(kiosk_code)
    await kiosk.get_by_role("button", name="Continue").click()
    await expect(kiosk.get_by_text("Your visit with Wren")).to_be_visible()
    await expect(kiosk.get_by_text("Camera: working")).to_be_visible()
    # The consent box stays empty: the visit goes ahead, unrecorded.
    await kiosk.get_by_role("button", name="Join visit").click()
    await expect(worker.get_by_role("alert")).to_contain_text("on a kiosk")
    await expect(worker.locator("#waiting-list")).to_contain_text("declined recording")
    await worker.get_by_role("button", name="Admit Maria Lopez").click()
    await kiosk.wait_for_function("window.lastmile.pcState === 'connected'", timeout=20_000)
    await expect(kiosk.locator("#recording-note")).to_have_text("This visit is not recorded.")
    await kiosk.wait_for_timeout(2_000)
    worker.once("dialog", lambda dialog: dialog.accept())
    await worker.get_by_role("button", name="End visit").click()
    await expect(kiosk.get_by_text("The visit has ended")).to_be_visible()
    # The kiosk resets itself and keeps nothing of the client.
    await expect(kiosk.get_by_label("Type the 6-digit code from your invitation")).to_be_visible(
        timeout=20_000
    )
    assert await kiosk.evaluate("() => sessionStorage.length + localStorage.length") == 0
    assert (await kiosk_ctx.cookies()) == [
        c for c in await kiosk_ctx.cookies() if c["name"] == "lastmile_kiosk"
    ]
    # No audio of anyone went to the server.
    assert not list((data_dir / "audio" / str(visit_id)).glob("*.wav"))


async def _kiosk_code(base: str, worker: Page, visit_id: int) -> str:
    """Read the visit's kiosk code as the signed-in worker sees it (from the booking)."""
    code: str = await worker.evaluate(
        """async (id) => {
            const visit = await (await fetch(`/api/visits/${id}`)).json();
            const booking = await (await fetch(`/api/bookings/${visit.booking_id}`)).json();
            return booking.kiosk_code;
        }""",
        visit_id,
    )
    return code
