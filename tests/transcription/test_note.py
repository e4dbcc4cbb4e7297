"""The deterministic drafter on scripted visits: header, extractive summary, quotes, actions, flags."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caserecord.note_body import NoteBody
from tests.transcription.audio import CLIENT, SCRIPT, WORKER, Visit
from transcription import (
    DeterministicDrafter,
    DraftNote,
    Engine,
    RiskCategory,
    Segment,
    VisitContext,
    Word,
    draft_note,
    transcribe_file,
)
from transcription.drafter import sentences, timeline, utterances
from transcription.note import Quote

NEW_YORK = ZoneInfo("America/New_York")
# Monday 2 March 2026, 9:30 in New York (14:30 UTC).
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def context(consent: bool = True, present: tuple[str, ...] = ()) -> VisitContext:
    return VisitContext(
        visit_start=START,
        timezone="America/New_York",
        worker_name="Maria Lopez",
        client_name="Ann Smith",
        duration=timedelta(minutes=12, seconds=5),
        consent=consent,
        present=present,
    )


def scripted(lines: Sequence[tuple[str, str]], gap: float = 1.0) -> list[Segment]:
    """Lay lines one after another, about 2.5 words a second, each with word timings."""
    segments = []
    at = 1.0
    for speaker, text in lines:
        words = []
        t = at
        for token in text.split():
            words.append(Word(round(t, 2), round(t + 0.35, 2), " " + token, 0.9))
            t += 0.4
        segments.append(Segment(speaker, round(at, 2), round(t, 2), text, tuple(words)))
        at = t + gap
    # Per-speaker streams arrive separately: the drafter must merge them, whatever the order.
    return [s for s in segments if s.speaker == CLIENT] + [s for s in segments if s.speaker == WORKER]


BENEFITS = scripted(
    [
        (WORKER, "Hi Ann, thanks for joining. Today we need to go through your food benefits renewal."),
        (CLIENT, "Yes. The renewal letter says I have to send the forms by the 15th or the benefits stop."),
        (WORKER, "Okay. Do you have your last two pay stubs?"),
        (CLIENT, "I have one of them. My employer still owes me the other pay stub from February."),
        (WORKER, "Can you send me both pay stubs by Friday?"),
        (CLIENT, "I will ask my manager tomorrow and send them to you by Friday."),
        (WORKER, "Great. I'll fill in the renewal form today and mail you a copy."),
        (CLIENT, "Thank you, that really helps, because money is very tight with the children."),
        (WORKER, "Let's check in again in two weeks to make sure the renewal went through."),
        (CLIENT, "Okay, see you then. Bye."),
    ]
)

HOUSING = scripted(SCRIPT)

NEGATED = scripted(
    [
        (WORKER, "How have you been feeling since we last spoke?"),
        (CLIENT, "Honestly it has been a hard month since I lost my job at the warehouse."),
        (WORKER, "I need to ask you this: have you had any thoughts of hurting yourself?"),
        (CLIENT, "No, I'm not going to hurt myself. I would never do that to my kids."),
        (CLIENT, "I just feel tired and worried about paying the bills."),
        (WORKER, "Thank you for telling me. I will refer you to the job centre this week."),
        (WORKER, "Please call the crisis line if things change, and we will meet again on Thursday at 2 pm."),
        (CLIENT, "Okay, I will. See you Thursday."),
    ]
)


def all_sentences(segments: Sequence[Segment]) -> list[str]:
    ctx = context()
    return [q.text for s in utterances(segments) for q in sentences(s, ctx)]


def assert_grounded(note: DraftNote, segments: Sequence[Segment]) -> None:
    """Every quote is verbatim in what its speaker said, at a moment inside those words."""
    segments = utterances(segments)
    quotes: list[Quote] = [
        *note.summary,
        *note.client_words,
        *(a.quote for a in note.action_items),
        *(f.quote for f in note.risk_flags),
        *([note.follow_up.quote] if note.follow_up else []),
    ]
    for quote in quotes:
        holders = [s for s in segments if quote.text in s.text and s.speaker == quote.speaker]
        assert holders, quote
        assert any(s.start <= quote.start <= quote.end <= s.end for s in holders), quote
        assert quote.role == quote.speaker.split(":")[0]


def test_benefits_renewal_visit() -> None:
    note = draft_note(context(), BENEFITS)
    assert_grounded(note, BENEFITS)
    actions = {(a.owner, a.what): a for a in note.action_items}
    send = actions[("client", "send me both pay stubs")]
    assert send.due == date(2026, 3, 6)
    assert send.quote.role == "worker"
    ask = actions[("client", "ask my manager and send them to you")]
    assert ask.due == date(2026, 3, 3)
    assert ask.owner_name == "Ann Smith"
    fill = actions[("worker", "fill in the renewal form and mail you a copy")]
    assert fill.due == date(2026, 3, 2)
    assert fill.owner_name == "Maria Lopez"
    forms = actions[("client", "send the forms")]
    assert (forms.due, forms.due_text) == (date(2026, 3, 15), "the 15th")
    assert note.follow_up is not None
    assert note.follow_up.start == date(2026, 3, 16)
    assert note.follow_up.when_text == "in two weeks"
    assert note.risk_flags == ()
    assert any("renewal" in q.text for q in note.summary)


def test_housing_visit_with_a_risk_sentence() -> None:
    note = draft_note(context(), HOUSING)
    assert_grounded(note, HOUSING)
    [flag] = note.risk_flags
    assert flag.category is RiskCategory.EVICTION_OR_HOMELESSNESS
    assert flag.status == "suggested"
    assert flag.quote.text == "But my landlord says we will be evicted next month."
    assert flag.quote.speaker == CLIENT
    # Timed by its first word, after the segment's first sentence.
    [segment] = [s for s in HOUSING if "evicted" in s.text]
    first_word = next(w for w in segment.words if w.text.strip() == "But")
    assert flag.quote.start == first_word.start > segment.start
    assert note.follow_up is not None
    assert note.follow_up.start == datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)
    assert note.follow_up.when_text == "next Tuesday at ten"
    by_what = {a.what: a for a in note.action_items}
    call = by_what["call the housing office about your rent"]
    assert (call.owner, call.due, call.due_text) == ("worker", date(2026, 3, 6), "this week")
    bring = by_what["bring the letter with you"]
    assert (bring.owner, bring.due) == ("client", datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK))
    offered = by_what["bring the letter from the landlord to our next meeting"]
    assert offered.owner == "client"
    assert offered.due == note.follow_up.start
    assert any("evicted" in q.text for q in note.client_words)


def test_negated_self_harm_raises_no_flag() -> None:
    note = draft_note(context(), NEGATED)
    assert_grounded(note, NEGATED)
    assert note.risk_flags == ()
    assert note.follow_up is not None
    assert note.follow_up.start == datetime(2026, 3, 5, 14, 0, tzinfo=NEW_YORK)
    owners = {(a.owner, a.what) for a in note.action_items}
    assert ("worker", "refer you to the job centre") in owners
    crisis = next(a for a in note.action_items if a.what == "call the crisis line if things change")
    assert crisis.owner == "client"
    # The date in the sentence belongs to the meeting, not to this task.
    assert crisis.due is None


def test_the_same_talk_without_the_negation_raises_a_flag() -> None:
    lines = [(CLIENT, "Honestly, some nights I want to hurt myself.")]
    note = draft_note(context(), scripted(lines))
    [flag] = note.risk_flags
    assert flag.category is RiskCategory.SELF_HARM
    assert flag.trigger == "hurt myself"
    assert flag.quote.text == lines[0][1]
    assert flag.quote.start == 1.0


@pytest.mark.parametrize("segments", [BENEFITS, HOUSING, NEGATED], ids=["benefits", "housing", "negated"])
def test_summary_and_quotes_are_sentences_that_were_said(segments: list[Segment]) -> None:
    note = draft_note(context(), segments)
    said = all_sentences(segments)
    assert 1 <= len(note.summary) <= 4
    assert all(q.text in said for q in note.summary)
    assert note.client_words
    assert all(q.role == "client" and q.text in said for q in note.client_words)
    # In time order, pleasantries left out.
    assert [q.start for q in note.summary] == sorted(q.start for q in note.summary)
    assert not any(
        re.fullmatch(r"(Okay|Yes|Bye)\W.*", q.text) and len(q.text.split()) < 5 for q in note.summary
    )
    assert note.generated
    assert note.to_body().summary.generated is True


def test_the_transcript_is_one_timeline() -> None:
    note = draft_note(context(), HOUSING)
    assert [q.speaker for q in note.transcript] == [speaker for speaker, _ in SCRIPT]
    assert [q.start for q in note.transcript] == sorted(q.start for q in note.transcript)
    assert [s.text for s in timeline(HOUSING)] == [text for _, text in SCRIPT]


def test_header() -> None:
    note = draft_note(context(), HOUSING)
    header = note.header
    assert header.date == date(2026, 3, 2)
    assert header.local_time == "09:30"
    assert header.duration_seconds == 725
    assert header.present == ("Maria Lopez", "Ann Smith")
    assert header.contact_type == "virtual visit"
    assert header.consent
    assert "Recorded and transcribed" in header.recording
    explicit = draft_note(context(present=("Maria Lopez", "Ann Smith", "Tom Smith (son, 9)")), HOUSING)
    assert explicit.header.present[-1] == "Tom Smith (son, 9)"


def test_empty_transcript() -> None:
    note = draft_note(context(), [Segment(CLIENT, 1.0, 1.5, "  ", ())])
    assert (note.summary, note.client_words, note.action_items, note.risk_flags) == ((), (), (), ())
    assert note.follow_up is None
    assert note.transcript == ()
    assert note.remarks == ("No speech was transcribed during this visit.",)
    assert note.header.consent


def test_no_consent_uses_nothing_that_was_said() -> None:
    note = draft_note(context(consent=False), HOUSING)
    assert not note.header.consent
    assert "did not consent" in note.header.recording
    assert note.transcript == () and note.risk_flags == () and note.action_items == () and note.summary == ()
    assert note.follow_up is None
    assert note.remarks == ("No transcript: the visit was not recorded.",)
    data = note.to_body().model_dump(mode="json")
    assert data["header"]["consent"] is False
    assert data["transcript"] == []


def test_the_body_is_json_with_links_to_moments() -> None:
    data = json.loads(draft_note(context(), HOUSING).to_body().model_dump_json())
    assert data["generated"] is True
    assert data["drafter"] == "lastmile-extractive"
    assert data["header"]["start"] == "2026-03-02T09:30:00-05:00"
    assert data["header"]["duration"] == "12 min 05 s"
    assert data["follow_up"]["start"] == "2026-03-10T10:00:00-04:00"
    assert data["risk_flags"][0]["status"] == "suggested"
    assert data["risk_flags"][0]["label"] == "Eviction or homelessness"
    for item in [*data["action_items"], *data["risk_flags"], data["follow_up"]]:
        assert {"speaker", "start", "text"} <= item["quote"].keys()
    assert {a["due"] for a in data["action_items"]} >= {"2026-03-06", "2026-03-10T10:00:00-04:00"}


def test_the_same_transcript_gives_the_same_note() -> None:
    assert draft_note(context(), HOUSING) == draft_note(context(), list(reversed(HOUSING)))


async def test_the_deterministic_drafter_object() -> None:
    drafter = DeterministicDrafter()
    assert await drafter.draft(context(), HOUSING) == draft_note(context(), HOUSING)


def test_without_word_timings_quotes_take_the_segments_time() -> None:
    segment = Segment(CLIENT, 12.5, 16.0, "We have nothing to eat. The fridge has been empty for days.", ())
    note = draft_note(context(), [segment])
    [flag] = note.risk_flags
    assert flag.category is RiskCategory.NO_FOOD
    assert (flag.quote.start, flag.quote.end, flag.quote.text) == (12.5, 16.0, "We have nothing to eat.")


def test_a_naive_start_or_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        VisitContext(datetime(2026, 3, 2, 9, 30), "America/New_York", "M", "A", timedelta(0), True)
    with pytest.raises(Exception, match="Mars"):
        VisitContext(START, "Mars/Olympus_Mons", "M", "A", timedelta(0), True)


async def test_note_from_the_spoken_visit(engine: Engine, visit: Visit, visit_wavs: dict[str, Path]) -> None:
    """The espeak visit through the real tiny.en model, per speaker, then drafted."""
    segments = [s for speaker, wav in visit_wavs.items() for s in await transcribe_file(engine, wav, speaker)]
    note = draft_note(context(), segments)
    assert_grounded(note, segments)
    [flag] = note.risk_flags
    assert flag.category is RiskCategory.EVICTION_OR_HOMELESSNESS
    assert "evicted" in flag.quote.text.lower() and flag.quote.speaker == CLIENT
    [said] = [line for line in visit.lines if "evicted" in line.text]
    assert said.start - 0.5 <= flag.quote.start <= said.end
    assert note.follow_up is not None
    assert note.follow_up.start == datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)
    call = next(a for a in note.action_items if "housing office" in a.what)
    assert (call.owner, call.due) == ("worker", date(2026, 3, 6))
    bring = next(a for a in note.action_items if a.quote.role == "worker" and "letter" in a.what)
    assert (bring.owner, bring.due) == ("client", datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK))


def test_a_sentence_cut_across_segments_is_joined() -> None:
    segments = [
        Segment(
            WORKER,
            26.3,
            36.5,
            "I will call the housing office about your rent. Let us meet again",
            (),
        ),
        Segment(CLIENT, 36.0, 36.4, "Mm.", ()),
        Segment(WORKER, 37.0, 40.0, "next Tuesday at 10 and please bring the letter with you.", ()),
        Segment(WORKER, 50.0, 52.0, "Right", ()),
        Segment(WORKER, 60.0, 62.0, "take care now.", ()),
    ]
    joined = utterances(segments)
    assert [s.text for s in joined] == [
        "I will call the housing office about your rent. Let us meet again next Tuesday at 10 and please "
        "bring the letter with you.",
        "Mm.",
        "Right",
        "take care now.",
    ]
    note = draft_note(context(), segments)
    assert_grounded(note, segments)
    assert note.follow_up is not None
    assert note.follow_up.start == datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)
    # Without word timings a quote is timed as the joined segments.
    assert (note.follow_up.quote.start, note.follow_up.quote.end) == (26.3, 40.0)
    bring = next(a for a in note.action_items if a.what == "bring the letter with you")
    assert bring.due == datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)


POOL = [
    *(text for _, text in SCRIPT),
    "No, I'm not going to hurt myself.",
    "He has never hit me.",
    "We have nothing to eat until Friday.",
    "Can you send me the forms by the 15th?",
    "I'll phone the school tomorrow at 2 pm.",
    "Okay.",
    "",
    "Please bring your ID next week",
    "and the tenancy agreement.",
]


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(
        st.tuples(st.sampled_from([WORKER, CLIENT]), st.sampled_from(POOL), st.floats(0.1, 5.0)), max_size=12
    ),
    shuffle=st.randoms(use_true_random=False),
)
def test_any_transcript_gives_a_grounded_note(
    lines: list[tuple[str, str, float]], shuffle: random.Random
) -> None:
    segments = []
    at = 0.0
    for speaker, text, length in lines:
        segments.append(Segment(speaker, round(at, 2), round(at + length, 2), text, ()))
        at += length + 0.5
    note = draft_note(context(), segments)
    assert_grounded(note, segments)
    for flag in note.risk_flags:
        assert flag.trigger in flag.quote.text
        assert flag.status == "suggested"
        assert "not going to hurt" not in flag.quote.text and "never hit" not in flag.quote.text
    said = all_sentences(segments)
    assert all(q.text in said for q in [*note.summary, *note.client_words])
    shuffle.shuffle(segments)
    assert draft_note(context(), segments) == note
    NoteBody.model_validate_json(note.to_body().model_dump_json())
