"""Signing in and out on the site: the form, where each role lands, never off-site."""

from __future__ import annotations

import pytest
from yarl import URL

from tests.conftest import Staff
from tests.helpers import Client
from tests.web.pages.helpers import csrf_of, error, get_page, sign_in, signed_in


async def test_sign_in_page_is_a_labelled_form(client: Client) -> None:
    resp = await client.get("/")
    page = await resp.text()
    assert resp.status == 200
    assert '<label for="email">E-mail</label>' in page and '<label for="password">Password</label>' in page
    assert 'autocomplete="current-password"' in page
    assert resp.headers["Cache-Control"] == "no-store"
    # `no-referrer` would make browsers send `Origin: null` on form posts, which the server refuses.
    assert resp.headers["Referrer-Policy"] == "same-origin"


async def test_wrong_password_answers_401_with_the_error(client: Client, staff: Staff) -> None:
    resp = await sign_in(client, staff.worker.email, "not the password")
    page = await resp.text()
    assert resp.status == 401 and resp.content_type == "text/html"
    assert error(page) == "Wrong e-mail or password."
    assert f'value="{staff.worker.email}"' in page and "not the password" not in page
    assert 'aria-invalid="true"' in page and 'aria-describedby="sign-in-error"' in page
    assert "lastmile_session" not in resp.cookies
    await get_page(client, "/worker", 303)  # still signed out


@pytest.mark.parametrize(
    ("who", "home", "heading"),
    [
        ("worker", "/worker", "Your office hours"),
        ("supervisor", "/supervisor", "Your team"),
        ("admin", "/supervisor", "All workers"),
    ],
)
async def test_sign_in_sends_each_role_home(
    client: Client, staff: Staff, who: str, home: str, heading: str
) -> None:
    resp = await sign_in(client, staff.by_name(who).email)
    assert resp.status == 303 and resp.headers["Location"] == home
    cookie = resp.cookies["lastmile_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    page = await get_page(client, home)
    assert f"<h1>{heading}</h1>" in page
    assert (await get_page(client, "/", 303)) is not None  # signed in: the sign-in page sends you home


async def test_signed_out_worker_page_redirects_to_sign_in_and_back(client: Client, staff: Staff) -> None:
    resp = await client.get("/worker?weeks=2", allow_redirects=False)
    assert resp.status == 303
    location = URL(resp.headers["Location"])
    assert location.path == "/" and location.query["next"] == "/worker?weeks=2"
    page = await get_page(client, resp.headers["Location"])
    assert '<input type="hidden" name="next" value="/worker?weeks=2">' in page
    resp = await sign_in(client, staff.worker.email, next_path="/worker?weeks=2")
    assert resp.status == 303 and resp.headers["Location"] == "/worker?weeks=2"
    assert '<h2 id="cal-h">Coming 2 weeks</h2>' in await get_page(client, "/worker?weeks=2")


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example/", "https://evil.example/"])
async def test_sign_in_never_sends_you_off_site(client: Client, staff: Staff, target: str) -> None:
    resp = await sign_in(client, staff.worker.email, next_path=target)
    assert resp.status == 303 and resp.headers["Location"] == "/worker"


async def test_sign_out_ends_the_session(client: Client, staff: Staff) -> None:
    await signed_in(client, staff.worker)
    token = csrf_of(await get_page(client, "/worker"))
    resp = await client.post("/sign-out", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    await get_page(client, "/worker", 303)
