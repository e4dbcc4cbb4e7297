"""Notes and risk alerts as lists and histories show them, with the names of the people in them.

Read models shared by the API and the pages; every list of case data is read through the access
rules in :mod:`caserecord.notes` and audited there.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, col, select

from caserecord import notes
from caserecord.audit import Actor
from caserecord.models import Case, Client, Note, RiskAlert
from caserecord.names import client_names, user_names
from caserecord.note_body import NoteBody


class AddendumOut(BaseModel):
    id: int
    author_id: int
    author: str
    text: str
    created_at: datetime


class RevisionOut(BaseModel):
    version: int
    author_id: int | None
    author: str
    sections: list[str]
    created_at: datetime
    body: NoteBody


class HistoryOut(BaseModel):
    revisions: list[RevisionOut]
    addenda: list[AddendumOut]


class NoteRowOut(BaseModel):
    """One note in a list: whose, when, its status and the risks confirmed in it."""

    id: int
    visit_id: int
    case_id: int
    worker_id: int
    worker_name: str
    client_name: str
    status: str
    date: str
    confirmed_flags: list[str]
    confirmed_labels: list[str]
    signed_at: datetime | None
    reviewed_at: datetime | None


class RiskAlertOut(BaseModel):
    """A risk flag a worker confirmed, as the supervisor is alerted to it."""

    id: int
    visit_id: int
    note_id: int | None
    case_id: int
    worker_id: int
    worker_name: str
    client_name: str
    category: str
    label: str
    quote: str
    at_seconds: float
    confirmed_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: int | None


class ToSign(BaseModel):
    """A draft or returned note on the worker's own page."""

    id: int
    status: str
    client: str
    created: datetime


def addenda(s: Session, note_id: int) -> list[AddendumOut]:
    """Return a note's addenda with their authors' names, oldest first."""
    rows = notes.addenda(s, note_id)
    names = user_names(s, {a.author_id for a in rows})
    return [AddendumOut.model_validate(a.model_dump() | {"author": names.get(a.author_id, "")}) for a in rows]


def history(s: Session, note_id: int) -> HistoryOut:
    """Return every saved version of a note and its addenda."""
    rows = notes.revisions(s, note_id)
    names = user_names(s, {r.author_id for r in rows if r.author_id is not None})
    return HistoryOut(
        revisions=[
            RevisionOut(
                version=r.version,
                author_id=r.author_id,
                author=names.get(r.author_id, "") if r.author_id is not None else "drafter",
                sections=json.loads(r.sections),
                created_at=r.created_at,
                body=NoteBody.read(r.body),
            )
            for r in rows
        ],
        addenda=addenda(s, note_id),
    )


def note_rows(s: Session, actor: Actor, statuses: tuple[str, ...], limit: int) -> list[NoteRowOut]:
    """The notes in `actor`'s caseload with one of `statuses`, newest first (audited)."""
    found = notes.list_notes(s, actor, statuses, limit)
    clients = client_names(s, {n.case_id for n in found})
    workers = user_names(s, {n.worker_id for n in found})
    rows = []
    for n in found:
        body = notes.body_of(n)
        confirmed = body.confirmed_flags()
        named = {"worker_name": workers.get(n.worker_id, ""), "client_name": clients.get(n.case_id, "")}
        flags = {
            "confirmed_flags": [f.category for f in confirmed],
            "confirmed_labels": [f.label or f.category for f in confirmed],
        }
        rows.append(NoteRowOut.model_validate(n.model_dump() | named | flags | {"date": body.header.date}))
    return rows


def alert_rows(s: Session, alerts: list[RiskAlert]) -> list[RiskAlertOut]:
    """Return risk alerts with the names of their client and worker."""
    clients = client_names(s, {a.case_id for a in alerts})
    workers = user_names(s, {a.worker_id for a in alerts})
    return [
        RiskAlertOut.model_validate(
            a.model_dump()
            | {
                "worker_name": workers.get(a.worker_id, ""),
                "client_name": clients.get(a.case_id, ""),
                "at_seconds": a.at_ms / 1000,
            }
        )
        for a in alerts
    ]


def to_sign(s: Session, worker_id: int) -> list[ToSign]:
    """Return the worker's draft and returned notes with the client's name, newest first."""
    rows = s.exec(
        select(Note, Client)
        .join(Case, col(Case.id) == col(Note.case_id))
        .join(Client, col(Client.id) == col(Case.client_id))
        .where(Note.worker_id == worker_id, col(Note.status).in_(("draft", "returned")))
        .order_by(col(Note.id).desc())
    )
    return [ToSign(id=n.id or 0, status=n.status, client=c.name, created=n.created_at) for n, c in rows]
