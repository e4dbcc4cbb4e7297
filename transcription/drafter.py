"""The default drafter: deterministic and offline.

It merges the per-speaker segments into one timeline, splits them into sentences and picks from
them, so every summary line, quote, action and flag is a sentence that was said, linked to its
speaker and moment. :mod:`transcription.llm` offers an optional drafter behind an
OpenAI-compatible endpoint that falls back to this one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime

from transcription.dates import When, find_whens
from transcription.note import (
    DRAFTER_NAME,
    ActionItem,
    DraftNote,
    FollowUp,
    NoteHeader,
    Quote,
    RiskFlag,
    VisitContext,
)
from transcription.results import Segment
from transcription.risk import find_risks

__all__ = ["DeterministicDrafter", "draft_note", "role_of", "sentences", "timeline", "utterances"]


# --- timeline and sentences ----------------------------------------------------------------------


def role_of(speaker: str) -> str:
    """Return "worker" or "client" from a speaker label such as "worker:12"."""
    return speaker.split(":", 1)[0]


def timeline(segments: Iterable[Segment]) -> list[Segment]:
    """Return the segments of all speakers in one timeline, by start time, empty ones dropped."""
    return sorted((s for s in segments if s.text.strip()), key=lambda s: (s.start, s.end, s.speaker))


# Whisper cuts where the audio pauses, not where sentences end: a segment that stops mid-sentence
# is continued by the same speaker's next segment if it follows within this many seconds.
CONTINUATION_GAP = 3.0
_ENDS_SENTENCE = re.compile(r"[.!?…][\"')\]]*\s*$")


def utterances(segments: Iterable[Segment]) -> list[Segment]:
    """Return the timeline with each speaker's mid-sentence cuts joined (texts joined by one space)."""
    joined: list[Segment] = []
    open_run: dict[str, int] = {}
    for segment in timeline(segments):
        at = open_run.get(segment.speaker)
        if at is not None and segment.start - joined[at].end <= CONTINUATION_GAP:
            head = joined[at]
            joined[at] = Segment(
                head.speaker,
                head.start,
                max(head.end, segment.end),
                f"{head.text.strip()} {segment.text.strip()}",
                head.words + segment.words,
            )
        else:
            joined.append(replace(segment, text=segment.text.strip()))
            at = len(joined) - 1
        if _ENDS_SENTENCE.search(joined[at].text):
            open_run.pop(segment.speaker, None)
        else:
            open_run[segment.speaker] = at
    return joined


# A sentence ends at . ! ? followed by a space, except after a few common abbreviations.
_SENTENCE_END = re.compile(r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<=[.!?])\s+")


def _word_times(segment: Segment) -> list[tuple[int, float, float]]:
    """Return (character offset in the text, start, end) for each word that can be placed."""
    placed: list[tuple[int, float, float]] = []
    cursor = 0
    for word in segment.words:
        token = word.text.strip()
        at = segment.text.find(token, cursor) if token else -1
        if at >= 0:
            placed.append((at, word.start, word.end))
            cursor = at + len(token)
    return placed


def sentences(segment: Segment, context: VisitContext) -> list[Quote]:
    """Split a segment into sentences, each verbatim, timed by its words when word timings exist."""
    text = segment.text
    words = _word_times(segment)
    role = role_of(segment.speaker)
    quotes: list[Quote] = []
    begin = 0
    for cut in [*(m.start() for m in _SENTENCE_END.finditer(text)), len(text)]:
        raw = text[begin:cut]
        lead = len(raw) - len(raw.lstrip())
        body = raw.strip()
        first, last = begin + lead, begin + lead + len(body)
        begin = cut
        if not body:
            continue
        inside = [(s, e) for at, s, e in words if first <= at < last]
        start = inside[0][0] if inside else segment.start
        end = inside[-1][1] if inside else segment.end
        quotes.append(Quote(segment.speaker, role, context.name_of(role), start, end, body))
    return quotes


# --- scoring for the summary and the client's own words ------------------------------------------

_TOPICS = re.compile(
    r"\b(?:need|needs|needed|benefit\w*|allowance|universal credit|snap|food|stamps|rent|landlord|housing"
    r"|evict\w*|home|flat|apartment|money|income|debt|bills?|pay|paid|job|work|school|children|child|kids?|baby|son"
    r"|daughter|health|doctor|hospital|medication|medicine|sick|ill|pain|tired|stress\w*|worried|afraid"
    r"|scared|safe|safety|form|forms|application|appointment|letter|office|renewal|renew|support|help"
    r"|deadline|court|council|worker|care|carer|childcare|disability|insurance|medicaid|medicare)\b",
    re.IGNORECASE,
)
_PLEASANTRY = re.compile(
    r"^(?:(?:good\s+(?:morning|afternoon|evening)|hello|hi|hey|thanks?|thank\s+you|bye|goodbye|okay|ok|yes"
    r"|yeah|no|sure|right|great|alright|all\s+right|see\s+you)\b[\s,.!]*)+",
    re.IGNORECASE,
)


def _words_in(text: str) -> int:
    return len(text.split())


def _informative(text: str) -> float:
    """Score how much a sentence says: topic words, a useful length, not just a pleasantry."""
    words = _words_in(text)
    if words < 4:
        return 0.0
    rest = _PLEASANTRY.sub("", text)
    if _words_in(rest) < 5:
        return 0.0
    topics = len(_TOPICS.findall(text))
    length = min(words, 25) / 25 - max(0, words - 40) / 40
    return topics * 1.0 + length + (0.5 if "?" not in text else -0.5)


def _pick(candidates: Sequence[Quote], count: int, bonus: dict[int, float] | None = None) -> list[Quote]:
    """Pick the `count` best sentences, earlier ones first on ties, and return them in time order."""
    scored = []
    for i, quote in enumerate(candidates):
        score = _informative(quote.text)
        if score <= 0:
            continue
        score += (bonus or {}).get(i, 0.0) + 0.3 * (1 - i / max(1, len(candidates)))
        scored.append((-score, i, quote))
    best = sorted(scored)[:count]
    return [q for _, _, q in sorted(best, key=lambda x: x[1])]


# --- actions and follow-up -----------------------------------------------------------------------

_SELF_COMMITMENT = re.compile(
    r"\b(?:i\s+will|i'll|i\s+am\s+going\s+to|i'm\s+going\s+to|i'm\s+gonna|i\s+can|i\s+shall|let\s+me"
    r"|i\s+promise\s+to|i\s+need\s+to|i\s+have\s+to|i've\s+got\s+to|we\s+will|we'll)\s+(?:also\s+|then\s+)?",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"\b(?:can\s+you|could\s+you|would\s+you|will\s+you|please|make\s+sure\s+(?:you|to)|you\s+need\s+to"
    r"|you'll\s+need\s+to|you\s+should|you\s+have\s+to|don't\s+forget\s+to|remember\s+to|try\s+to)\s+"
    r"(?:also\s+|please\s+)?",
    re.IGNORECASE,
)
# Verbs after "I will" / "can you" that are conversation, not a task.
_NOT_A_TASK = re.compile(
    r"(?:be|see|meet|talk\s+to\s+you|speak\s+to\s+you|tell\s+me|hear|say|explain|describe|understand|imagine"
    r"|hold|wait|ask\s+you|do\s+that|try|go\s+on|have|get\s+you\s+anything|think|repeat)\b",
    re.IGNORECASE,
)
_MEETING = re.compile(
    r"\b(?:meet|meeting|see\s+you|visit|appointment|come\s+back|come\s+again|catch\s+up|check\s+in"
    r"|talk\s+again|speak\s+again|next\s+time)\b",
    re.IGNORECASE,
)
_NEXT_MEETING_REF = re.compile(
    r"\b(?:(?:our|the)\s+next\s+(?:meeting|visit|appointment|session)|next\s+time)\b", re.IGNORECASE
)
_TRAILING = re.compile(r"[\s,;:.!?]+$|^\s*(?:and|then|also)\s+|[\s,;]+(?:and|or|but|then|so)$", re.IGNORECASE)
_DATE_PREPOSITION = re.compile(r"\s*\b(?:by|on|at|before|until|till|for|around|in)\s*$", re.IGNORECASE)
# A task ends where the sentence turns to a consequence or a reason.
_CLAUSE_END = re.compile(r",?\s+(?:or|or\s+else|otherwise|because|so\s+that)\s+", re.IGNORECASE)


def _clean_what(text: str, whens: Sequence[When], offset: int) -> str:
    """Return the task's words without its date phrases (and their "by", "on"), punctuation and joiners."""
    pieces = []
    cursor = 0
    for w in whens:
        a, b = w.start - offset, w.end - offset
        if a >= 0 and b <= len(text):
            lead = _DATE_PREPOSITION.search(text[cursor:a])
            pieces.append(text[cursor : cursor + lead.start()] if lead else text[cursor:a])
            cursor = b
    pieces.append(text[cursor:])
    what = " ".join("".join(pieces).split())
    what = _CLAUSE_END.split(what, maxsplit=1)[0]
    previous = None
    while previous != what:
        previous, what = what, _TRAILING.sub("", what).strip()
    return what


def _future(value: date | datetime, context: VisitContext) -> bool:
    if isinstance(value, datetime):
        return value > context.visit_start
    return value >= context.visit_start.astimezone(context.zone).date()


def _first_future(whens: Sequence[When], context: VisitContext) -> When | None:
    return next((w for w in whens if _future(w.value, context)), None)


def _follow_up(quotes: Sequence[Quote], context: VisitContext) -> FollowUp | None:
    """Return the first future date or time mentioned in a sentence about meeting again."""
    found: list[FollowUp] = []
    for quote in quotes:
        if _MEETING.search(quote.text):
            when = _first_future(find_whens(quote.text, context.visit_start, context.zone), context)
            if when is not None:
                found.append(FollowUp(when.value, when.text, quote))
    # The first mention wins: a later "see you on Tuesday" usually only confirms it.
    return found[0] if found else None


def _actions(quotes: Sequence[Quote], context: VisitContext, follow_up: FollowUp | None) -> list[ActionItem]:
    items: list[ActionItem] = []
    for quote in quotes:
        text = quote.text
        whens = find_whens(text, context.visit_start, context.zone)
        triggers: list[tuple[int, int, str]] = []
        for m in _SELF_COMMITMENT.finditer(text):
            triggers.append((m.start(), m.end(), quote.role))
        for m in _REQUEST.finditer(text):
            other = "client" if quote.role == "worker" else "worker"
            triggers.append((m.start(), m.end(), other))
        triggers.sort()
        # A trigger inside another's task ("please" in "can you please") is the same task.
        merged: list[tuple[int, int, str]] = []
        for t in triggers:
            if merged and t[0] < merged[-1][1]:
                continue
            merged.append(t)
        for i, (_, task_start, owner) in enumerate(merged):
            task_end = merged[i + 1][0] if i + 1 < len(merged) else len(text)
            task = text[task_start:task_end]
            if not task.strip() or _NOT_A_TASK.match(task):
                continue
            if owner == quote.role and _MEETING.match(task):
                continue
            inside = [w for w in whens if task_start <= w.start < task_end]
            # A date said before any task ("next Tuesday at ten, and please bring...") is shared.
            preamble = [w for w in whens if w.end <= merged[0][0]]
            due_when = _first_future(inside, context) or _first_future(preamble, context)
            due: date | datetime | None = due_when.value if due_when else None
            due_text = due_when.text if due_when else None
            next_meeting = _NEXT_MEETING_REF.search(task)
            if due is None and follow_up is not None and next_meeting is not None:
                due, due_text = follow_up.start, next_meeting.group()
            what = _clean_what(task, inside, task_start)
            if len(what.split()) < 2:
                continue
            items.append(ActionItem(owner, context.name_of(owner), what, due, due_text, quote))
    return items


# --- the drafter ---------------------------------------------------------------------------------


def _header(context: VisitContext) -> NoteHeader:
    local = context.visit_start.astimezone(context.zone)
    present = context.present or (context.worker_name, context.client_name)
    if not context.consent:
        recording = "Not recorded: the client did not consent to recording, so there is no transcript."
    else:
        recording = "Recorded and transcribed with the client's consent."
    return NoteHeader(
        date=local.date(),
        local_time=local.strftime("%H:%M"),
        timezone=context.timezone,
        start=local,
        duration_seconds=max(0, round(context.duration.total_seconds())),
        present=tuple(present),
        contact_type=context.contact_type,
        consent=context.consent,
        recording=recording,
    )


def draft_note(context: VisitContext, segments: Sequence[Segment]) -> DraftNote:
    """Draft a note from the visit's per-speaker segments, deterministically and offline."""
    header = _header(context)
    if not context.consent:
        # Without consent nothing said is used, even if segments were passed by mistake.
        return DraftNote(
            header, (), (), (), None, (), (), remarks=("No transcript: the visit was not recorded.",)
        )
    quotes = [q for segment in utterances(segments) for q in sentences(segment, context)]
    if not quotes:
        return DraftNote(
            header, (), (), (), None, (), (), remarks=("No speech was transcribed during this visit.",)
        )
    follow_up = _follow_up(quotes, context)
    actions = _actions(quotes, context, follow_up)
    flags = [
        RiskFlag(match.category, match.trigger, quote)
        for quote in quotes
        for match in find_risks(quote.text, quote.role)
    ]
    # Sentences that raised a flag or an action are what a supervisor looks for first.
    client = [q for q in quotes if q.role == "client"]
    worker = [q for q in quotes if q.role == "worker"]
    flagged = {id(f.quote) for f in flags}
    acted = {id(a.quote) for a in actions}
    client_bonus = {i: 1.0 for i, q in enumerate(client) if id(q) in flagged}
    worker_bonus = {i: 0.5 for i, q in enumerate(worker) if id(q) in acted}
    summary = sorted(
        [*_pick(client, 2, client_bonus), *_pick(worker, 2, worker_bonus)], key=lambda q: (q.start, q.end)
    )
    client_words = _pick(client, 5, client_bonus)
    transcript = tuple(
        Quote(
            s.speaker, role_of(s.speaker), context.name_of(role_of(s.speaker)), s.start, s.end, s.text.strip()
        )
        for s in timeline(segments)
    )
    return DraftNote(
        header=header,
        summary=tuple(summary),
        client_words=tuple(client_words),
        action_items=tuple(actions),
        follow_up=follow_up,
        risk_flags=tuple(flags),
        transcript=transcript,
    )


class DeterministicDrafter:
    """The default drafter: extractive, offline, the same note for the same transcript."""

    name = DRAFTER_NAME

    async def draft(self, context: VisitContext, segments: Sequence[Segment]) -> DraftNote:
        return draft_note(context, segments)
