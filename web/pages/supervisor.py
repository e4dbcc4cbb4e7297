"""The supervisor's page: risk alerts as they are confirmed, live visits, the team, notes to review."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import Session

from caserecord import note_lists, notes
from caserecord.errors import RecordError
from scheduler import calendar
from visits.live import PresenceOf, live_visits
from web.pages.common import back, form, messages, page, parse_int, render, require, services
from web.services import Identity, Services


def _view(s: Session, ident: Identity, svc: Services, presence: PresenceOf) -> dict[str, Any]:
    actor = ident.actor
    now = svc.clock()
    team = calendar.team_week(s, actor, now)
    return {
        "team": team,
        "to_review": note_lists.note_rows(s, actor, ("signed",), limit=100),
        "recent_notes": note_lists.note_rows(s, actor, ("draft", "returned", "approved"), limit=30),
        "zone": ZoneInfo(ident.user.timezone),
        "now": now,
        "live": live_visits(s, actor, presence),
        "alerts": note_lists.alert_rows(s, notes.risk_alerts(s, actor)),
    }


@page
async def supervisor_page(request: web.Request) -> web.StreamResponse:
    """GET /supervisor: risk alerts, the team's live visits, the team, notes to review."""
    ident = require(request)
    svc = services(request)
    view = await svc.db.write(_view, ident, svc, svc.visits.presence)
    return render(request, "supervisor.html", **messages(request), **view)


@page
async def acknowledge_alert(request: web.Request) -> web.StreamResponse:
    """POST /supervisor/risk-alerts/acknowledge: the supervisor has seen the alert and acts on it."""
    ident = require(request)
    posted = await form(request, ident)
    svc = services(request)
    alert_id = parse_int(str(posted.get("alert_id", "")), "alert")
    try:
        alert = await svc.db.write(notes.acknowledge_alert, ident.actor, alert_id, svc.clock())
    except RecordError as exc:
        raise back("/supervisor", error=exc.detail) from exc
    await svc.feeds.team(alert.worker_id, "risk")
    raise back("/supervisor", notice=f"Acknowledged: {alert.label}.")


ROUTES = [
    web.get("/supervisor", supervisor_page),
    web.post("/supervisor/risk-alerts/acknowledge", acknowledge_alert),
]
