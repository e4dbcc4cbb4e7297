"""Suggested risk flags: conservative patterns over what was actually said, with negation handling.

A flag is only ever a suggestion backed by the sentence that raised it; a person confirms it. The
patterns are narrow on purpose (an independent study of a commercial note-taker found invented
risk statements in its summaries); a negated statement ("I'm not going to hurt myself", "he never
hits the kids") raises nothing, unless the speaker hedges ("I'm not sure I won't hurt myself").
A question by the worker ("have you thought about hurting yourself?") raises nothing either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["RISK_LABELS", "RiskCategory", "RiskMatch", "denies", "find_risks"]


class RiskCategory(StrEnum):
    """The kinds of risk a note may flag."""

    HARM_TO_CHILD = "harm_to_child"
    HARM_TO_ADULT = "harm_to_adult"
    SELF_HARM = "self_harm"
    VIOLENCE_AT_HOME = "violence_at_home"
    EVICTION_OR_HOMELESSNESS = "eviction_or_homelessness"
    NO_FOOD = "no_food"
    MEDICAL_EMERGENCY = "medical_emergency"
    SUBSTANCE_USE = "substance_use"


RISK_LABELS: dict[RiskCategory, str] = {
    RiskCategory.HARM_TO_CHILD: "Harm to a child",
    RiskCategory.HARM_TO_ADULT: "Harm to an adult",
    RiskCategory.SELF_HARM: "Self-harm",
    RiskCategory.VIOLENCE_AT_HOME: "Violence at home",
    RiskCategory.EVICTION_OR_HOMELESSNESS: "Eviction or homelessness",
    RiskCategory.NO_FOOD: "No food",
    RiskCategory.MEDICAL_EMERGENCY: "Medical emergency",
    RiskCategory.SUBSTANCE_USE: "Substance use",
}


@dataclass(frozen=True, slots=True)
class RiskMatch:
    """A risk `category` raised by the words `start`..`end` of a sentence."""

    category: RiskCategory
    start: int
    end: int
    trigger: str


@dataclass(frozen=True, slots=True)
class _Pattern:
    category: RiskCategory
    regex: re.Pattern[str]
    # False when the negation is the risk itself ("nothing to eat", "can't breathe").
    negatable: bool = True


_CHILD = r"(?:kids?|child|children|baby|babies|son|daughter|boy|girl|toddler|little one)s?"
_FAMILY = r"(?:husband|wife|partner|boyfriend|girlfriend|ex|ex[- ]husband|ex[- ]wife|spouse|fianc[eé]e?)"
_ADULT = (
    r"(?:mother|mom|mum|father|dad|grandmother|grandma|grandfather|grandpa|sister|brother|neighbou?r|aunt"
    r"|uncle)"
)
_VIOLENT = (
    r"(?:hit|hits|hitting|beat|beats|beating|beaten|kick|kicks|kicked|kicking|punch|punches|punched|punching"
    r"|slap|slaps|slapped|slapping|choke|chokes|choked|choking|strangle[sd]?|strangling|shove[sd]?|shoving"
    r"|push|pushes|pushed|pushing|hurt|hurts|hurting|attack|attacks|attacked|threaten|threatens|threatened"
    r"|threatening|shook|shake|shakes|shaking|burn|burns|burned|burnt|abuse[sd]?|abusing|grab|grabs|grabbed)"
)


def _p(category: RiskCategory, pattern: str, negatable: bool = True) -> _Pattern:
    return _Pattern(category, re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE), negatable)


_PATTERNS: tuple[_Pattern, ...] = (
    # Self-harm
    _p(
        RiskCategory.SELF_HARM,
        r"(?:hurt|hurting|harm|harming|kill|killing|cut|cutting|cuts|end|ending)\s+myself"
        r"|suicid\w*|take\s+my\s+(?:own\s+)?life|end\s+(?:it\s+all|my\s+life)"
        r"|(?:want|wanted|wanting|wish)\s+(?:to\s+die|i\s+(?:was|were)\s+dead|to\s+be\s+dead)"
        r"|better\s+off\s+(?:dead|without\s+me)",
    ),
    _p(
        RiskCategory.SELF_HARM,
        r"(?:do\s+not|don't|dont)\s+want\s+to\s+(?:live|be\s+alive|be\s+here)(?:\s+anymore)?"
        r"|no\s+(?:reason|point)\s+(?:to|in)\s+(?:live|living|going\s+on)|(?:can't|cannot)\s+go\s+on",
        negatable=False,
    ),
    # Harm to a child
    _p(
        RiskCategory.HARM_TO_CHILD,
        rf"{_VIOLENT}\s+(?:the|my|our|his|her|their|your)\s+{_CHILD}"
        rf"|{_VIOLENT}\s+(?:him|her|them)\s+(?:when|if)\s+(?:he|she|they)\s+(?:cries|cry|cried)"
        rf"|bruis\w+\s+on\s+(?:the|my|our|his|her|their)\s+{_CHILD}"
        rf"|(?:left|leave|leaves|leaving)\s+(?:the|my|our|his|her|their)\s+{_CHILD}\s+"
        r"(?:alone|home\s+alone|on\s+(?:their|his|her)\s+own|by\s+(?:themselves|himself|herself))"
        rf"|(?:touched|touches|touching)\s+(?:the|my|our|his|her|their)\s+{_CHILD}",
    ),
    # Violence at home
    _p(
        RiskCategory.VIOLENCE_AT_HOME,
        rf"(?:my|her|his)\s+{_FAMILY}\s+(?:\w+\s+)?{_VIOLENT}"
        rf"|(?:he|she)\s+(?:\w+\s+)?{_VIOLENT}\s+me|{_VIOLENT}\s+me\s+(?:at\s+home|again)"
        r"|domestic\s+(?:violence|abuse)|restraining\s+order|protection\s+order"
        rf"|(?:afraid|scared|frightened)\s+(?:of|to\s+go\s+home|to\s+go\s+back)(?:\s+(?:my|to\s+my)\s+{_FAMILY})?"
        r"|(?:throws|threw|throwing)\s+things\s+at\s+me",
    ),
    # Harm to an adult other than the speaker's partner: relatives, neighbours, money taken.
    _p(
        RiskCategory.HARM_TO_ADULT,
        rf"{_VIOLENT}\s+(?:my|his|her|our|the)\s+{_ADULT}"
        r"|(?:takes|took|taking|steals|stole|stealing)\s+(?:my|her|his)\s+(?:money|pension|benefits|bank\s+card)"
        r"|(?:assaulted|mugged|robbed|raped|attacked)"
        r"|afraid\s+for\s+(?:my|her|his)\s+(?:life|safety)",
    ),
    # Eviction or homelessness
    _p(
        RiskCategory.EVICTION_OR_HOMELESSNESS,
        r"evict\w*|homeless\w*|sleeping\s+(?:rough|in\s+(?:my|the|our|a)\s+car|on\s+the\s+streets?)"
        r"|(?:kicked|thrown|put)\s+(?:us|me|them)\s+out|(?:kicking|throwing)\s+(?:us|me|them)\s+out"
        r"|(?:lose|losing|lost)\s+(?:the|my|our)\s+(?:home|house|flat|apartment|place)"
        r"|behind\s+(?:on|with)\s+(?:the|my|our)\s+rent|(?:notice\s+to\s+(?:quit|vacate))"
        r"|(?:living|staying|sleeping)\s+in\s+(?:a|the)\s+shelter",
    ),
    _p(
        RiskCategory.EVICTION_OR_HOMELESSNESS,
        r"nowhere\s+(?:else\s+)?to\s+(?:live|stay|go|sleep)"
        r"|(?:can't|cannot|couldn't|can\s+not)\s+(?:pay|afford)\s+(?:the|my|our)\s+rent",
        negatable=False,
    ),
    # No food
    _p(
        RiskCategory.NO_FOOD,
        r"no\s+food|nothing\s+(?:left\s+)?to\s+eat|(?:haven't|have\s+not|hasn't|has\s+not|didn't|did\s+not)\s+eat(?:en)?"
        r"(?:\s+(?:in|for|since|today|yesterday))"
        r"|(?:don't|do\s+not|didn't|did\s+not|can't|cannot|couldn't)\s+(?:have|got|afford)\s+(?:any\s+|enough\s+)?"
        r"(?:food|groceries|to\s+eat)|not\s+enough\s+(?:food|to\s+eat)|ran\s+out\s+of\s+food|run\s+out\s+of\s+food"
        r"|empty\s+fridge|fridge\s+is\s+empty",
        negatable=False,
    ),
    _p(
        RiskCategory.NO_FOOD,
        r"(?:skip|skips|skipping|skipped)\s+meals|(?:go|goes|going|went|gone)\s+(?:to\s+bed\s+)?hungry"
        r"|(?:are|is|was|were|am|been|'m|'re)\s+(?:so\s+|very\s+|always\s+)?(?:starving|hungry)",
    ),
    # Medical emergency
    _p(
        RiskCategory.MEDICAL_EMERGENCY,
        r"chest\s+pains?|unconscious|passed\s+out|collapsed|(?:a|having|had)\s+(?:a\s+)?seizures?"
        r"|heart\s+attack|(?:had|having|has)\s+a\s+stroke|bleeding\s+(?:heavily|a\s+lot|badly|everywhere)"
        r"|overdos\w*|(?:called|call|calling)\s+(?:an\s+)?ambulance|(?:went|go|going|taken)\s+to\s+"
        r"(?:the\s+)?(?:emergency\s+room|A&E)|stopped\s+breathing",
    ),
    _p(
        RiskCategory.MEDICAL_EMERGENCY,
        r"(?:can't|cannot|couldn't|could\s+not|can\s+not)\s+breathe|trouble\s+breathing|won't\s+wake\s+up",
        negatable=False,
    ),
    # Substance use
    _p(
        RiskCategory.SUBSTANCE_USE,
        r"(?:drinking|drinks|drank)\s+(?:too\s+much|a\s+lot|again|every\s+day|heavily|all\s+day)"
        r"|(?:is|was|'s|gets|got|getting|comes\s+home)\s+drunk"
        r"|(?:using|uses|used|doing|does|taking|takes|on|smoking|smokes|shooting|injecting)\s+"
        r"(?:drugs|heroin|meth|crack|cocaine|fentanyl|opioids|pills)"
        r"|relaps\w*|addict\w*|(?:alcohol|drug|drinking)\s+(?:problem|abuse|habit)|high\s+on\s+\w+",
    ),
    _p(RiskCategory.SUBSTANCE_USE, r"(?:can't|cannot)\s+stop\s+(?:drinking|using)", negatable=False),
)

_NEGATION = re.compile(
    r"\b(?:not|never|no|nobody|nothing|neither|nor|cannot|no\s+longer)\b|n't\b|n’t\b", re.IGNORECASE
)
# Hedges undo a negation: when the speaker is not sure, the statement goes to a person.
_HEDGE = re.compile(
    r"\b(?:not\s+sure|(?:don't|do\s+not)\s+know|(?:don't|do\s+not)\s+think|can't\s+promise|might|maybe"
    r"|sometimes)\b",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"[,;:.!?]|\b(?:but|and|because|though|although|so|then)\b", re.IGNORECASE)
_LOOKBACK_WORDS = 6


def _negated(sentence: str, start: int, end: int) -> bool:
    """Whether the match, or the words just before it in the same clause, are negated and unhedged."""
    before = sentence[:start]
    breaks = list(_CLAUSE_BREAK.finditer(before))
    clause = " ".join((before[breaks[-1].end() :] if breaks else before).split()[-_LOOKBACK_WORDS:])
    return bool(_NEGATION.search(f"{clause} {sentence[start:end]}")) and not _HEDGE.search(clause)


def find_risks(sentence: str, role: str) -> list[RiskMatch]:
    """Return the risks one sentence raises, said by `role` ("worker" or "client"); one per category."""
    if role == "worker" and sentence.rstrip().endswith("?"):
        return []
    found: dict[RiskCategory, RiskMatch] = {}
    for pattern in _PATTERNS:
        if pattern.category in found:
            continue
        for m in pattern.regex.finditer(sentence):
            if pattern.negatable and _negated(sentence, m.start(), m.end()):
                continue
            found[pattern.category] = RiskMatch(pattern.category, m.start(), m.end(), m.group())
            break
    return sorted(found.values(), key=lambda r: r.start)


def denies(sentence: str, category: RiskCategory) -> bool:
    """Whether the sentence speaks of this risk only to negate it ("I'm not going to hurt myself")."""
    matches = [(p, m) for p in _PATTERNS if p.category == category for m in p.regex.finditer(sentence)]
    return bool(matches) and all(p.negatable and _negated(sentence, m.start(), m.end()) for p, m in matches)
