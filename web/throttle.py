"""A small in-process sliding-window limiter (one process serves a visit's kiosk traffic)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class Throttle:
    """Allow at most `limit` events per key within `window` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Record an attempt for `key`; return False (recording nothing) when over the limit."""
        now = self._clock()
        q = self._events.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        if len(self._events) > 50_000:  # bound memory under a flood of distinct keys
            self._events = {k: v for k, v in self._events.items() if v and v[-1] > now - self.window}
        return True

    def retry_after(self, key: str) -> int:
        """Return whole seconds until `key` may try again."""
        q = self._events.get(key)
        if not q:
            return 0
        return max(1, int(q[0] + self.window - self._clock()) + 1)
