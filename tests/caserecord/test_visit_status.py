"""The visit state machine: the moves it allows, the ones it refuses, and the UPDATE sources."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from caserecord import visit_status as vs
from caserecord.errors import Conflict
from caserecord.models import Visit

ALLOWED = {
    (vs.SCHEDULED, vs.WAITING),
    (vs.SCHEDULED, vs.ENDED),
    (vs.SCHEDULED, vs.NO_SHOW),
    (vs.SCHEDULED, vs.CANCELLED),
    (vs.WAITING, vs.IN_PROGRESS),
    (vs.WAITING, vs.ENDED),
    (vs.IN_PROGRESS, vs.ENDED),
    (vs.NO_SHOW, vs.SCHEDULED),
}


@pytest.mark.parametrize("current", vs.STATUSES)
@pytest.mark.parametrize("target", vs.STATUSES)
def test_every_move_is_allowed_or_refused_as_the_table_says(current: str, target: str) -> None:
    at = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    visit = Visit(
        id=7,
        case_id=1,
        worker_id=1,
        status=current,
        join_token="t" * 32,
        join_opens_at=at,
        join_expires_at=at,
    )
    if (current, target) in ALLOWED:
        vs.move(visit, target)
        assert visit.status == target
    else:
        with pytest.raises(Conflict, match=f"visit 7 is {current}"):
            vs.move(visit, target)
        assert visit.status == current
    assert vs.can_move(current, target) == ((current, target) in ALLOWED)


def test_sources_name_every_status_a_target_is_reached_from() -> None:
    assert vs.SOURCES[vs.NO_SHOW] == (vs.SCHEDULED,)
    assert set(vs.SOURCES[vs.ENDED]) == set(vs.LIVE)
    assert vs.SOURCES[vs.WAITING] == (vs.SCHEDULED,)
    assert vs.SOURCES[vs.CANCELLED] == (vs.SCHEDULED,)
    assert all(not vs.can_move(final, t) for final in (vs.ENDED, vs.CANCELLED) for t in vs.STATUSES)
