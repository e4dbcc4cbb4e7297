"""Sign-in sessions: cookie flags, idle and absolute expiry on the server, cross-site writes."""

from __future__ import annotations

from sqlmodel import select

from caserecord.models import AuditEvent
from tests.conftest import PASSWORD, Clock, Staff, login
from tests.helpers import Client, ok, problem
from web.services import SERVICES


async def test_login_sets_a_strict_cookie_and_logout_ends_the_session(client: Client, staff: Staff) -> None:
    resp = await client.post("/api/session", json={"email": "WORKER@agency.test ", "password": PASSWORD})
    body = await ok(resp)
    cookie = resp.cookies["lastmile_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert body["user"]["email"] == "worker@agency.test" and body["user"]["role"] == "worker"
    me = await ok(await client.get("/api/me"))  # the cookie jar now carries the session
    assert me["id"] == staff.worker.id
    assert (
        await client.delete("/api/session", headers={"Origin": str(client.make_url("")).rstrip("/")})
    ).status == 204
    client.session.cookie_jar.update_cookies({"lastmile_session": cookie.value})
    await problem(await client.get("/api/me"), 401)  # the server forgot it, even if a browser did not


async def test_wrong_password_is_refused_and_audited(client: Client, staff: Staff) -> None:
    body = await problem(
        await client.post("/api/session", json={"email": staff.worker.email, "password": "nope"}), 401
    )
    assert "wrong e-mail or password" in body["detail"]
    await problem(
        await client.post("/api/session", json={"email": "nobody@agency.test", "password": "nope"}), 401
    )
    db = client.app[SERVICES].db
    with db.session() as s:
        failed = list(s.exec(select(AuditEvent).where(AuditEvent.action == "session.login_failed")))
    assert len(failed) == 2 and all(e.ip == "127.0.0.1" for e in failed)


async def test_idle_sessions_expire_on_the_server(client: Client, staff: Staff, clock: Clock) -> None:
    headers = await login(client, staff.worker.email)
    clock.advance(minutes=20)
    await ok(await client.get("/api/me", headers=headers))  # activity keeps it alive
    clock.advance(minutes=20)
    await ok(await client.get("/api/me", headers=headers))
    clock.advance(minutes=31)
    await problem(await client.get("/api/me", headers=headers), 401)


async def test_absolute_limit_ends_even_an_active_session(client: Client, staff: Staff, clock: Clock) -> None:
    headers = await login(client, staff.worker.email)
    for _ in range(12 * 3):  # active every 20 minutes for 12 hours
        clock.advance(minutes=20)
        resp = await client.get("/api/me", headers=headers)
        await resp.read()
    assert resp.status == 401


async def test_cross_site_write_with_the_cookie_is_refused(client: Client, staff: Staff) -> None:
    await ok(await client.post("/api/session", json={"email": staff.worker.email, "password": PASSWORD}))
    resp = await client.post(
        f"/api/workers/{staff.worker.id}/office-hours",
        json={
            "weekdays": ["MO"],
            "start_time": "09:00",
            "end_time": "10:00",
            "timezone": "UTC",
            "slot_minutes": 30,
            "starts_on": "2026-03-02",
        },
        headers={"Origin": "https://evil.example"},
    )
    body = await problem(resp, 403)
    assert "cross-site" in body["detail"]
    blocks = await ok(await client.get(f"/api/workers/{staff.worker.id}/office-hours"))
    assert blocks == []


async def test_deactivated_user_loses_access(client: Client, staff: Staff) -> None:
    headers = await login(client, staff.worker.email)
    db = client.app[SERVICES].db
    with db.session(write=True) as s:
        user = s.get(type(staff.worker), staff.worker.id)
        assert user is not None
        user.active = False
        s.add(user)
    await problem(await client.get("/api/me", headers=headers), 401)
    await problem(
        await client.post("/api/session", json={"email": staff.worker.email, "password": PASSWORD}), 401
    )
