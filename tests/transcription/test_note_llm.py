"""The optional LLM drafter against a local server that plays the model: grounded or thrown out."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.transcription.test_note import HOUSING, NEGATED, NEW_YORK, context
from transcription import RiskCategory, draft_note
from transcription.llm import REPLY_SCHEMA, OpenAICompatibleDrafter


@dataclass
class FakeModel:
    """What the endpoint answers: a reply object, raw content, a status, or a delay."""

    reply: dict[str, Any] | None = None
    content: str | None = None
    status: int = 200
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response({"error": {"message": "overloaded"}}, status=self.status)
        content = self.content if self.content is not None else json.dumps(self.reply)
        return web.json_response(
            {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
        )


def good_reply() -> dict[str, Any]:
    return {
        "summary": "The client's landlord plans to evict the family next month. The worker will call the "
        "housing office and they meet again next Tuesday.",
        "client_words": ["But my landlord says we will be evicted next month.", "I am very tired and sad."],
        "action_items": [
            {
                "owner": "worker",
                "what": "Call the housing office about the rent",
                "due": "2026-03-06",
                "quote": "I will call the housing office about your rent this week.",
            },
            {
                "owner": "client",
                "what": "Bring the landlord's letter",
                "due": "2026-03-10T10:00:00-04:00",
                "quote": "please bring the letter with you",
            },
            {"owner": "client", "what": "Invented task", "due": None, "quote": "I will paint the house."},
        ],
        "follow_up": {"start": "2026-03-10T10:00:00-04:00", "quote": "Let us meet again next Tuesday at ten"},
        "risk_flags": [
            {
                "category": "eviction_or_homelessness",
                "quote": "my landlord says we will be evicted next month",
            },
            # Invented: nobody said this.
            {"category": "self_harm", "quote": "I want to end my life."},
        ],
    }


async def serve(aiohttp_server: AiohttpServer, model: FakeModel) -> OpenAICompatibleDrafter:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    server = await aiohttp_server(app)
    return OpenAICompatibleDrafter(str(server.make_url("/v1")), "tiny-test", timeout=0.5)


async def test_a_grounded_reply_is_used(aiohttp_server: AiohttpServer) -> None:
    model = FakeModel(good_reply())
    note = await (await serve(aiohttp_server, model)).draft(context(), HOUSING)
    assert note.drafter == "openai-compatible:tiny-test"
    assert note.generated
    assert note.summary_text is not None and "evict" in note.summary_text
    assert [q.text for q in note.client_words] == ["But my landlord says we will be evicted next month."]
    assert [a.what for a in note.action_items] == [
        "Call the housing office about the rent",
        "Bring the landlord's letter",
    ]
    assert note.action_items[0].due == date(2026, 3, 6)
    assert note.action_items[1].due == datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)
    assert note.action_items[1].quote.text == "please bring the letter with you"
    assert note.follow_up is not None
    assert note.follow_up.start == datetime(2026, 3, 10, 10, 0, tzinfo=NEW_YORK)
    # The invented self-harm flag is gone; the real one is kept once, with its moment.
    [flag] = note.risk_flags
    assert flag.category is RiskCategory.EVICTION_OR_HOMELESSNESS
    assert flag.status == "suggested"
    assert flag.quote.start == draft_note(context(), HOUSING).risk_flags[0].quote.start
    # The request: the model, temperature 0, a strict JSON schema, the transcript with times.
    [request] = model.requests
    assert request["model"] == "tiny-test"
    assert request["temperature"] == 0
    schema = request["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"] == REPLY_SCHEMA
    assert "evicted next month" in request["messages"][1]["content"]


async def test_an_invented_risk_is_never_flagged(aiohttp_server: AiohttpServer) -> None:
    reply = good_reply() | {
        "summary": "The client said she has thought about suicide.",
        "risk_flags": [
            {"category": "self_harm", "quote": "I have thought about suicide."},
            # Words that were said, but changed: "not" left out.
            {"category": "self_harm", "quote": "I'm going to hurt myself."},
            {"category": "substance_use", "quote": ""},
            # Verbatim, but cut so the negation is lost: "No, I'm not going to hurt myself."
            {"category": "self_harm", "quote": "hurt myself"},
        ],
        "client_words": ["I have thought about suicide."],
    }
    note = await (await serve(aiohttp_server, FakeModel(reply))).draft(context(), NEGATED)
    assert note.risk_flags == ()
    # A summary naming a risk that no quote supports is dropped; the extractive one stays.
    assert note.summary_text is None
    assert note.summary == draft_note(context(), NEGATED).summary
    assert note.client_words == draft_note(context(), NEGATED).client_words


@pytest.mark.parametrize(
    "model",
    [
        FakeModel(status=500),
        FakeModel(content="not json at all"),
        FakeModel(content=json.dumps({"summary": "missing everything else"})),
        FakeModel(
            content=json.dumps(good_reply() | {"risk_flags": [{"category": "witchcraft", "quote": "x"}]})
        ),
        FakeModel(good_reply(), delay=2.0),
    ],
    ids=["status 500", "not json", "missing fields", "unknown category", "too slow"],
)
async def test_any_failure_falls_back_to_the_deterministic_draft(
    aiohttp_server: AiohttpServer, model: FakeModel
) -> None:
    note = await (await serve(aiohttp_server, model)).draft(context(), HOUSING)
    assert note == draft_note(context(), HOUSING)
    assert len(model.requests) == 1


async def test_an_unreachable_endpoint_falls_back() -> None:
    drafter = OpenAICompatibleDrafter("http://127.0.0.1:9/v1/chat/completions", timeout=0.5)
    assert await drafter.draft(context(), HOUSING) == draft_note(context(), HOUSING)


async def test_nothing_is_sent_without_consent_or_speech(aiohttp_server: AiohttpServer) -> None:
    model = FakeModel(good_reply())
    drafter = await serve(aiohttp_server, model)
    assert await drafter.draft(context(consent=False), HOUSING) == draft_note(context(consent=False), HOUSING)
    assert await drafter.draft(context(), []) == draft_note(context(), [])
    assert model.requests == []


async def test_a_partial_quote_is_widened_to_its_sentence(aiohttp_server: AiohttpServer) -> None:
    reply = good_reply() | {"risk_flags": [{"category": "eviction_or_homelessness", "quote": "evicted"}]}
    note = await (await serve(aiohttp_server, FakeModel(reply))).draft(context(), HOUSING)
    [flag] = note.risk_flags
    assert flag.quote.text == "But my landlord says we will be evicted next month."
