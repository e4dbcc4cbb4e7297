"""An optional drafter behind an OpenAI-compatible chat endpoint, grounded in the transcript.

The model is asked for a JSON object under a strict schema. Its reply is checked, not trusted:
every quote must occur verbatim in what was said (an item whose quote does not is dropped), a risk
flag without such a quote is never kept, and a summary that names a risk no grounded flag supports
is discarded. Any failure (network, timeout, status, malformed reply) falls back to the
deterministic drafter, so a note is always produced.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from transcription.drafter import draft_note, role_of, sentences, utterances
from transcription.note import ActionItem, DraftNote, FollowUp, Quote, RiskFlag, VisitContext
from transcription.results import Segment
from transcription.risk import RiskCategory, denies

__all__ = ["LLM_DRAFTER_VERSION", "OpenAICompatibleDrafter"]

log = logging.getLogger(__name__)

LLM_DRAFTER_VERSION = "1"

_SYSTEM_PROMPT = """\
You draft a social-services visit note from a transcript. Reply with one JSON object matching the schema.
Rules:
- Use only what was said. Every "quote" must be copied exactly, character for character, from one line
  of the transcript (without the time and speaker prefix).
- summary: two to four plain sentences of what the visit was about. Do not mention risks that are not
  in risk_flags.
- client_words: up to five of the client's most substantive sentences, verbatim.
- action_items: who ("worker" or "client") will do what, and the due date if one was said, as an ISO
  8601 date or date-time with offset, resolved against the visit's local date.
- follow_up: the next meeting if one was agreed, with its ISO 8601 start; otherwise null.
- risk_flags: only risks a speaker actually stated, never denied or hypothetical ones. Categories:
  {categories}.
"""


# Words a summary would use for each risk; a summary that uses them needs a grounded flag of that kind.
# Conservative: "she denied suicidal thoughts" also drops the summary (the extractive one remains).
_SUMMARY_TERMS: dict[RiskCategory, re.Pattern[str]] = {
    category: re.compile(rf"\b(?:{terms})", re.IGNORECASE)
    for category, terms in {
        RiskCategory.SELF_HARM: r"suicid|self[- ]?harm"
        r"|(?:hurt|harm|kill|cut)\w*\s+(?:herself|himself|themsel\w+|myself)|end\w*\s+(?:her|his|their|my)\s+life|wants?\s+to\s+die",
        RiskCategory.HARM_TO_CHILD: r"child\s+(?:abuse|neglect|protection)"
        r"|(?:abus|neglect|hit|harm|hurt)\w*\s+(?:the\s+|her\s+|his\s+|their\s+)?(?:child|children|kids?|baby|son|daughter)",
        RiskCategory.VIOLENCE_AT_HOME: r"domestic|(?:violence|abuse)\s+at\s+home|abusive|violent",
        RiskCategory.HARM_TO_ADULT: r"elder\s+abuse|financial\s+abuse|exploit|assault",
        RiskCategory.EVICTION_OR_HOMELESSNESS: r"evict|homeless",
        RiskCategory.NO_FOOD: r"no\s+food|food\s+insecur|hunger|hungry|starv",
        RiskCategory.MEDICAL_EMERGENCY: r"medical\s+emergency|overdos|ambulance|chest\s+pain|seizure",
        RiskCategory.SUBSTANCE_USE: r"substance|alcohol|drug|drinking\s+problem|addict|relaps",
    }.items()
}


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Literal["worker", "client"]
    what: str
    due: str | None
    quote: str


class _FollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str
    quote: str


class _Flag(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: RiskCategory
    quote: str


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary: str
    client_words: list[str]
    action_items: list[_Action]
    follow_up: _FollowUp | None
    risk_flags: list[_Flag]


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Make a JSON schema acceptable to strict structured outputs: every property required, no extras."""
    if schema.get("type") == "object" or "properties" in schema:
        schema["additionalProperties"] = False
        schema["required"] = list(schema.get("properties", {}))
    for value in schema.values():
        if isinstance(value, dict):
            _strict(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _strict(item)
    schema.pop("title", None)
    schema.pop("default", None)
    return schema


REPLY_SCHEMA: dict[str, Any] = _strict(_Reply.model_json_schema())


class OpenAICompatibleDrafter:
    """Drafts with a chat-completions endpoint, falling back to the deterministic drafter on any error."""

    def __init__(
        self,
        url: str,
        model: str = "default",
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.name = f"openai-compatible:{model}"
        self._api_key = api_key
        self._timeout = timeout
        self._session = session

    async def draft(self, context: VisitContext, segments: Sequence[Segment]) -> DraftNote:
        base = draft_note(context, segments)
        if not context.consent or not base.transcript:
            return base
        try:
            reply = await self._ask(context, segments)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError, ValidationError) as e:
            log.warning("LLM drafter failed, using the deterministic draft: %s", e)
            return base
        return self._ground(base, reply, context, segments)

    async def _ask(self, context: VisitContext, segments: Sequence[Segment]) -> _Reply:
        local = context.visit_start.astimezone(context.zone)
        lines = [
            f"[{s.start:.1f}s] {s.speaker.split(':', 1)[0]} ({context.name_of(s.speaker.split(':', 1)[0])}): "
            f"{s.text.strip()}"
            for s in utterances(segments)
        ]
        user = (
            f"Visit start: {local.isoformat()} ({local.strftime('%A')}), time zone {context.timezone}.\n"
            f"Worker: {context.worker_name}. Client: {context.client_name}.\n\n"
            "Transcript:\n" + "\n".join(lines)
        )
        system = _SYSTEM_PROMPT.format(categories=", ".join(c.value for c in RiskCategory))
        body = {
            "model": self.model,
            "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "visit_note", "strict": True, "schema": REPLY_SCHEMA},
            },
        }
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        if self._session is not None:
            data = await self._post(self._session, body, headers)
        else:
            async with aiohttp.ClientSession() as session:
                data = await self._post(session, body, headers)
        content = data["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("the reply's content is not a string")
        return _Reply.model_validate_json(content)

    async def _post(
        self,
        session: aiohttp.ClientSession,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> Any:
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with session.post(self.url, json=body, headers=headers, timeout=timeout) as response:
            response.raise_for_status()
            return await response.json(content_type=None)

    def _ground(
        self, base: DraftNote, reply: _Reply, context: VisitContext, segments: Sequence[Segment]
    ) -> DraftNote:
        said = [q for s in utterances(segments) for q in sentences(s, context)]
        # A quote may run over two sentences of one segment: then it is timed as the segment.
        whole = [
            Quote(s.speaker, role_of(s.speaker), context.name_of(role_of(s.speaker)), s.start, s.end, s.text)
            for s in utterances(segments)
        ]

        def find(text: str) -> Quote | None:
            text = text.strip()
            if not text:
                return None
            for quote in [*said, *whole]:
                if text in quote.text:
                    return replace(quote, text=text)
            return None

        flags = list(base.risk_flags)
        for flag in reply.risk_flags:
            quote = find(flag.quote)
            if quote is None:
                log.warning("LLM risk flag dropped: its quote is not in the transcript")
                continue
            # The flag quotes the whole sentence, so a reviewer sees any "not" the model left out ...
            quote = next((q for q in said if q.speaker == quote.speaker and quote.text in q.text), quote)
            # ... and a sentence that only denies the risk raises nothing.
            if denies(quote.text, flag.category):
                log.warning("LLM risk flag dropped: its sentence denies the risk")
                continue
            if not any(f.category == flag.category and f.quote.start == quote.start for f in flags):
                flags.append(RiskFlag(flag.category, quote.text, quote))
        flags.sort(key=lambda f: (f.quote.start, f.category.value))

        actions = []
        for item in reply.action_items:
            quote = find(item.quote)
            if quote is not None and item.what.strip():
                owner, due = item.owner, _parse_when(item.due, context)
                actions.append(
                    ActionItem(owner, context.name_of(owner), item.what.strip(), due, item.due, quote)
                )

        follow_up = base.follow_up
        if reply.follow_up is not None:
            quote = find(reply.follow_up.quote)
            start = _parse_when(reply.follow_up.start, context)
            if quote is not None and start is not None:
                follow_up = FollowUp(start, reply.follow_up.start, quote)

        client_words = tuple(q for q in map(find, reply.client_words) if q is not None and q.role == "client")
        flagged = {f.category for f in flags}
        summary_text: str | None = reply.summary.strip() or None
        if summary_text is not None:
            unsupported = {c for c, terms in _SUMMARY_TERMS.items() if terms.search(summary_text)} - flagged
            if unsupported:
                log.warning("LLM summary dropped: it names risks no quote supports: %s", sorted(unsupported))
                summary_text = None
        return replace(
            base,
            summary_text=summary_text,
            client_words=client_words or base.client_words,
            action_items=tuple(actions) if reply.action_items else base.action_items,
            follow_up=follow_up,
            risk_flags=tuple(flags),
            drafter=self.name,
            drafter_version=LLM_DRAFTER_VERSION,
        )


def _parse_when(value: str | None, context: VisitContext) -> date | datetime | None:
    """Parse an ISO date or date-time from the model; keep it only if it is within a year after the visit."""
    if not value:
        return None
    try:
        parsed: date | datetime = (
            date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        )
    except ValueError:
        return None
    local = context.visit_start.astimezone(context.zone)
    if isinstance(parsed, datetime):
        zone = context.zone
        parsed = parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)
        day = parsed.date()
    else:
        day = parsed
    return parsed if local.date() <= day <= local.date() + timedelta(days=366) else None
