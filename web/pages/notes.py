"""The note review page: the worker corrects and signs the draft; the supervisor reviews it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlmodel import Session

from caserecord import note_lists, notes, transcripts
from caserecord.access import REVIEWERS
from caserecord.errors import RecordError
from caserecord.names import client_names, user_names
from caserecord.note_body import FLAG_STATES, NoteEdit
from scheduler import follow_up
from scheduler.bookings import worker_zone
from web.api.notes import follow_up_out
from web.auth import check_csrf
from web.pages.common import messages, path_id, render, require, services
from web.services import Identity, Services


def _view(s: Session, ident: Identity, note_id: int, svc: Services) -> dict[str, Any]:
    actor = ident.actor
    note = notes.read_note(s, actor, notes.get_note(s, note_id).visit_id)
    lines = [
        {
            "start": r.start_ms / 1000,
            "speaker": "worker" if r.speaker.startswith("worker") else "client",
            "name": who.name if who is not None else "",
            "text": r.text,
            "participant_id": r.participant_id,
        }
        for r, who in transcripts.segments(s, note.visit_id)
    ]
    try:
        suggested = follow_up_out(follow_up.follow_up_of(s, actor, note, svc.clock()), svc.links)
    except RecordError:
        suggested = None
    own = actor.user_id == note.worker_id or actor.role == "admin"
    return {
        "note": note,
        "zone": worker_zone(s, note.worker_id),
        "addenda": note_lists.addenda(s, note_id),
        "history": note_lists.history(s, note_id).revisions,
        "follow_up": suggested,
        "can_book": suggested is not None and suggested.suggested is not None and own,
        "can_add": note.status in ("signed", "approved")
        and (actor.user_id == note.worker_id or actor.role in REVIEWERS),
        "body": notes.body_of(note),
        "lines": lines,
        "client_name": client_names(s, [note.case_id]).get(note.case_id, ""),
        "worker_name": user_names(s, [note.worker_id]).get(note.worker_id, ""),
        "can_edit": note.status in ("draft", "returned") and own,
        "can_review": note.status == "signed" and actor.role in REVIEWERS,
    }


async def note_page(request: web.Request) -> web.StreamResponse:
    """GET /notes/{note_id}: the draft beside the transcript, each line playing its moment."""
    ident = require(request)
    svc = services(request)
    try:
        view = await svc.db.write(_view, ident, path_id(request, "note_id"), svc)
    except RecordError as exc:
        status = exc.status if exc.status != 400 else 404
        return render(request, "error.html", status=status, title="Note not available", detail=exc.detail)
    return render(request, "note.html", **messages(request), **view)


async def _save(svc: Services, ident: Identity, note_id: int, posted: Any, now: datetime) -> str:
    body = await svc.db.read(lambda s: notes.body_of(notes.get_note(s, note_id)))
    flags = []
    for i, flag in enumerate(body.risk_flags):
        state = str(posted.get(f"flag-{i}", flag.status))
        flags.append(flag.model_copy(update={"status": state if state in FLAG_STATES else "suggested"}))
    edit = NoteEdit(
        observations=str(posted.get("observations", ""))[:20_000],
        analysis=str(posted.get("analysis", ""))[:20_000],
        risk_flags=flags,
    )
    version = int(str(posted.get("version", "0")) or 0)
    note = await svc.db.write(notes.update_note, ident.actor, note_id, edit, version, now)
    await svc.feeds.team(note.worker_id, "risk")
    return "Saved."


def _book_follow_up(
    s: Session, ident: Identity, note_id: int, start: datetime, now: datetime, svc: Services
) -> datetime:
    booking, _ = follow_up.book(s, ident.actor, note_id, start, now, svc.join_policy)
    return booking.start_at.astimezone(worker_zone(s, booking.worker_id))


async def note_action(request: web.Request) -> web.StreamResponse:
    """POST /notes/{note_id}/{action}: save, sign, approve or return, then back to the page."""
    ident = require(request)
    svc = services(request)
    note_id = path_id(request, "note_id")
    action = request.match_info["action"]
    posted = await request.post()
    check_csrf(request, ident, str(posted.get("csrf_token", "")))
    now = svc.clock()
    back = f"/notes/{note_id}"
    try:
        if action == "save":
            message = await _save(svc, ident, note_id, posted, now)
        elif action == "sign":
            await svc.visits.sign_note(ident.actor, note_id)
            message = "Signed. The note can no longer be changed."
        elif action == "addendum":
            await svc.db.write(notes.add_addendum, ident.actor, note_id, str(posted.get("text", "")), now)
            message = "Addendum added. The signed note is unchanged."
        elif action == "follow-up":
            start = datetime.fromisoformat(str(posted.get("start", "")))
            at = await svc.db.write(_book_follow_up, ident, note_id, start, now, svc)
            message = f"Follow-up booked for {at:%A %-d %B, %H:%M}. The client is sent an invitation."
        elif action in ("approve", "return"):
            comment = str(posted.get("comment", ""))[:2000]
            await svc.db.write(notes.review_note, ident.actor, note_id, action == "approve", comment, now)
            message = "Approved." if action == "approve" else "Returned to the worker."
        else:
            raise web.HTTPNotFound()
    except (RecordError, ValueError) as exc:
        detail = exc.detail if isinstance(exc, RecordError) else "the form was not filled in right"
        raise web.HTTPSeeOther(f"{back}?error={quote(detail)}") from exc
    raise web.HTTPSeeOther(f"{back}?notice={quote(message)}")


ROUTES = [web.get("/notes/{note_id}", note_page), web.post("/notes/{note_id}/{action}", note_action)]
