"""What the numbers were measured on: cores, CPU, Python, date, git commit, load."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("aiohttp", "SQLAlchemy", "psycopg", "icalendar", "recurring-ical-events")


@dataclass(frozen=True, slots=True)
class Machine:
    cores: int
    usable_cores: int
    cpu: str
    memory: str
    python: str
    system: str
    date: str
    commit: str
    packages: str
    sqlite: str
    load_before: str


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def commit() -> str:
    """Return the checked-out commit, noting uncommitted changes."""
    head = _git("rev-parse", "--short=12", "HEAD").strip() or "unknown"
    changed = [line[3:] for line in _git("status", "--porcelain").splitlines() if line.strip()]
    if not changed:
        return head
    rules = ", scheduler/rules.py among them" if "scheduler/rules.py" in changed else ""
    return f"{head} + uncommitted changes in {len(changed)} paths{rules} (measured as they were)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def load_average() -> str:
    """Return the 1/5/15-minute load averages (other work on the machine shows here)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def describe() -> Machine:
    return Machine(
        cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count() or 0,
        cpu=_cpu_model(),
        memory=_memory(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        system=platform.platform(),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=commit(),
        packages=_versions(),
        sqlite=sqlite3.sqlite_version,
        load_before=load_average(),
    )
