"""IANA time-zone names known to this machine's tz database."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """Return every IANA zone name zoneinfo can load."""
    return frozenset(available_timezones())


def is_zone(name: str) -> bool:
    """Return whether `name` is a known IANA zone (not a file path, not an abbreviation)."""
    return name in zone_names()
