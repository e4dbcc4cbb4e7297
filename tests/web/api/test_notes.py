"""After the draft: every version kept, addenda to signed notes, risk alerts, the follow-up booking."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, select

from caserecord import transcripts
from caserecord.audit import Actor
from caserecord.models import AuditEvent, Booking, OutboxMessage, Visit
from tests.conftest import PASSWORD, AppMaker, Clock, Staff, login
from tests.helpers import check_in, drafted_note, logins, ok, tuesday_visit
from visits import lifecycle
from web.services import SERVICES

CLIENT_SAYS = "My landlord says we will be evicted."
WORKER_SAYS = "Let's meet again next Tuesday at ten to look at the letter."


async def _visit_with_note(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> tuple[Any, dict[str, str], int, int]:
    """A visit of Tuesday 3 March 09:00 (Los Angeles) ended with a two-speaker transcript.

    Returns the test client, the worker's headers, the visit id and the note id.
    """
    client, w, booking = await tuesday_visit(make_client, staff, clock, "Rosa Diaz")
    joined = await check_in(client, booking, consent=True)
    visit_id = int(booking["visit_id"])
    assert staff.worker.id is not None
    worker = Actor(staff.worker.id, "worker")
    with client.app[SERVICES].db.session(write=True) as s:
        me, _ = lifecycle.staff_participant(s, worker, visit_id, clock.now)
        lifecycle.admit(s, worker, visit_id, joined["participant_id"], clock.now)
        transcripts.add_segment(s, visit_id, f"client:{joined['participant_id']}", 3.0, 6.5, CLIENT_SAYS, [])
        transcripts.add_segment(s, visit_id, f"worker:{me.id}", 8.0, 12.0, WORKER_SAYS, [])
    await ok(await client.post(f"/api/visits/{visit_id}/end", json={}, headers=w))
    note = await drafted_note(client, w, visit_id)
    return client, w, visit_id, int(note["id"])


async def test_every_version_is_kept_and_a_signed_note_grows_only_by_addenda(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client, w, visit_id, note_id = await _visit_with_note(make_client, staff, clock)
    sup, other = await logins(client, staff, "supervisor", "other_worker")
    await ok(
        await client.patch(f"/api/notes/{note_id}", json={"version": 1, "analysis": "First."}, headers=w)
    )
    await ok(
        await client.patch(f"/api/notes/{note_id}", json={"version": 2, "analysis": "Second."}, headers=w)
    )
    # An addendum is for signed notes; a draft is edited instead.
    early = await client.post(f"/api/notes/{note_id}/addenda", json={"text": "Too soon."}, headers=w)
    assert early.status == 409
    await ok(await client.post(f"/api/notes/{note_id}/sign", headers=w))
    refused = await client.patch(
        f"/api/notes/{note_id}", json={"version": 3, "analysis": "Third."}, headers=w
    )
    assert refused.status == 409

    added = await ok(
        await client.post(
            f"/api/notes/{note_id}/addenda",
            json={"text": "  Landlord called back: notice withdrawn.  "},
            headers=w,
        ),
        201,
    )
    assert added["text"] == "Landlord called back: notice withdrawn." and added["author"] == staff.worker.name
    await ok(
        await client.post(f"/api/notes/{note_id}/addenda", json={"text": "Seen by supervisor."}, headers=sup),
        201,
    )
    assert (
        await client.post(f"/api/notes/{note_id}/addenda", json={"text": "x"}, headers=other)
    ).status == 403
    assert (await client.post(f"/api/notes/{note_id}/addenda", json={"text": ""}, headers=w)).status == 422
    assert (await client.post(f"/api/notes/{note_id}/addenda", json={"txt": "x"}, headers=w)).status == 422

    note = await ok(await client.get(f"/api/visits/{visit_id}/note", headers=sup))
    assert note["sections"]["analysis"] == "Second." and note["status"] == "signed"
    assert [a["text"] for a in note["addenda"]] == [
        "Landlord called back: notice withdrawn.",
        "Seen by supervisor.",
    ]

    history = await ok(await client.get(f"/api/notes/{note_id}/history", headers=w))
    versions = history["revisions"]
    assert [r["version"] for r in versions] == [1, 2, 3]
    assert versions[0]["author"] == "drafter" and versions[0]["body"].get("analysis") is None
    assert versions[1]["body"]["analysis"] == "First." and versions[1]["sections"] == ["analysis"]
    assert versions[2]["author"] == staff.worker.name and versions[2]["body"]["analysis"] == "Second."
    assert len(history["addenda"]) == 2
    assert (await client.get(f"/api/notes/{note_id}/history", headers=other)).status == 403

    # The lists: the worker's and the supervisor's own, by status; another team sees none of it.
    (row,) = await ok(await client.get("/api/notes", headers=sup))
    assert row["id"] == note_id and row["status"] == "signed" and row["client_name"] == "Rosa Diaz"
    assert await ok(await client.get("/api/notes?status=signed", headers=w)) == [row]
    assert await ok(await client.get("/api/notes?status=draft", headers=w)) == []
    assert await ok(await client.get("/api/notes", headers=other)) == []
    assert (await client.get("/api/notes?status=lost", headers=w)).status == 422

    with client.app[SERVICES].db.session() as s:
        actions = list(s.exec(select(AuditEvent.action).where(AuditEvent.entity == "note")))
    assert actions.count("note.addendum") == 2 and "note.read" in actions

    # The page shows the addenda beside the signed note and the form to add one.
    await _sign_in(client, staff.worker.email)
    html = await (await client.get(f"/notes/{note_id}")).text()
    assert "Landlord called back: notice withdrawn." in html and "Add addendum" in html
    assert "History (3 versions)" in html
    csrf = _csrf(html)
    origin = str(client.make_url("/")).rstrip("/")
    resp = await client.post(
        f"/notes/{note_id}/addendum",
        data={"csrf_token": csrf, "text": "Added from the page."},
        headers={"Origin": origin},
        allow_redirects=False,
    )
    assert resp.status == 303 and "notice=Addendum" in resp.headers["Location"]
    note = await ok(await client.get(f"/api/visits/{visit_id}/note", headers=w))
    assert note["addenda"][-1]["text"] == "Added from the page."


async def _sign_in(client: Any, email: str) -> None:
    client.session.cookie_jar.clear()
    resp = await client.post("/", data={"email": email, "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 303


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def _next_message(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), timeout=30)
        if msg.get("type") == kind:
            return msg


async def test_a_confirmed_risk_flag_reaches_the_supervisor_at_once(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client, w, visit_id, note_id = await _visit_with_note(make_client, staff, clock)
    sup, other_sup = await logins(client, staff, "supervisor", "other_supervisor")
    assert (await client.get("/api/risk-alerts", headers=sup)).status == 200
    assert await ok(await client.get("/api/risk-alerts", headers=sup)) == []  # suggested is not confirmed
    assert (await client.get("/api/risk-alerts", headers=w)).status == 403

    ws = await client.ws_connect("/ws/supervisor", headers=sup)
    note = await ok(await client.get(f"/api/visits/{visit_id}/note", headers=w))
    flags = note["risk_flags"]
    assert flags and "evicted" in flags[0]["quote"]["text"]
    flags[0]["status"] = "confirmed"
    await ok(await client.patch(f"/api/notes/{note_id}", json={"version": 1, "risk_flags": flags}, headers=w))
    await _next_message(ws, "risk")

    (alert,) = await ok(await client.get("/api/risk-alerts", headers=sup))
    assert alert["quote"] == CLIENT_SAYS and alert["client_name"] == "Rosa Diaz"
    assert alert["worker_name"] == staff.worker.name and alert["at_seconds"] == 3.0
    assert alert["note_id"] == note_id and alert["acknowledged_at"] is None
    assert await ok(await client.get("/api/risk-alerts", headers=other_sup)) == []
    assert (await client.post(f"/api/risk-alerts/{alert['id']}/acknowledge", headers=other_sup)).status == 403

    # A flag must rest on words: one without a quote is refused and changes nothing.
    bad = [{"category": "eviction", "status": "confirmed"}]
    assert (
        await client.patch(f"/api/notes/{note_id}", json={"version": 2, "risk_flags": bad}, headers=w)
    ).status == 422

    acked = await ok(await client.post(f"/api/risk-alerts/{alert['id']}/acknowledge", headers=sup))
    assert acked["acknowledged_by"] == staff.supervisor.id
    assert await ok(await client.get("/api/risk-alerts", headers=sup)) == []
    assert len(await ok(await client.get("/api/risk-alerts?state=all", headers=sup))) == 1
    assert (await client.get("/api/risk-alerts?state=maybe", headers=sup)).status == 422

    # Un-confirming withdraws the alert; confirming again raises it afresh.
    flags[0]["status"] = "dismissed"
    await ok(await client.patch(f"/api/notes/{note_id}", json={"version": 2, "risk_flags": flags}, headers=w))
    assert await ok(await client.get("/api/risk-alerts?state=all", headers=sup)) == []
    flags[0]["status"] = "confirmed"
    await ok(await client.patch(f"/api/notes/{note_id}", json={"version": 3, "risk_flags": flags}, headers=w))
    (again,) = await ok(await client.get("/api/risk-alerts", headers=sup))
    assert again["id"] == alert["id"] and again["acknowledged_at"] is None
    await ws.close()

    # The supervisor's page lists it with the words behind it, and acknowledges it in one click.
    await _sign_in(client, staff.supervisor.email)
    html = await (await client.get("/supervisor")).text()
    assert CLIENT_SAYS in html and "Acknowledge" in html
    origin = str(client.make_url("/")).rstrip("/")
    clicked = await client.post(
        "/supervisor/risk-alerts/acknowledge",
        data={"csrf_token": _csrf(html), "alert_id": str(again["id"])},
        headers={"Origin": origin},
        allow_redirects=False,
    )
    assert clicked.status == 303 and "notice=Acknowledged" in clicked.headers["Location"]
    assert await ok(await client.get("/api/risk-alerts", headers=sup)) == []
    bad = await client.post(
        "/supervisor/risk-alerts/acknowledge",
        data={"csrf_token": _csrf(html), "alert_id": "x"},
        headers={"Origin": origin},
    )
    assert 400 <= bad.status < 500 and "whole number" in await bad.text()


async def test_the_supervisor_sees_live_visits_of_the_team(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client, w, booking = await tuesday_visit(make_client, staff, clock, "Rosa Diaz")
    sup, other_sup = await logins(client, staff, "supervisor", "other_supervisor")
    assert await ok(await client.get("/api/live-visits", headers=sup)) == []  # booked, not live yet

    ws = await client.ws_connect("/ws/supervisor", headers=sup)
    await check_in(client, booking, consent=True, device="phone")
    (live,) = await ok(await client.get("/api/live-visits", headers=sup))
    assert live["id"] == booking["visit_id"] and live["status"] == "waiting"
    assert live["client_name"] == "Rosa Diaz" and live["worker_name"] == staff.worker.name
    assert live["waiting_since"] is not None and live["worker_present"] is False
    (person,) = live["participants"]
    assert person["kind"] == "client" and person["presence"] == "away"
    assert await ok(await client.get("/api/live-visits", headers=other_sup)) == []
    assert (await client.get("/api/live-visits", headers=w)).status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/supervisor", headers=w)
    assert refused.value.status == 403

    await ok(await client.post(f"/api/visits/{booking['visit_id']}/end", json={}, headers=w))
    await _next_message(ws, "visits")
    assert await ok(await client.get("/api/live-visits", headers=sup)) == []
    await ws.close()
    with client.app[SERVICES].db.session() as s:
        reads = s.exec(select(AuditEvent).where(AuditEvent.action == "visit.live.read")).all()
    assert reads and all(r.actor_id == staff.supervisor.id for r in reads)


async def test_the_suggested_follow_up_is_booked_in_one_click(
    make_client: AppMaker, staff: Staff, clock: Clock
) -> None:
    client, w, visit_id, note_id = await _visit_with_note(make_client, staff, clock)
    sup = await login(client, staff.supervisor.email)
    follow = await ok(await client.get(f"/api/notes/{note_id}/follow-up", headers=w))
    # "next Tuesday at ten", said on Tuesday 3 March: 10:00 on 10 March, a slot of the office hours.
    assert follow["suggested"]["start"] == "2026-03-10T10:00:00-07:00"
    assert follow["booking"] is None and "Tuesday" in follow["when_text"]

    start = follow["suggested"]["start"]
    # A start that is not a slot is refused without booking anything.
    off = await client.post(
        f"/api/notes/{note_id}/follow-up", json={"start": "2026-03-10T10:07:00-07:00"}, headers=w
    )
    assert off.status == 422
    assert (
        await client.post(f"/api/notes/{note_id}/follow-up", json={"start": start}, headers=sup)
    ).status == 403
    # One click on the note page books it.
    await _sign_in(client, staff.worker.email)
    html = await (await client.get(f"/notes/{note_id}")).text()
    assert "Book this follow-up" in html and f'name="start" value="{start}"' in html
    origin = str(client.make_url("/")).rstrip("/")
    clicked = await client.post(
        f"/notes/{note_id}/follow-up",
        data={"csrf_token": _csrf(html), "start": start},
        headers={"Origin": origin},
        allow_redirects=False,
    )
    assert clicked.status == 303 and "notice=Follow-up%20booked" in clicked.headers["Location"]
    booked = (await ok(await client.get(f"/api/notes/{note_id}/follow-up", headers=w)))["booking"]
    assert booked["start"] == start and booked["status"] == "booked" and booked["client_join_url"]
    again = await client.post(f"/api/notes/{note_id}/follow-up", json={"start": start}, headers=w)
    assert again.status == 409
    follow = await ok(await client.get(f"/api/notes/{note_id}/follow-up", headers=w))
    assert follow["booking"]["id"] == booked["id"] and follow["suggested"] is None
    with client.app[SERVICES].db.session() as s:
        visit = s.get(Visit, visit_id)
        new = s.get(Booking, booked["id"])
        assert visit is not None and new is not None and new.case_id == visit.case_id
        invites = s.exec(
            select(OutboxMessage).where(
                OutboxMessage.booking_id == new.id, col(OutboxMessage.kind) == "invitation"
            )
        ).all()
        assert invites  # the client is invited like for any booking
    note = await ok(await client.get(f"/api/visits/{visit_id}/note", headers=w))
    assert note["follow_up_booking_id"] == booked["id"]
    # The page offers the slot to a fresh note's worker; this one shows the booking.
    await _sign_in(client, staff.worker.email)
    html = await (await client.get(f"/notes/{note_id}")).text()
    assert "Booked:" in html and "Book this follow-up" not in html
