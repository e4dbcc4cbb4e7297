"""Office-hour blocks as stored become rules as they were published, even in an older shape."""

from __future__ import annotations

from datetime import date, time

import pytest

from caserecord.errors import Invalid
from caserecord.models import OfficeHourBlock
from scheduler.hours import BlockSpec, to_rule


def test_a_stored_block_is_read_as_stored_not_checked_as_input_again() -> None:
    # An older page form stored seconds; such a block must still give its slots.
    row = OfficeHourBlock(
        id=3,
        worker_id=7,
        weekdays="TU,TH",
        start_time=time(9, 0, 30),
        end_time=time(12),
        timezone="America/Los_Angeles",
        slot_minutes=30,
        mode="booked",
        starts_on=date(2026, 3, 1),
    )
    rule = to_rule(row, [date(2026, 3, 3)])
    assert (rule.id, rule.worker_id, rule.weekdays, rule.start_time) == (3, 7, ("TU", "TH"), time(9, 0, 30))
    assert rule.exceptions == frozenset({date(2026, 3, 3)})
    with pytest.raises(Invalid, match="whole minutes"):
        BlockSpec.checked(**BlockSpec.of(row).model_dump(exclude={"start_time"}), start_time=time(9, 0, 30))


def test_checked_names_the_field_in_plain_words() -> None:
    with pytest.raises(Invalid) as err:
        BlockSpec.checked(
            weekdays=("MO",),
            start_time=time(9, tzinfo=None),
            end_time=time(10),
            timezone="UTC",
            slot_minutes=3,
            starts_on=date(2026, 3, 1),
        )
    assert err.value.detail.startswith("slot_minutes: ") and "Value error" not in err.value.detail
