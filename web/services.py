"""Everything the handlers share, in one typed object on one AppKey (built by `create_app`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from caserecord.accounts import SessionPolicy
from caserecord.audit import Actor
from caserecord.db import Database
from caserecord.models import User
from scheduler import JoinPolicy, Links, Sender
from scheduler.outbox import parse_reminders
from transcription.runtime import Transcription
from visits.runtime import VisitRuntime
from web.feeds import Feeds
from web.render import Templates
from web.settings import Settings
from web.throttle import Throttle


class Metrics:
    """Prometheus metrics of one app, in its own registry (no module globals)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lastmile_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lastmile_http_request_seconds",
            "Time to answer an HTTP request",
            ["route"],
            registry=self.registry,
        )
        self.bookings = Counter(
            "lastmile_bookings", "Booking attempts by outcome", ["outcome"], registry=self.registry
        )
        self.logins = Counter(
            "lastmile_logins", "Sign-in attempts by outcome", ["outcome"], registry=self.registry
        )


@dataclass
class Throttles:
    """The in-process limits of the public kiosk and walk-in endpoints."""

    kiosk_device: Throttle = field(default_factory=lambda: Throttle(limit=10, window=300))
    kiosk_code: Throttle = field(default_factory=lambda: Throttle(limit=20, window=300))


@dataclass
class Services:
    """The app's settings, database, clock and metrics, and each feature's runtime."""

    settings: Settings
    db: Database
    clock: Callable[[], datetime]
    metrics: Metrics
    links: Links
    templates: Templates
    feeds: Feeds
    visits: VisitRuntime
    transcription: Transcription
    sender: Sender
    browser_ice: list[dict[str, Any]]
    throttles: Throttles = field(default_factory=Throttles)

    @property
    def session_policy(self) -> SessionPolicy:
        return SessionPolicy(idle=self.settings.session_idle, absolute=self.settings.session_absolute)

    @property
    def join_policy(self) -> JoinPolicy:
        return JoinPolicy(
            early=timedelta(minutes=self.settings.join_early_minutes),
            grace=timedelta(minutes=self.settings.join_grace_minutes),
            reminders=parse_reminders(self.settings.reminder_minutes),
        )

    @property
    def client_cutoff(self) -> timedelta:
        return timedelta(hours=self.settings.client_cutoff_hours)


@dataclass(frozen=True, slots=True)
class Identity:
    """The signed-in caller of one request."""

    user: User
    actor: Actor
    csrf_token: str
    token: str


SERVICES = web.AppKey("services", Services)
IDENTITY = web.RequestKey("identity", Identity)
