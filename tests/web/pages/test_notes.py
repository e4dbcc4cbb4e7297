"""The note review page: draft beside transcript, confirm a flag, sign; the supervisor approves."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from tests.conftest import PASSWORD, AppMaker, Clock, Staff, login
from tests.helpers import drafted_note, ok
from tests.transcription.test_after_visit import _ended_visit


async def _sign_in(client: TestClient, email: str) -> str:  # type: ignore[type-arg]
    client.session.cookie_jar.clear()
    resp = await client.post("/", data={"email": email, "password": PASSWORD}, allow_redirects=False)
    assert resp.status == 303
    return email


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_review_confirm_sign_and_approve(make_client: AppMaker, staff: Staff, clock: Clock) -> None:
    visit_id, _ = await _ended_visit(make_client, staff, clock, consent=True)
    client = await make_client()
    w = await login(client, staff.worker.email)
    note = await drafted_note(client, w, visit_id)
    await _sign_in(client, staff.worker.email)
    page = await client.get(f"/notes/{note['id']}")
    html = await page.text()
    assert page.status == 200 and "generated: check before signing" in html
    assert "Eviction" in html or "eviction" in html
    assert "My landlord says we will be evicted." in html  # the quote, and the transcript line
    csrf = _csrf(html)
    origin = str(client.make_url("/")).rstrip("/")
    saved = await client.post(
        f"/notes/{note['id']}/save",
        data={
            "csrf_token": csrf,
            "version": "1",
            "flag-0": "confirmed",
            "analysis": "Refer to housing team.",
        },
        headers={"Origin": origin},
        allow_redirects=False,
    )
    assert saved.status == 303 and "notice=Saved" in saved.headers["Location"]
    body = await ok(await client.get(f"/api/visits/{visit_id}/note", headers=w))
    assert (
        body["risk_flags"][0]["status"] == "confirmed"
        and body["sections"]["analysis"] == "Refer to housing team."
    )
    # A form without the token changes nothing.
    refused = await client.post(
        f"/notes/{note['id']}/sign", data={}, headers={"Origin": origin}, allow_redirects=False
    )
    assert refused.status == 403
    signed = await client.post(
        f"/notes/{note['id']}/sign",
        data={"csrf_token": csrf},
        headers={"Origin": origin},
        allow_redirects=False,
    )
    assert signed.status == 303 and "Signed" in signed.headers["Location"]
    # The supervisor sees the signed note and approves it.
    await _sign_in(client, staff.supervisor.email)
    page = await client.get(f"/notes/{note['id']}")
    html = await page.text()
    assert "Approve" in html and "Sign the note" not in html
    approved = await client.post(
        f"/notes/{note['id']}/approve",
        data={"csrf_token": _csrf(html)},
        headers={"Origin": origin},
        allow_redirects=False,
    )
    assert approved.status == 303
    final = await ok(await client.get(f"/api/visits/{visit_id}/note", headers=w))
    assert final["status"] == "approved"
    # Another team's worker cannot open it.
    await _sign_in(client, staff.other_worker.email)
    assert (await client.get(f"/notes/{note['id']}")).status == 403
