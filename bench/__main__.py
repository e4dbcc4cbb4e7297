"""`python -m bench`: run every benchmark, print progress, write bench/RESULTS.md."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench import booking, join, notes, outbox, report, slots, uplinks
from bench.machine import describe
from bench.timing import say

BENCHES = {
    "slots": slots,
    "booking": booking,
    "uplinks": uplinks,
    "join": join,
    "notes": notes,
    "outbox": outbox,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for trying the bench out")
    parser.add_argument("--only", choices=list(BENCHES), help="run one benchmark")
    parser.add_argument("--output", type=Path, default=report.RESULTS, help="where to write the results")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    machine = describe()
    say(f"Lastmile bench on {machine.cores} cores, {machine.python}, commit {machine.commit}")
    say(f"load average before: {machine.load_before}")
    body: list[str] = []
    for name, bench in BENCHES.items():
        if args.only in (None, name):
            body += bench.markdown(bench.run(quick=args.quick))
    seconds = time.perf_counter() - started
    report.write(report.machine_md(machine, seconds, args.quick) + body, args.output)
    say(f"done in {seconds:.0f} s; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
