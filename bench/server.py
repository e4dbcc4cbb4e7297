"""The real Lastmile app on 127.0.0.1, in its own process, for the booking benchmark.

`python -m bench.server --database-url URL [--schema NAME]` serves `web.app.create_app`
against an already migrated database, prints `LISTENING <port>` once it accepts
connections, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

from caserecord.db import Database, make_engine
from web.app import create_app
from web.settings import Settings


async def serve(database_url: str, schema: str | None, threads: int) -> None:
    db = Database(make_engine(database_url, search_path=schema), threads=threads)
    settings = Settings(
        host="127.0.0.1",
        port=0,
        database_url=database_url,
        public_url="http://127.0.0.1",
        db_threads=threads,
    )
    app = create_app(settings, database=db, run_migrations=False)
    # A deep accept queue: the contended case opens 200 connections at once.
    await serve_until_signalled(app, lambda runner: web.TCPSite(runner, "127.0.0.1", 0, backlog=1024))
    db.close()


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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--schema", default=None)
    parser.add_argument("--threads", type=int, default=Settings().db_threads)
    args = parser.parse_args()
    asyncio.run(serve(args.database_url, args.schema, args.threads))


if __name__ == "__main__":
    main()
