"""Suggested risk flags: raised from what was said, never from a negation or the worker's question."""

from __future__ import annotations

import pytest

from transcription.risk import RiskCategory, find_risks

C = RiskCategory


@pytest.mark.parametrize(
    ("sentence", "category"),
    [
        ("Sometimes I think about hurting myself.", C.SELF_HARM),
        ("I don't want to live anymore.", C.SELF_HARM),
        ("I'm not sure I won't hurt myself.", C.SELF_HARM),
        ("Some days I feel they'd be better off without me.", C.SELF_HARM),
        ("He hits the kids when he's angry.", C.HARM_TO_CHILD),
        ("There were bruises on my son's arm.", C.HARM_TO_CHILD),
        ("She leaves the children home alone at night.", C.HARM_TO_CHILD),
        ("My boyfriend pushed me against the wall.", C.VIOLENCE_AT_HOME),
        ("He hits me when he drinks.", C.VIOLENCE_AT_HOME),
        ("I'm afraid to go home.", C.VIOLENCE_AT_HOME),
        ("My nephew takes her pension every month.", C.HARM_TO_ADULT),
        ("Someone hit my neighbour last night.", C.HARM_TO_ADULT),
        ("My landlord says we will be evicted next month.", C.EVICTION_OR_HOMELESSNESS),
        ("We have nowhere to go after Friday.", C.EVICTION_OR_HOMELESSNESS),
        ("We're sleeping in the car.", C.EVICTION_OR_HOMELESSNESS),
        ("We have nothing to eat until Friday.", C.NO_FOOD),
        ("The kids have been going to bed hungry.", C.NO_FOOD),
        ("I can't afford food this week.", C.NO_FOOD),
        ("He had chest pains and passed out.", C.MEDICAL_EMERGENCY),
        ("Sometimes I can't breathe at night.", C.MEDICAL_EMERGENCY),
        ("He's drinking every day again.", C.SUBSTANCE_USE),
        ("She's using heroin again.", C.SUBSTANCE_USE),
    ],
)
def test_raised(sentence: str, category: RiskCategory) -> None:
    found = find_risks(sentence, "client")
    assert category in {m.category for m in found}
    for m in found:
        assert sentence[m.start : m.end] == m.trigger


@pytest.mark.parametrize(
    ("sentence", "role"),
    [
        ("I'm not going to hurt myself.", "client"),
        ("I would never hurt myself, I have my kids.", "client"),
        ("I'm not suicidal.", "client"),
        ("I don't want to die, I just want help.", "client"),
        ("He never hits the kids.", "client"),
        ("He has never hit me.", "client"),
        ("I'm not afraid of him.", "client"),
        ("We are not being evicted anymore.", "client"),
        ("She doesn't use drugs.", "client"),
        ("Have you had any thoughts of hurting yourself?", "worker"),
        ("Has anyone hit the children?", "worker"),
        ("Things have been hard since the baby was born, and I am very tired.", "client"),
        ("I will call the housing office about your rent this week.", "worker"),
        ("They are doing well at school.", "client"),
        ("The food bank opens at nine.", "worker"),
        ("My daughter is drinking more water now.", "client"),
        ("We had a great time at the park.", "client"),
    ],
)
def test_not_raised(sentence: str, role: str) -> None:
    assert find_risks(sentence, role) == []


def test_a_negation_in_another_clause_does_not_hide_the_risk() -> None:
    sentence = "I'm not sleeping, and sometimes I want to hurt myself."
    assert [m.category for m in find_risks(sentence, "client")] == [C.SELF_HARM]


def test_one_sentence_can_raise_several_categories() -> None:
    found = find_risks("He hits me when he's drunk.", "client")
    assert {m.category for m in found} == {C.VIOLENCE_AT_HOME, C.SUBSTANCE_USE}


def test_a_worker_statement_of_what_they_saw_is_raised() -> None:
    assert [m.category for m in find_risks("I saw bruises on the baby's face.", "worker")] == [
        C.HARM_TO_CHILD
    ]
