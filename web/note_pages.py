"""The note review pages: the worker corrects and signs the draft; the supervisor reviews it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import Session

from caserecord import notes, transcripts
from caserecord.errors import RecordError
from caserecord.models import Case, Client, Note, User
from caserecord.note_body import FLAG_STATES, NoteBody, NoteEdit
from web.auth import check_csrf
from web.live import notify_team
from web.notes import addenda_out, book_follow_up, follow_up_view, history_out
from web.pages import render
from web.runtime import IDENTITY, RUNTIME, Identity, Runtime


def _ident(request: web.Request) -> Identity:
    ident: Identity | None = request.get(IDENTITY)
    if ident is None:
        raise web.HTTPSeeOther(f"/?next={request.path}")
    return ident


def _note_id(request: web.Request) -> int:
    raw = request.match_info["note_id"]
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) < 2**31:
        raise web.HTTPNotFound()
    return int(raw)


def _view(s: Session, ident: Identity, note_id: int, rt: Runtime) -> dict[str, Any]:
    note = s.get(Note, note_id)
    if note is None:
        raise RecordError("no such note")
    note = notes.read_note(s, ident.actor, note.visit_id)
    case = s.get(Case, note.case_id)
    client = s.get(Client, case.client_id) if case is not None else None
    worker = s.get(User, note.worker_id)
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
    zone = ZoneInfo(worker.timezone if worker is not None else "UTC")
    try:
        follow_up = follow_up_view(s, ident.actor, note, rt)
    except RecordError:
        follow_up = None
    return {
        "note": note,
        "zone": zone,
        "addenda": addenda_out(s, note_id),
        "history": history_out(s, note_id).revisions,
        "follow_up": follow_up,
        "can_book": follow_up is not None
        and follow_up.suggested is not None
        and (ident.actor.user_id == note.worker_id or ident.actor.role == "admin"),
        "can_add": note.status in ("signed", "approved")
        and (ident.actor.user_id == note.worker_id or ident.actor.role in ("supervisor", "admin")),
        "body": notes.body_of(note),
        "lines": lines,
        "client_name": client.name if client is not None else "",
        "worker_name": worker.name if worker is not None else "",
        "can_edit": note.status in ("draft", "returned")
        and (ident.actor.user_id == note.worker_id or ident.actor.role == "admin"),
        "can_review": note.status == "signed" and ident.actor.role in ("supervisor", "admin"),
    }


async def note_page(request: web.Request) -> web.StreamResponse:
    """GET /notes/{note_id}: the draft beside the transcript, each line playing its moment."""
    ident = _ident(request)
    rt = request.app[RUNTIME]
    try:
        view = await rt.db.write(_view, ident, _note_id(request), rt)
    except RecordError as exc:
        return render(
            "error.html",
            status=exc.status if exc.status != 400 else 404,
            me=ident.user,
            csrf=ident.csrf_token,
            title="Note not available",
            detail=exc.detail,
        )
    return render(
        "note.html",
        me=ident.user,
        csrf=ident.csrf_token,
        notice=request.query.get("notice", ""),
        error=request.query.get("error", ""),
        **view,
    )


async def note_action(request: web.Request) -> web.StreamResponse:
    """POST /notes/{note_id}/{action}: save, sign, approve or return, then back to the page."""
    ident = _ident(request)
    rt = request.app[RUNTIME]
    note_id = _note_id(request)
    action = request.match_info["action"]
    form = await request.post()
    check_csrf(request, ident, str(form.get("csrf_token", "")))
    now = rt.clock()
    back = f"/notes/{note_id}"
    try:
        if action == "save":
            body = await rt.db.read(_body, note_id)
            flags = []
            for i, flag in enumerate(body.risk_flags):
                state = str(form.get(f"flag-{i}", flag.status))
                flags.append(
                    flag.model_copy(update={"status": state if state in FLAG_STATES else "suggested"})
                )
            edit = NoteEdit(
                observations=str(form.get("observations", ""))[:20_000],
                analysis=str(form.get("analysis", ""))[:20_000],
                risk_flags=flags,
            )
            version = int(str(form.get("version", "0")) or 0)
            note = await rt.db.write(notes.update_note, ident.actor, note_id, edit, version, now)
            await notify_team(request.app, note.worker_id, "risk")
            message = "Saved."
        elif action == "sign":
            await rt.db.write(notes.sign_note, ident.actor, note_id, now)
            from web.notes import enforce_retention

            if rt.settings.audio_retention_days == 0:
                await enforce_retention(request.app)
            message = "Signed. The note can no longer be changed."
        elif action == "addendum":
            text = str(form.get("text", ""))
            await rt.db.write(notes.add_addendum, ident.actor, note_id, text, now)
            message = "Addendum added. The signed note is unchanged."
        elif action == "follow-up":
            start = datetime.fromisoformat(str(form.get("start", "")))
            out = await rt.db.write(book_follow_up, ident.actor, note_id, start, rt)
            message = f"Follow-up booked for {out.start:%A %-d %B, %H:%M}. The client is sent an invitation."
        elif action in ("approve", "return"):
            comment = str(form.get("comment", ""))[:2000]
            await rt.db.write(notes.review_note, ident.actor, note_id, action == "approve", comment, now)
            message = "Approved." if action == "approve" else "Returned to the worker."
        else:
            raise web.HTTPNotFound()
    except (RecordError, ValueError) as exc:
        detail = exc.detail if isinstance(exc, RecordError) else "the form was not filled in right"
        raise web.HTTPSeeOther(f"{back}?error={_q(detail)}") from exc
    raise web.HTTPSeeOther(f"{back}?notice={_q(message)}")


def _body(s: Session, note_id: int) -> NoteBody:
    note = s.get(Note, note_id)
    if note is None:
        raise RecordError("no such note")
    return notes.body_of(note)


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text)


def install_note_pages(app: web.Application) -> None:
    app.router.add_get("/notes/{note_id}", note_page)
    app.router.add_post("/notes/{note_id}/{action}", note_action)


__all__ = ["install_note_pages"]
