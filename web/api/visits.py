"""A visit from the staff side: read it, admit a client, end it, the uplink, transcript and audio."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from caserecord import transcripts
from caserecord.errors import NotFound
from visits import lifecycle
from visits.audio import AudioPart
from visits.lifecycle import VisitSnapshot
from visits.uplink import UplinkError
from web.api.common import STAFF, WRITERS, In
from web.problems import ProblemError
from web.routing import Call, Routes, json_response

routes = Routes("visits")


class AdmitIn(In):
    participant_id: Annotated[int, Field(ge=1, le=2**31 - 1)]


class EndIn(In):
    reason: Annotated[str, StringConstraints(max_length=200)] = "ended by the worker"


class SdpIn(In):
    type: Literal["offer"]
    sdp: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class SdpOut(BaseModel):
    type: str
    sdp: str


class ParticipantOut(BaseModel):
    id: int
    kind: str
    name: str
    state: str
    via: str
    device: str
    consent: bool | None


class VisitDetailOut(BaseModel):
    id: int
    booking_id: int | None
    case_id: int
    worker_id: int
    status: str
    recording: bool | None
    starts_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    participants: list[ParticipantOut]


class TranscriptLineOut(BaseModel):
    speaker: Literal["worker", "client"]
    name: str
    start: float
    end: float
    text: str
    audio_url: str | None = Field(default=None, description="The speaker's recording holding this line")
    audio_at: float | None = Field(
        default=None, description="Where in that recording the line starts, seconds"
    )


def detail(snap: VisitSnapshot) -> VisitDetailOut:
    people = [p.model_dump() for p in snap.participants]
    return VisitDetailOut.model_validate(
        snap.visit.model_dump() | {"starts_at": snap.starts_at, "participants": people}
    )


@routes.get("/api/visits/{visit_id}", STAFF, VisitDetailOut)
async def get_visit(call: Call[None, None]) -> web.StreamResponse:
    """A visit with its participants."""
    snap = await call.svc.db.write(lifecycle.read_visit, call.actor, call.path["visit_id"])
    return json_response(detail(snap))


@routes.post("/api/visits/{visit_id}/admit", WRITERS, VisitDetailOut, errors=(409,))
async def admit_client(call: Call[AdmitIn, None]) -> web.StreamResponse:
    """Admit a waiting client."""
    snap = await call.svc.visits.admit(call.actor, call.path["visit_id"], call.body.participant_id)
    return json_response(detail(snap))


@routes.post("/api/visits/{visit_id}/end", WRITERS, VisitDetailOut, errors=(409,))
async def end_visit(call: Call[EndIn, None]) -> web.StreamResponse:
    """End the visit for everyone."""
    reason = call.body.reason.strip()[:200] or "ended by the worker"
    snap = await call.svc.visits.end(call.actor, call.path["visit_id"], reason)
    return json_response(detail(snap))


@routes.post("/api/visits/{visit_id}/uplink", None, SdpOut, errors=(401, 403, 404, 409))
async def uplink(call: Call[SdpIn, None]) -> web.StreamResponse:
    """Send one's microphone to the server (SDP offer in, answer out; clients: X-Participant-Token)."""
    token = call.request.headers.get("X-Participant-Token", "")
    actor = call.identity.actor if call.identity is not None else None
    try:
        answer = await call.svc.visits.uplink(
            call.path["visit_id"], call.body.sdp, participant_token=token, actor=actor
        )
    except UplinkError as exc:
        raise ProblemError(422, "Unprocessable request", f"sdp: {exc}") from exc
    return json_response(SdpOut(type="answer", sdp=answer))


def audio_url(part: AudioPart) -> str:
    return f"/api/visits/{part.visit_id}/audio/{part.participant_id}/{part.part}"


def _audio_of(parts: list[AudioPart], participant_id: int, start: float) -> tuple[str | None, float | None]:
    for p in parts:
        if p.participant_id == participant_id and p.offset - 0.5 <= start <= p.end + 0.5:
            return audio_url(p), round(max(0.0, start - p.offset), 2)
    return None, None


@routes.get("/api/visits/{visit_id}/transcript", STAFF, TranscriptLineOut, many=True)
async def get_transcript(call: Call[None, None]) -> web.StreamResponse:
    """The visit's transcript, one timeline."""
    visit_id = call.path["visit_id"]
    rows = await call.svc.db.write(transcripts.read_transcript, call.actor, visit_id)
    parts = await call.svc.visits.parts(visit_id)
    lines: list[Any] = []
    for row, who in rows:
        url, at = _audio_of(parts, row.participant_id, row.start_ms / 1000)
        lines.append(
            TranscriptLineOut(
                speaker="worker" if row.speaker.startswith("worker") else "client",
                name=who.name if who is not None else "",
                start=row.start_ms / 1000,
                end=row.end_ms / 1000,
                text=row.text,
                audio_url=url,
                audio_at=at,
            )
        )
    return json_response(lines)


@routes.get("/api/visits/{visit_id}/audio/{participant_id}/{part}", STAFF, media="audio/wav", errors=(410,))
async def get_audio(call: Call[None, None]) -> web.StreamResponse:
    """One part of a speaker's recording (WAV; range requests for seeking)."""
    visit_id, pid, part = call.path["visit_id"], call.path["participant_id"], call.path["part"]
    deleted = await call.svc.db.write(lifecycle.audio_access, call.actor, visit_id, pid)
    path = call.svc.visits.store.part_file(visit_id, pid, part)
    if not path.is_file():
        if deleted:
            raise ProblemError(410, "Gone", "this recording was deleted under the agency's retention rules")
        raise NotFound("no such recording")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "private, no-store"})
