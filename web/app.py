"""The aiohttp application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from caserecord.db import Database, make_engine, migrate, sqlite_path
from caserecord.types import utcnow
from web.admin_pages import sender_ctx
from web.api import api, calendar_feed
from web.auth import identity_middleware
from web.client_pages import install_client_pages
from web.live import install_live
from web.note_pages import install_note_pages
from web.notes import install_notes
from web.pages import install_pages
from web.problems import problem_middleware
from web.routing import json_response
from web.runtime import RUNTIME, Metrics, Runtime
from web.schemas import HealthOut
from web.settings import Settings
from web.visits import install_visits

log = logging.getLogger(__name__)
VERSION = "0.1.0"
MAX_BODY = 256 * 1024


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    database: Database | None = None,
    run_migrations: bool = True,
) -> web.Application:
    """Build the app: one cleanup context per resource, routes, pages and middlewares."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[problem_middleware, identity_middleware])
    app.cleanup_ctx.append(_database_ctx(settings, clock, database, run_migrations))
    app.cleanup_ctx.append(sender_ctx)
    api.install(app)
    app.router.add_get("/api/openapi.json", openapi_document)
    app.router.add_get("/calendar/{token}.ics", calendar_feed)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    install_pages(app)
    install_visits(app)
    install_live(app)
    install_notes(app)
    install_note_pages(app)
    install_client_pages(app)
    return app


def _database_ctx(
    settings: Settings, clock: Callable[[], datetime], database: Database | None, run_migrations: bool
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        db = database
        own = db is None
        if db is None:
            path = sqlite_path(settings.db_url)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            db = Database(make_engine(settings.db_url), threads=settings.db_threads)
            if run_migrations:
                migrate(db.engine)
        app[RUNTIME] = Runtime(settings=settings, db=db, clock=clock, metrics=Metrics())
        log.info("database ready", extra={"dialect": db.dialect})
        yield
        if own:
            db.close()

    return ctx


async def openapi_document(request: web.Request) -> web.StreamResponse:
    """GET /api/openapi.json."""
    return web.json_response(api.openapi())


async def healthz(request: web.Request) -> web.StreamResponse:
    """GET /healthz: is the database answering?"""
    rt = request.app[RUNTIME]
    try:
        ok = await rt.db.read(lambda s: s.connection().exec_driver_sql("SELECT 1").scalar() == 1)
    except Exception:
        log.exception("health check: database unreachable")
        ok = False
    body = HealthOut(status="ok" if ok else "degraded", database=ok, version=VERSION)
    return json_response(body, 200 if ok else 503)


async def metrics(request: web.Request) -> web.StreamResponse:
    """GET /metrics: Prometheus text format."""
    rt = request.app[RUNTIME]
    resp = web.Response(body=generate_latest(rt.metrics.registry))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def static_dir() -> Path:
    return Path(__file__).parent / "static"
