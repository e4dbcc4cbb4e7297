"""bench/RESULTS.md: machine, noise note, then one section per benchmark."""

from __future__ import annotations

from pathlib import Path

from bench.machine import Machine, load_average

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine_md(m: Machine, seconds: float, quick: bool) -> list[str]:
    return [
        "# Lastmile benchmarks",
        "",
        "Written by `.venv/bin/python -m bench` (`make bench`); rerun it rather than editing this file.",
        "Every benchmark runs its baseline in the same run and reports a ratio; no test asserts a time.",
        "",
        "| | |",
        "| --- | --- |",
        f"| date | {m.date} |",
        f"| git commit | {m.commit} |",
        f"| cores | {m.cores} ({m.usable_cores} usable by this process) |",
        f"| CPU | {m.cpu} |",
        f"| memory | {m.memory} |",
        f"| python | {m.python} |",
        f"| system | {m.system} |",
        f"| libraries | {m.packages}, SQLite {m.sqlite} |",
        f"| load average (1/5/15 min) | before: {m.load_before}; after: {load_average()} |",
        f"| whole bench | {seconds:.0f} s{' (quick run: fewer repetitions)' if quick else ''} |",
        "",
        "**Noise.** This is a shared 2-core machine: other work was running during this run (see the",
        "load average), and the HTTP benchmark's server and clients share the same 2 cores. Single",
        "numbers can move by tens of percent between runs; the ratios, measured side by side in one",
        "run, are the steadier figures. Medians are reported with p95 so that outliers show.",
        "",
    ]


def write(lines: list[str], path: Path = RESULTS) -> None:
    path.write_text("\n".join(lines).rstrip() + "\n")
