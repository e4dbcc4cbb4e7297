"""The typed state the handlers share, handed down through one AppKey."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from caserecord.accounts import SessionPolicy
from caserecord.audit import Actor
from caserecord.db import Database
from caserecord.models import User
from scheduler.bookings import JoinPolicy
from scheduler.outbox import parse_reminders
from web.settings import Settings


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
class Runtime:
    """Everything a handler needs: settings, database, clock and metrics."""

    settings: Settings
    db: Database
    clock: Callable[[], datetime]
    metrics: Metrics

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


@dataclass(frozen=True, slots=True)
class Identity:
    """The signed-in caller of one request."""

    user: User
    actor: Actor
    csrf_token: str
    token: str


RUNTIME = web.AppKey("runtime", Runtime)
IDENTITY = web.RequestKey("identity", Identity)
