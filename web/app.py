"""The aiohttp application factory: it builds each feature's runtime, starts and stops them in
order, and mounts the API, the pages and the sockets.

Start order (stop runs backwards): the database and the services; the transcription engine
(closed last, after the visits' last audio is transcribed); the visits (restart catch-up, awaited:
stale visits end before anything else runs; retention); the after-visit jobs (notes of visits that
ended while the process was down); the outbox sender (it used to start first: nothing before it
writes messages, so it now starts once the visits are settled and stops before them); the pages'
live feeds.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from caserecord.db import Database, make_engine, migrate, sqlite_path
from caserecord.types import utcnow
from scheduler import Links, Sender, SenderConfig, mail, outbox, sms
from transcription.runtime import Transcription
from visits.audio import AudioStore
from visits.runtime import VisitOptions, VisitRuntime
from web import inbound, sockets
from web.api import build_api
from web.api.calendars import FEEDS
from web.auth import identity_middleware
from web.feeds import Feeds
from web.pages import ROUTES as PAGES
from web.problems import problem_middleware
from web.render import Templates
from web.routing import Api, json_response
from web.services import SERVICES, Metrics, Services
from web.settings import Settings

log = logging.getLogger(__name__)
VERSION = "0.1.0"
MAX_BODY = 256 * 1024
STATIC = Path(__file__).parent / "static"
Clock = Callable[[], datetime]
Context = Callable[[web.Application], AsyncIterator[None]]


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    version: str


def create_app(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    database: Database | None = None,
    run_migrations: bool = True,
) -> web.Application:
    """Build the app: one cleanup context per resource, routes, pages and middlewares."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[problem_middleware, identity_middleware])
    app.cleanup_ctx.append(_services(settings, clock, database, run_migrations))
    app.cleanup_ctx.append(_lifetime(None, lambda svc: svc.transcription.close()))
    app.cleanup_ctx.append(_lifetime(lambda svc: svc.visits.start(), lambda svc: svc.visits.stop()))
    after_visit = (
        lambda svc: svc.transcription.after_visit.start(),
        lambda svc: svc.transcription.after_visit.stop(),
    )
    app.cleanup_ctx.append(_lifetime(*after_visit))
    app.cleanup_ctx.append(_lifetime(_start_sender, lambda svc: svc.sender.stop()))
    app.cleanup_ctx.append(_lifetime(None, lambda svc: svc.feeds.close()))
    api = build_api()
    api.install(app)
    app.router.add_get("/api/openapi.json", _openapi(api))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.add_routes([*FEEDS, *PAGES, *sockets.ROUTES, *inbound.ROUTES])
    app.router.add_static("/static/", STATIC, append_version=True)
    return app


def _services(settings: Settings, clock: Clock, database: Database | None, run_migrations: bool) -> Context:
    """Open the database (unless given) and build every feature's runtime on it."""

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
        svc = build_services(settings, clock, db)
        stop_nudging = db.on_commit(outbox.TOPIC, svc.sender.nudge)  # a new message leaves within seconds
        app[SERVICES] = svc
        log.info("database ready", extra={"dialect": db.dialect})
        yield
        stop_nudging()
        if own:
            db.close()

    return ctx


def build_services(settings: Settings, clock: Clock, db: Database) -> Services:
    """Compose the features: visits hand their audio to transcription, which drafts the note at the end."""
    store = AudioStore(settings.data_dir / "audio")
    feeds = Feeds(db)
    transcription = Transcription(
        db,
        clock,
        # One Whisper engine per process; the model loads on the first utterance, off the loop.
        engine=settings.whisper_options() if settings.transcribe else None,
        drafter=settings.drafter(),
        parts_of=store.parts,
    )
    visits = VisitRuntime(
        db,
        clock,
        store,
        VisitOptions(
            grace=settings.visit_grace_seconds,
            empty_timeout=settings.visit_empty_seconds,
            server_ice_servers=tuple(settings.server_ice()),
            audio_retention=timedelta(days=settings.audio_retention_days),
            walk_in_grace=timedelta(minutes=settings.join_grace_minutes),
        ),
        notify=feeds,
        sink_factory=transcription.sink,
        on_ended=transcription.after_visit.draft,
    )
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        metrics=Metrics(),
        links=Links(settings.base_url),
        templates=Templates(),
        feeds=feeds,
        visits=visits,
        transcription=transcription,
        sender=_sender(settings, clock, db),
        browser_ice=settings.browser_ice(),
    )


def _sender(settings: Settings, clock: Clock, db: Database) -> Sender:
    st = settings
    folder = st.data_dir / "outbox"
    config = SenderConfig(
        base_url=st.base_url,
        organizer=mail.sender_address(st.mail_from, st.base_url),
        join_early=timedelta(minutes=st.join_early_minutes),
        max_attempts=max(st.outbox_max_attempts, 1),
        retry=timedelta(seconds=st.outbox_retry_seconds),
        poll=timedelta(seconds=max(st.outbox_poll_seconds, 1.0)),
        send_timeout=st.smtp_timeout_seconds,
        no_show_after=timedelta(minutes=st.no_show_minutes) if st.no_show_minutes > 0 else None,
    )
    return Sender(
        db,
        config,
        clock,
        mail.transport(st.smtp_url, folder, st.smtp_timeout_seconds),
        sms.transport(st.sms_url, st.sms_from, folder, st.smtp_timeout_seconds),
    )


async def _start_sender(svc: Services) -> None:
    if svc.settings.outbox_sender:  # off in processes that must not send
        await svc.sender.start()


def _lifetime(
    start: Callable[[Services], Awaitable[None]] | None, stop: Callable[[Services], Awaitable[None]] | None
) -> Context:
    """A cleanup context that starts one runtime of the services and stops it at shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        svc = app[SERVICES]
        if start is not None:
            await start(svc)
        yield
        if stop is not None:
            await stop(svc)

    return ctx


def _openapi(api: Api) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def openapi_document(request: web.Request) -> web.StreamResponse:
        """GET /api/openapi.json."""
        return web.json_response(api.openapi())

    return openapi_document


async def healthz(request: web.Request) -> web.StreamResponse:
    """GET /healthz: is the database answering?"""
    svc = request.app[SERVICES]
    try:
        ok = await svc.db.read(lambda s: s.connection().exec_driver_sql("SELECT 1").scalar() == 1)
    except Exception:
        log.exception("health check: database unreachable")
        ok = False
    body = HealthOut(status="ok" if ok else "degraded", database=ok, version=VERSION)
    return json_response(body, 200 if ok else 503)


async def metrics(request: web.Request) -> web.StreamResponse:
    """GET /metrics: Prometheus text format."""
    resp = web.Response(body=generate_latest(request.app[SERVICES].metrics.registry))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
