"""What the Chromium tests share: browser flags, espeak-ng microphones, the served app, signing in."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

from caserecord.audit import Actor
from caserecord.cases import create_case
from caserecord.db import Database
from caserecord.models import Booking, User, Visit
from scheduler import blocks, bookings, hours
from scheduler.hours import Weekday
from scheduler.rules import Mode
from tests.conftest import PASSWORD, Clock
from web.app import create_app
from web.settings import Settings

CHROMIUM = "/usr/bin/chromium"
# A quiet headless Chromium; CHROMIUM_ARGS adds a fake camera and microphone, allowed without asking.
PLAIN_CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_ARGS = [
    *PLAIN_CHROMIUM_ARGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def speech_wav(path: Path, text: str, *, lead: float = 2.0, tail: float = 1.0) -> Path:
    """Speak `text` with espeak-ng into a 48 kHz mono WAV, with silence before and after."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(path), "pad", str(lead), str(tail)],
        check=True,
    )
    raw.unlink()
    return path


async def launch_chromium(p: Playwright, microphone: Path, *, loop: bool = False) -> Browser:
    """Start headless Chromium whose fake microphone plays `microphone` (once, or over and over)."""
    capture = f"{microphone}" if loop else f"{microphone}%noloop"
    return await p.chromium.launch(
        executable_path=shutil.which("chromium") or "/usr/bin/chromium",
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={capture}"],
    )


@asynccontextmanager
async def plain_chromium() -> AsyncIterator[Browser]:
    """Run headless Chromium without a camera or microphone; close it on the way out."""
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=PLAIN_CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@asynccontextmanager
async def chromium_saying(microphone: Path) -> AsyncIterator[Browser]:
    """Run headless Chromium whose fake microphone plays `microphone` once; close it on the way out."""
    async with async_playwright() as p:
        chromium = await launch_chromium(p, microphone)
        try:
            yield chromium
        finally:
            await chromium.close()


async def media_context(browser: Browser, **kw: object) -> BrowserContext:
    """A context allowed camera and microphone (CSP bypassed so tests can read window.lastmile)."""
    options: dict[str, object] = {"viewport": {"width": 1100, "height": 800}, **kw}
    ctx = await browser.new_context(permissions=["camera", "microphone"], bypass_csp=True, **options)  # type: ignore[arg-type]
    ctx.set_default_timeout(15_000)
    return ctx


async def sign_in(ctx: BrowserContext, base: str, email: str, lands_on: str) -> Page:
    """Sign in on the start page and wait for the landing page (`/worker` or `/supervisor`)."""
    page = await ctx.new_page()
    await page.goto(f"{base}/")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{lands_on}**")
    return page


async def admit_and_connect(worker: Page, client: Page, name: str) -> None:
    """Admit `name` from the worker's visit page; wait until the call and the client's uplink connect."""
    await worker.get_by_role("button", name=f"Admit {name}").click()
    await client.wait_for_function("window.lastmile.pcState === 'connected'", timeout=20_000)
    await worker.wait_for_function(
        "[...window.lastmile.peers.values()].some(pc => pc.connectionState === 'connected')"
    )
    await client.wait_for_function(
        "window.lastmile.uplink() && window.lastmile.uplink().connectionState === 'connected'"
    )


def block_spec(
    weekdays: tuple[Weekday, ...], start: time, end: time, starts_on: date, mode: Mode = "booked"
) -> hours.BlockSpec:
    """Office hours in Los Angeles, in 30-minute slots, from `start` to `end` on `weekdays`."""
    return hours.BlockSpec(
        weekdays=weekdays,
        start_time=start,
        end_time=end,
        timezone="America/Los_Angeles",
        slot_minutes=30,
        mode=mode,
        starts_on=starts_on,
    )


def book_visit(
    db: Database, worker: User, clock: Clock, client_name: str = "Maria Lopez"
) -> tuple[Booking, Visit]:
    """Give the worker Monday office hours and book the first slot; the clock stands 5 minutes before it."""
    assert worker.id is not None
    actor = Actor(worker.id, "worker")
    now = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # Monday 09:00 in Los Angeles
    clock.now = now
    with db.session(write=True) as s:
        case, _ = create_case(s, actor, worker_id=worker.id, client_name=client_name)
        assert case.id is not None
        blocks.create_block(s, actor, worker.id, block_spec(("MO",), time(9, 30), time(11), now.date()))
        _, slots = hours.worker_slots(s, actor, worker.id, now.date(), now.date(), now)
        booking, visit = bookings.book(s, actor, worker.id, case.id, slots[0].start, now)
        assert visit.id is not None
    clock.now = booking.start_at - timedelta(minutes=5)
    return booking, visit


@asynccontextmanager
async def serve(db: Database, clock: Clock, data_dir: Path, **settings: object) -> AsyncIterator[str]:
    """Serve the real app on a free 127.0.0.1 port against `db`; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Settings(host="127.0.0.1", port=port, data_dir=data_dir, **settings)  # type: ignore[arg-type]
    runner = web.AppRunner(create_app(config, clock=clock, database=db, run_migrations=False))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
