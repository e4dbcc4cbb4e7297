"""Repeated timing with time.perf_counter, and progress lines for long runs."""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


def say(message: str) -> None:
    """Print a progress line at once (the bench takes minutes)."""
    print(message, flush=True)


@dataclass(frozen=True, slots=True)
class Stats:
    """Wall-clock times of repeated runs, in seconds."""

    times: tuple[float, ...]

    @property
    def reps(self) -> int:
        return len(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        return percentile(self.times, 95)

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)


def percentile(values: tuple[float, ...] | list[float], pct: float) -> float:
    """Return the nearest-rank `pct` percentile of `values` (the p95 of 10 runs is the slowest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def measure(label: str, fn: Callable[[], object], *, reps: int, warmup: int) -> Stats:
    """Run `fn` `warmup` times untimed, then `reps` times timed; print progress as it goes."""
    say(f"  {label}: {warmup} warm-up + {reps} timed runs")
    for _ in range(warmup):
        fn()
    gc.collect()
    times: list[float] = []
    started = time.perf_counter()
    last_report = started
    for i in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        now = time.perf_counter()
        if now - last_report > 2.0 and i + 1 < reps:
            say(f"    ... {i + 1}/{reps} runs, {now - started:.1f} s")
            last_report = now
    stats = Stats(tuple(times))
    say(f"    median {ms(stats.median)} ms, p95 {ms(stats.p95)} ms")
    return stats


def ms(seconds: float) -> str:
    """Format seconds as milliseconds with sensible precision."""
    value = seconds * 1000
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
