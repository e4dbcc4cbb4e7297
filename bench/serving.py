"""Serving an aiohttp app in a benchmark's own process until it is told to stop (light: aiohttp only)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web


async def serve_until_signalled(app: web.Application, site: Callable[[web.AppRunner], web.BaseSite]) -> None:
    """Serve `app` on `site`, print `LISTENING <port>` once it accepts, and stop on SIGTERM or SIGINT."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await site(runner).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"LISTENING {runner.addresses[0][1]}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
