"""A whole visit in two headless Chromium contexts: link, check, consent, wait, admit, call, end.

The browsers use a fake camera and an espeak-ng WAV as their microphone; the test checks that
the peer connections reached `connected` and that the server's WAV for the client holds speech.
"""

from __future__ import annotations

import array
import json
import math
import shutil
import socket
import subprocess
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect

from caserecord.audit import Actor
from caserecord.cases import create_case
from caserecord.db import Database
from scheduler import blocks, bookings, hours
from tests.conftest import PASSWORD, Clock, add_user
from tests.e2e.helpers import ARTIFACTS, CHROMIUM_ARGS
from web.app import create_app
from web.settings import Settings

SPEECH = "Hello, this is Maria. I am calling about my rent and the food benefits renewal for next month."


def speech_wav(folder: Path) -> Path:
    """Make a 48 kHz mono WAV of espeak-ng speech led by two seconds of silence."""
    raw = folder / "speech-raw.wav"
    out = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), SPEECH], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(out), "pad", "2", "1"], check=True
    )
    return out


def rms(samples: array.array[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


@pytest.fixture
async def served(
    sqlite_db: Database, clock: Clock, tmp_path: Path
) -> AsyncIterator[tuple[str, int, str, Path]]:
    """The real app on a free port, a worker with office hours and a booked visit about to start."""
    worker = add_user(sqlite_db, "wren@agency.test", "worker", tz="America/Los_Angeles")
    assert worker.id is not None
    actor = Actor(worker.id, "worker")
    now = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday 09:00 in Los Angeles
    clock.now = now
    with sqlite_db.session(write=True) as s:
        case, _ = create_case(s, actor, worker_id=worker.id, client_name="Maria Lopez")
        assert case.id is not None
        blocks.create_block(
            s,
            actor,
            worker.id,
            hours.BlockSpec(
                weekdays=("MO",),
                start_time=datetime(2026, 1, 1, 9, 30).time(),
                end_time=datetime(2026, 1, 1, 11).time(),
                timezone="America/Los_Angeles",
                slot_minutes=30,
                mode="booked",
                starts_on=now.date(),
            ),
        )
        _, slots = hours.worker_slots(s, actor, worker.id, now.date(), now.date(), now)
        booking, visit = bookings.book(s, actor, worker.id, case.id, slots[0].start, now)
        assert visit.id is not None
    clock.now = booking.start_at - timedelta(minutes=5)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(host="127.0.0.1", port=port, data_dir=tmp_path / "var", visit_grace_seconds=5)
    runner = web.AppRunner(create_app(settings, clock=clock, database=sqlite_db, run_migrations=False))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    yield f"http://127.0.0.1:{port}", visit.id, visit.join_token, tmp_path / "var"
    await runner.cleanup()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    wav = speech_wav(tmp_path)
    async with async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}%noloop"],
        )
        yield chromium
        await chromium.close()


async def _worker_page(browser: Browser, base: str, visit_id: int) -> Page:
    ctx = await browser.new_context(
        viewport={"width": 1100, "height": 800}, permissions=["camera", "microphone"], bypass_csp=True
    )
    ctx.set_default_timeout(15_000)
    page = await ctx.new_page()
    await page.goto(f"{base}/")
    await page.get_by_label("E-mail").fill("wren@agency.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/worker**")
    await page.goto(f"{base}/visit/{visit_id}")
    return page


async def test_a_visit_from_link_to_end(served: tuple[str, int, str, Path], browser: Browser) -> None:
    base, visit_id, join_token, data_dir = served
    worker = await _worker_page(browser, base, visit_id)
    await expect(worker.get_by_text("Nobody is waiting.")).to_be_visible()

    phone = await browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        permissions=["camera", "microphone"],
        bypass_csp=True,  # lets the test read window.lastmile; the page itself runs under the CSP
    )
    phone.set_default_timeout(15_000)
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
    await worker.get_by_role("button", name="Admit Maria Lopez").click()
    await client.wait_for_function("window.lastmile.pcState === 'connected'", timeout=20_000)
    await worker.wait_for_function(
        "[...window.lastmile.peers.values()].some(pc => pc.connectionState === 'connected')"
    )
    await client.wait_for_function(
        "window.lastmile.uplink() && window.lastmile.uplink().connectionState === 'connected'"
    )
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
    kiosk_ctx = await browser.new_context(
        viewport={"width": 1024, "height": 768}, permissions=["camera", "microphone"], bypass_csp=True
    )
    kiosk_ctx.set_default_timeout(15_000)
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
