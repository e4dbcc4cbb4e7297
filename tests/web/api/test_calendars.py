"""Feeds and invites over HTTP, read back by independent parsers, agree with the slots endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import recurring_ical_events
import vobject
from icalendar import Calendar

from tests.conftest import Staff
from tests.helpers import Client, add_exception, book_tuesday, ok, publish

Role = Callable[[str], Awaitable[dict[str, str]]]


def _utc(value: Any) -> datetime:
    assert isinstance(value, datetime) and value.tzinfo is not None
    return value.astimezone(UTC)


def _parse(text: str) -> Any:
    """Parse with icalendar; typed Any since its property values are a wide union."""
    return Calendar.from_ical(text)


async def _feed(client: Client, headers: dict[str, str]) -> tuple[str, Any]:
    me = await ok(await client.get("/api/me", headers=headers))
    path = "/calendar/" + me["feed_url"].rsplit("/", 1)[1]
    resp = await client.get(path)  # the secret URL is the credential: no sign-in
    assert resp.status == 200 and resp.content_type == "text/calendar"
    text = await resp.text()
    return text, _parse(text)


async def test_feed_office_hours_hold_exactly_the_slots_the_api_offers(
    client: Client, staff: Staff, as_role: Role
) -> None:
    w = await as_role("worker")
    assert staff.worker.id is not None
    block = await publish(client, w, staff.worker.id, until="2026-04-30")
    await ok(await add_exception(client, w, staff.worker.id, block["id"], {"date": "2026-03-12"}), 201)
    await publish(
        client, w, staff.worker.id, weekdays=["WE"], start_time="14:00", end_time="16:00", mode="walk_in"
    )
    slots = await ok(
        await client.get(f"/api/workers/{staff.worker.id}/slots?from=2026-03-01&to=2026-03-31", headers=w)
    )
    text, cal = await _feed(client, w)
    assert "BEGIN:VTIMEZONE" in text and "TZID:America/Los_Angeles" in text
    events = recurring_ical_events.of(cal).between(
        datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, 8, tzinfo=UTC)
    )
    windows = [(_utc(e["DTSTART"].dt), _utc(e["DTEND"].dt), str(e["SUMMARY"])) for e in events]
    booked = [(s, e) for s, e, summary in windows if "booked" in summary]
    walk_in = [(s, e) for s, e, summary in windows if "walk-in" in summary]
    # Every booked-mode slot lies in a feed window, and every feed window holds slots.
    for slot in slots:
        start, end = _utc(datetime.fromisoformat(slot["start"])), _utc(datetime.fromisoformat(slot["end"]))
        pool = booked if slot["mode"] == "booked" else walk_in
        assert any(s <= start and end <= e for s, e in pool), slot
    days = sorted({s.astimezone(datetime.fromisoformat(slots[0]["start"]).tzinfo).date() for s, _ in booked})
    assert date(2026, 3, 12) not in days and date(2026, 3, 10) in days and len(days) == 8
    # The same wall-clock 09:00 on both sides of the 8 March change.
    assert {
        (s - timedelta(hours=8 if s < datetime(2026, 3, 8, 10, tzinfo=UTC) else 7)).hour for s, _ in booked
    } == {9}
    # vobject, a second reader, agrees on the recurrence.
    parsed = vobject.readOne(text)
    vevents = [v for v in parsed.vevent_list if "booked" in v.summary.value]
    rset = vevents[0].getrruleset()
    between = rset.between(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), inc=True)
    assert sorted(_utc(d) for d in between) == sorted(s for s, _ in booked)


async def test_bookings_in_feed_and_invites_track_every_change(
    client: Client, staff: Staff, as_role: Role
) -> None:
    w = await as_role("worker")
    booking = await book_tuesday(client, w, staff.worker, "Rosa Diaz", "2026-03-10T09:30:00-07:00")

    async def invite() -> Any:
        resp = await client.get(f"/api/bookings/{booking['id']}/invite.ics", headers=w)
        assert resp.status == 200 and resp.content_type == "text/calendar"
        text = await resp.text()
        cal = _parse(text)
        (event,) = cal.walk("VEVENT")
        v = vobject.readOne(text)
        assert _utc(v.vevent.dtstart.value) == _utc(event["DTSTART"].dt)
        return cal, event

    cal, event = await invite()
    uid = str(event["UID"])
    assert (
        str(cal["METHOD"]) == "REQUEST"
        and int(event["SEQUENCE"]) == 0
        and str(event["STATUS"]) == "CONFIRMED"
    )
    assert _utc(event["DTSTART"].dt) == _utc(datetime.fromisoformat(booking["start"]))
    assert str(event["DTSTART"].params["TZID"]) == "America/Los_Angeles"
    assert "mailto:client@example.net" in str(event["ATTENDEE"]).lower()
    # The organizer is the agency's sending address, as in the e-mailed invite: no staff address.
    assert str(event["ORGANIZER"]).lower() == "mailto:no-reply@lastmile.test"
    assert booking["client_join_url"] in str(event["DESCRIPTION"])

    moved = await ok(
        await client.post(
            f"/api/bookings/{booking['id']}/reschedule",
            json={"start": "2026-03-12T11:00:00-07:00"},
            headers=w,
        )
    )
    cal, event = await invite()
    assert str(event["UID"]) == uid and int(event["SEQUENCE"]) == 1 and str(cal["METHOD"]) == "REQUEST"
    assert _utc(event["DTSTART"].dt) == _utc(datetime.fromisoformat(moved["start"]))

    await ok(
        await client.post(f"/api/bookings/{booking['id']}/cancel", json={"reason": "client asked"}, headers=w)
    )
    cal, event = await invite()
    assert str(event["UID"]) == uid and int(event["SEQUENCE"]) == 2
    assert str(cal["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"

    # The feed shows the booking, cancelled, at its last time, and never the client's name.
    text, feed = await _feed(client, w)
    (fe,) = [e for e in feed.walk("VEVENT") if str(e["UID"]) == uid]
    assert str(fe["STATUS"]) == "CANCELLED" and int(fe["SEQUENCE"]) == 2
    assert _utc(fe["DTSTART"].dt) == _utc(datetime.fromisoformat(moved["start"]))
    assert "Rosa" not in text and "client@example.net" not in text
