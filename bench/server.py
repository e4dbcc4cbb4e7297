"""The real Lastmile app on 127.0.0.1, in its own process, for the booking benchmark.

`python -m bench.server --database-url URL [--schema NAME]` serves `web.app.create_app`
against an already migrated database, prints `LISTENING <port>` once it accepts
connections, and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

from bench.serving import serve_until_signalled
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--schema", default=None)
    parser.add_argument("--threads", type=int, default=Settings().db_threads)
    args = parser.parse_args()
    asyncio.run(serve(args.database_url, args.schema, args.threads))


if __name__ == "__main__":
    main()
