"""Dates and times as people say them ("next Tuesday at ten", "by the 15th"), resolved in a zone.

Everything is resolved against the visit's start in the worker's zone. A phrase with a time of day
becomes an aware datetime in that zone (wall-clock time, so "at ten" is 10:00 local on either side
of a DST change); a phrase without one becomes a date.

Conventions, chosen because a person reviews every resolved date next to its quote:
- "next Tuesday" is the Tuesday of the following Monday-to-Sunday week (1 to 13 days ahead);
  "Tuesday", "on Tuesday", "this Tuesday" the nearest Tuesday after today (1 to 7 days ahead).
- "this week" and "end of the week" are this week's Friday; "next week" is seven days ahead.
- "the 15th" is the next 15th on or after today; "March 3rd" the next March 3rd on or after today.
- A bare hour from 1 to 6 is in the afternoon ("at two" is 14:00), from 7 to 12 in the morning/noon.
- A time with no date is today if still ahead of the visit's start, else tomorrow.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["When", "find_whens", "resolve_when"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    *("january", "february", "march", "april", "may", "june", "july"),
    *("august", "september", "october", "november", "december"),
)
_MONTH_ABBREVIATIONS = {m[:3]: i for i, m in enumerate(MONTHS, 1)} | {"sept": 9}

_UNITS = (
    *("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"),
    "nineteen",
)
_CARDINALS: dict[str, int] = {w: i for i, w in enumerate(_UNITS, 1)} | {"twenty": 20, "thirty": 30}
for _n in range(1, 10):
    _CARDINALS[f"twenty {_UNITS[_n - 1]}"] = 20 + _n
_CARDINALS |= {"a": 1, "an": 1, "a couple of": 2, "couple of": 2, "a couple": 2}

_ORDINAL_UNITS = (
    *("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"),
    *("eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth"),
    *("eighteenth", "nineteenth"),
)
_ORDINALS: dict[str, int] = {w: i for i, w in enumerate(_ORDINAL_UNITS, 1)}
_ORDINALS |= {"twentieth": 20, "thirtieth": 30, "thirty first": 31}
for _n in range(1, 10):
    _ORDINALS[f"twenty {_ORDINAL_UNITS[_n - 1]}"] = 20 + _n


def _alternation(words: Iterable[str]) -> str:
    # Longest first, so "twenty first" wins over "twenty"; spaces also match hyphens.
    ordered = sorted(words, key=len, reverse=True)
    return "|".join(re.escape(w).replace(r"\ ", r"[\s-]+") for w in ordered)


_WD = rf"(?P<wd>{_alternation(WEEKDAYS)})"
_MONTH = rf"(?P<month>{_alternation(MONTHS)}|(?:{_alternation(_MONTH_ABBREVIATIONS)})\.?)"
_NUM = rf"(?P<num>\d{{1,3}}|{_alternation(_CARDINALS)})"
_ORD_WORD = _alternation(_ORDINALS)
_ORD_DIGITS = r"\d{1,2}(?:st|nd|rd|th)"
_HOUR_WORDS = _alternation(_UNITS[:12])
_MERIDIEM = (
    r"a\.?m\.?|p\.?m\.?|o'?clock|in\s+the\s+morning|in\s+the\s+afternoon|in\s+the\s+evening|at\s+night"
)


@dataclass(frozen=True, slots=True)
class When:
    """A date or time mentioned at `start`..`end` of a text, resolved."""

    text: str
    start: int
    end: int
    value: date | datetime

    @property
    def has_time(self) -> bool:
        return isinstance(self.value, datetime)


@dataclass(frozen=True, slots=True)
class _Mention:
    start: int
    end: int
    day: date | None
    clock: time | None


def _words(value: str) -> str:
    return re.sub(r"[\s-]+", " ", value.lower()).strip()


def _number(value: str) -> int:
    return int(value) if value.isdigit() else _CARDINALS[_words(value)]


def _ordinal(value: str) -> int:
    value = _words(value)
    return int(value[:-2]) if value[:1].isdigit() else _ORDINALS[value]


def _month(value: str) -> int:
    value = value.lower().rstrip(".")
    return MONTHS.index(value) + 1 if value in MONTHS else _MONTH_ABBREVIATIONS[value]


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def next_weekday(today: date, weekday: int) -> date:
    """Return the `weekday` (0 is Monday) of the week after `today`'s: 1 to 13 days ahead."""
    return today - timedelta(days=today.weekday()) + timedelta(days=7 + weekday)


def coming_weekday(today: date, weekday: int) -> date:
    """Return the nearest `weekday` (0 is Monday) after `today`: 1 to 7 days ahead."""
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _day_of_month(today: date, day: int, month: int | None = None) -> date | None:
    """Return the next date on or after `today` with this day (and month); None if there is none."""
    if not 1 <= day <= 31 or (month is not None and day > calendar.monthrange(2024, month)[1]):
        return None
    for offset in range(0, 60):
        year_month = _add_months(today.replace(day=1), offset)
        if month is not None and year_month.month != month:
            continue
        if day <= calendar.monthrange(year_month.year, year_month.month)[1]:
            candidate = year_month.replace(day=day)
            if candidate >= today:
                return candidate
    return None


_DateRule = tuple[re.Pattern[str], Callable[[re.Match[str], date], date | None]]


def _rule(pattern: str, resolve: Callable[[re.Match[str], date], date | None]) -> _DateRule:
    return re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE), resolve


def _weekday(m: re.Match[str]) -> int:
    return WEEKDAYS.index(m["wd"].lower())


def _friday(today: date, weeks: int = 0) -> date:
    return max(today, today + timedelta(days=4 - today.weekday() + 7 * weeks))


def _in(m: re.Match[str], today: date) -> date:
    n, unit = _number(m["num"]), m["unit"].lower()
    if unit.startswith("month"):
        return _add_months(today, n)
    return today + timedelta(days=n * (7 if unit.startswith("week") else 1))


_DATE_RULES: tuple[_DateRule, ...] = (
    _rule(r"(?:the\s+)?day\s+after\s+tomorrow", lambda m, t: t + timedelta(days=2)),
    _rule(r"tomorrow", lambda m, t: t + timedelta(days=1)),
    _rule(r"today|tonight|this\s+(?:morning|afternoon|evening)", lambda m, t: t),
    _rule(rf"next\s+{_WD}", lambda m, t: next_weekday(t, _weekday(m))),
    _rule(rf"{_WD}\s+(?:of\s+)?next\s+week", lambda m, t: next_weekday(t, _weekday(m))),
    _rule(rf"last\s+{_WD}", lambda m, t: t - timedelta(days=(t.weekday() - _weekday(m) - 1) % 7 + 1)),
    _rule(rf"(?:this\s+(?:coming\s+)?|coming\s+)?{_WD}(?!s)", lambda m, t: coming_weekday(t, _weekday(m))),
    _rule(rf"in\s+{_NUM}\s+(?P<unit>days?|weeks?|months?)(?:'?s?\s+time)?", _in),
    _rule(rf"{_NUM}\s+(?P<unit>days?|weeks?|months?)\s+from\s+(?:now|today)", _in),
    _rule(r"(?:the\s+)?end\s+of\s+next\s+week", lambda m, t: _friday(t, 1)),
    _rule(r"(?:the\s+)?end\s+of\s+(?:the|this)\s+week|this\s+week", lambda m, t: _friday(t)),
    _rule(r"next\s+week", lambda m, t: t + timedelta(days=7)),
    _rule(r"(?:the\s+)?end\s+of\s+next\s+month", lambda m, t: _month_end(_add_months(t.replace(day=1), 1))),
    _rule(r"(?:the\s+)?end\s+of\s+(?:the|this)\s+month|month'?s\s+end", lambda m, t: _month_end(t)),
    _rule(
        rf"(?:the\s+)?(?P<ord>{_ORD_DIGITS}|{_ORD_WORD})\s+(?:of\s+)?{_MONTH}",
        lambda m, t: _day_of_month(t, _ordinal(m["ord"]), _month(m["month"])),
    ),
    _rule(
        rf"{_MONTH}\s+(?:the\s+)?(?P<ord>{_ORD_DIGITS}|{_ORD_WORD}|\d{{1,2}}(?!\d|:))",
        lambda m, t: _day_of_month(t, _ordinal_or_number(m["ord"]), _month(m["month"])),
    ),
    _rule(rf"the\s+(?P<ord>{_ORD_DIGITS})", lambda m, t: _day_of_month(t, _ordinal(m["ord"]))),
    # A spelled-out ordinal alone ("the first thing") is only a date after a word that asks for one.
    _rule(
        rf"(?:on|by|before|until|till|from|for|after)\s+the\s+(?P<ord>{_ORD_WORD})",
        lambda m, t: _day_of_month(t, _ordinal(m["ord"])),
    ),
)


def _ordinal_or_number(value: str) -> int:
    return int(value) if value.isdigit() else _ordinal(value)


_NOT_A_TIME = (
    r"(?!\s*(?:point|time|times|of|stage|least|once|all|years?|months?|weeks?|days?|hours?|minutes?"
    r"|percent|dollars?|pounds?|hundred|thousand|or|kids?|children|people|more)\b)"
)
_TIME_RULES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(?:at\s+|around\s+|about\s+)?(?P<noon>noon|midday)\b",
        r"\b(?:at\s+|around\s+|about\s+)?(?P<q>half|quarter)\s+(?P<dir>past|to|after)\s+"
        rf"(?P<hour>\d{{1,2}}|{_HOUR_WORDS})\b(?:\s*(?P<mer>{_MERIDIEM}))?",
        rf"\b(?:at\s+|around\s+|about\s+)?(?P<hour>\d{{1,2}})(?::(?P<min>\d{{2}}))?\s*(?P<mer>{_MERIDIEM})",
        rf"\b(?:at\s+|around\s+|about\s+)?(?P<hour>{_HOUR_WORDS})\s+(?P<mer>{_MERIDIEM})",
        rf"\bat\s+(?P<hour>\d{{1,2}})(?::(?P<min>\d{{2}}))?\b(?!:){_NOT_A_TIME}",
        rf"\bat\s+(?P<hour>{_HOUR_WORDS})(?:[\s-]+(?P<minw>fifteen|thirty|forty[\s-]+five|o'?clock))?\b"
        + _NOT_A_TIME,
    )
)


def _clock(m: re.Match[str]) -> time | None:
    groups = m.groupdict()
    if groups.get("noon"):
        return time(12, 0)
    raw = groups["hour"]
    hour = int(raw) if raw.isdigit() else _CARDINALS[raw.lower()]
    minute = 0
    if groups.get("min"):
        minute = int(groups["min"])
    elif groups.get("minw") and not groups["minw"].lower().startswith("o"):
        minute = {"fifteen": 15, "thirty": 30}.get(_words(groups["minw"]), 45)
    mer = _words(groups.get("mer") or "").replace(".", "")
    if groups.get("q"):
        delta = 30 if groups["q"].lower() == "half" else 15
        minute = delta if groups["dir"].lower() != "to" else 60 - delta
        hour = hour - 1 if groups["dir"].lower() == "to" else hour
    if hour > 23 or minute > 59:
        return None
    if mer in ("pm", "in the afternoon", "in the evening", "at night") and hour < 12:
        hour += 12
    elif mer in ("am", "in the morning") and hour == 12:
        hour = 0
    elif mer in ("", "oclock", "o'clock") and 1 <= hour <= 6:
        hour += 12
    if hour > 23:
        return None
    return time(hour, minute)


def _date_mentions(text: str, today: date) -> list[_Mention]:
    found: list[_Mention] = []
    for pattern, resolve in _DATE_RULES:
        for m in pattern.finditer(text):
            day = resolve(m, today)
            if day is not None:
                found.append(_Mention(m.start(), m.end(), day, None))
    return found


def _time_mentions(text: str) -> list[_Mention]:
    found: list[_Mention] = []
    for pattern in _TIME_RULES:
        for m in pattern.finditer(text):
            clock = _clock(m)
            end = m.end()
            # "at 2 pm." at the end of a sentence: the full stop is the sentence's.
            if m.group().endswith(".") and not re.match(r"\s*[a-z0-9]", text[end:]):
                end -= 1
            if clock is not None:
                found.append(_Mention(m.start(), end, None, clock))
    return found


def _without_overlaps(mentions: list[_Mention]) -> list[_Mention]:
    # The longest reading wins: "on the third of April" over "on the third".
    kept: list[_Mention] = []
    for mention in sorted(mentions, key=lambda m: (-(m.end - m.start), m.start)):
        if not any(mention.start < k.end and k.start < mention.end for k in kept):
            kept.append(mention)
    return sorted(kept, key=lambda m: m.start)


_JOINER = re.compile(r"^[\s,]*(?:(?:at|around|about|by|on|,)\s*){0,2}$", re.IGNORECASE)


def _localize(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """Return `day` at `clock` in `zone`; a wall time that a DST change skips moves past the gap."""
    local = datetime.combine(day, clock, tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone)


def find_whens(text: str, visit_start: datetime, zone: ZoneInfo) -> list[When]:
    """Return every date or time mentioned in `text`, in order, resolved against `visit_start` in `zone`."""
    if visit_start.tzinfo is None:
        raise ValueError("visit_start must be timezone-aware")
    local_start = visit_start.astimezone(zone)
    today = local_start.date()
    dates = _without_overlaps(_date_mentions(text, today))
    times = [
        t
        for t in _without_overlaps(_time_mentions(text))
        if not any(t.start < d.end and d.start < t.end for d in dates)
    ]
    whens: list[When] = []
    used: set[int] = set()
    for d in dates:
        assert d.day is not None
        match: _Mention | None = None
        for i, t in enumerate(times):
            if i in used:
                continue
            gap = text[d.end : t.start] if t.start >= d.end else text[t.end : d.start]
            if _JOINER.match(gap):
                match = t
                used.add(i)
                break
        if match is None:
            whens.append(When(text[d.start : d.end], d.start, d.end, d.day))
        else:
            assert match.clock is not None
            start, end = min(d.start, match.start), max(d.end, match.end)
            whens.append(When(text[start:end], start, end, _localize(d.day, match.clock, zone)))
    for i, t in enumerate(times):
        if i in used:
            continue
        assert t.clock is not None
        moment = _localize(today, t.clock, zone)
        if moment <= local_start:
            moment = _localize(today + timedelta(days=1), t.clock, zone)
        whens.append(When(text[t.start : t.end], t.start, t.end, moment))
    return sorted(whens, key=lambda w: w.start)


def resolve_when(text: str, visit_start: datetime, zone: ZoneInfo) -> date | datetime | None:
    """Return the first date or time mentioned in `text`, resolved; None if there is none."""
    whens = find_whens(text, visit_start, zone)
    return whens[0].value if whens else None
