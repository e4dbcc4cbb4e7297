"""Supervision: the team's live visits, and risk alerts (confirmed live or in a note) to acknowledge."""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session

from caserecord import note_lists, notes
from caserecord.note_lists import RiskAlertOut
from transcription.risk import RISK_LABELS, RiskCategory
from visits.live import LiveVisitOut, live_visits
from web.api.common import REVIEWERS, WRITERS
from web.routing import Call, Routes, json_response

routes = Routes("supervision")


class AlertsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["open", "all"] = "open"


class LiveFlagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: RiskCategory
    quote: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    start: Annotated[float, Field(ge=0, le=86_400, description="Seconds into the visit the words were said")]


@routes.get("/api/live-visits", REVIEWERS, LiveVisitOut, many=True)
async def get_live_visits(call: Call[None, None]) -> web.StreamResponse:
    """The team's visits that are waiting or in progress, with who is connected."""
    return json_response(await call.svc.db.write(live_visits, call.actor, call.svc.visits.presence))


@routes.get("/api/risk-alerts", REVIEWERS, RiskAlertOut, many=True)
async def get_risk_alerts(call: Call[None, AlertsQuery]) -> web.StreamResponse:
    """Risk flags confirmed in the team's notes (open ones, or all)."""
    open_only = call.query.state == "open"

    def run(s: Session) -> list[RiskAlertOut]:
        return note_lists.alert_rows(s, notes.risk_alerts(s, call.actor, open_only=open_only))

    return json_response(await call.svc.db.write(run))


@routes.post("/api/risk-alerts/{alert_id}/acknowledge", REVIEWERS, RiskAlertOut, errors=(409,))
async def acknowledge_risk_alert(call: Call[None, None]) -> web.StreamResponse:
    """Mark a risk alert as seen and acted on."""
    now = call.svc.clock()

    def run(s: Session) -> RiskAlertOut:
        return note_lists.alert_rows(s, [notes.acknowledge_alert(s, call.actor, call.path["alert_id"], now)])[
            0
        ]

    out = await call.svc.db.write(run)
    await call.svc.feeds.team(out.worker_id, "risk")
    return json_response(out)


@routes.post("/api/visits/{visit_id}/risk-flags", WRITERS, RiskAlertOut, status=201)
async def confirm_live_flag(call: Call[LiveFlagIn, None]) -> web.StreamResponse:
    """Confirm, during the visit, a risk heard in what was said (the supervisor is alerted)."""
    body = call.body
    now = call.svc.clock()

    def run(s: Session) -> RiskAlertOut:
        alert = notes.confirm_live_flag(
            s,
            call.actor,
            call.path["visit_id"],
            body.category.value,
            RISK_LABELS[body.category],
            body.quote,
            round(body.start * 1000),
            now,
        )
        return note_lists.alert_rows(s, [alert])[0]

    out = await call.svc.db.write(run)
    await call.svc.feeds.team(out.worker_id, "risk")
    return json_response(out, 201)
