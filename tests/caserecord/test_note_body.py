"""The typed note body: what the drafter files, what an edit may change, and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from caserecord.note_body import NoteBody, NoteEdit, RiskFlagBody

HEADER: dict[str, Any] = {
    "date": "2026-03-02",
    "local_time": "09:30",
    "timezone": "America/New_York",
    "start": "2026-03-02T09:30:00-05:00",
    "duration_seconds": 60,
    "duration": "1 min 00 s",
    "present": ["Ann Smith", "Maria Lopez"],
    "contact_type": "virtual visit",
    "consent": True,
    "recording": "Recorded and transcribed with the client's consent.",
}
FLAG: dict[str, Any] = {
    "category": "eviction_or_homelessness",
    "label": "Eviction or homelessness",
    "quote": {"speaker": "client:2", "start": 12.5, "end": 14.0, "text": "We will be evicted."},
}


def edit(**sections: Any) -> NoteEdit:
    return NoteEdit.model_validate_json(json.dumps(sections), strict=True)


def test_an_edit_changes_only_the_sections_it_names() -> None:
    body = NoteBody.model_validate({"header": HEADER, "risk_flags": [FLAG], "analysis": "Before."})
    changed = edit(observations="Calm and clear.", risk_flags=[{**FLAG, "status": "confirmed"}])
    assert changed.sections() == ["observations", "risk_flags"]
    after = changed.apply(body)
    assert after.observations == "Calm and clear." and after.analysis == "Before."
    assert [f.status for f in after.confirmed_flags()] == ["confirmed"]
    assert after.header == body.header
    assert NoteBody.model_validate_json(after.model_dump_json()) == after


@pytest.mark.parametrize(
    "sections",
    [
        {"summary": "just a string"},
        {"summary": None},
        {"action_items": [1, "x", None]},
        {"action_items": [{"owner": "client", "what": "  "}]},
        {"risk_flags": [{"category": "eviction", "status": "confirmed"}]},
        {"risk_flags": [{**FLAG, "status": "maybe"}]},
        {"risk_flags": [{**FLAG, "quote": {"text": "We will be evicted.", "start": 86_400}}]},
        {"risk_flags": [{**FLAG, "quote": {"text": " "}}]},
        {"risk_flags": [FLAG] * 101},
        {"follow_up": {"start": "9999-12-31"}},
        {"follow_up": {"start": "2026-03-10T10:00:00"}},
        {"follow_up": {"start": "next week"}},
        {"header": HEADER},
        {"observations": "x" * 20_001},
        {"client_words": [FLAG["quote"]]},
    ],
)
def test_a_malformed_section_is_refused(sections: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        edit(**sections)


def test_a_flag_knows_its_moment() -> None:
    flag = RiskFlagBody.model_validate(FLAG)
    assert flag.at_ms == 12_500 and flag.status == "suggested"


def test_a_section_stored_in_an_old_shape_is_left_out_when_read() -> None:
    """Before bodies were typed the API stored any JSON in a section; such a note still opens."""
    stored = {
        "header": HEADER,
        "summary": "just a string",
        "action_items": [1, "x", None],
        "follow_up": {"start": "9999-12-31"},
        "risk_flags": [FLAG],
        "analysis": "Kept.",
    }
    body = NoteBody.read(json.dumps(stored))
    assert body.summary.sentences == [] and body.action_items == [] and body.follow_up is None
    assert body.analysis == "Kept." and [f.category for f in body.risk_flags] == [FLAG["category"]]
    assert NoteBody.read(body.model_dump_json()) == body
