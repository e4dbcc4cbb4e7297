"""The visit's public pages (join link, kiosk, walk-in) are the client's: no staff header on them."""

from __future__ import annotations

import pytest

from tests.conftest import Staff
from tests.helpers import Client
from tests.web.pages.helpers import get_page, signed_in


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/kiosk", 200),
        ("/j/not-a-real-token-at-all-xxxxxxxx", 404),
        ("/w/not-a-real-walk-in-link-xxxxx", 404),
    ],
)
async def test_a_staff_session_on_the_device_does_not_show_on_public_pages(
    client: Client, staff: Staff, path: str, status: int
) -> None:
    """A member of staff signed in on a kiosk must not leave their name, nav or CSRF token on it."""
    await signed_in(client, staff.supervisor)
    assert "Sign out" in await get_page(client, "/supervisor")
    page = await get_page(client, path, status)
    assert "Sign out" not in page and staff.supervisor.name not in page
    assert 'name="csrf_token"' not in page and 'href="/supervisor"' not in page
