"""`python -m bench`: run every benchmark, print progress, write bench/RESULTS.md."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench import booking, join, notes, outbox, report, slots, uplinks
from bench.machine import describe
from bench.timing import say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for trying the bench out")
    parser.add_argument(
        "--only", choices=["slots", "booking", "uplinks", "join", "notes", "outbox"], help="run one benchmark"
    )
    parser.add_argument("--output", type=Path, default=report.RESULTS, help="where to write the results")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    machine = describe()
    say(f"Lastmile bench on {machine.cores} cores, {machine.python}, commit {machine.commit}")
    say(f"load average before: {machine.load_before}")
    body: list[str] = []
    if args.only in (None, "slots"):
        body += slots.markdown(slots.run(quick=args.quick))
    if args.only in (None, "booking"):
        body += booking.markdown(booking.run(quick=args.quick))
    if args.only in (None, "uplinks"):
        body += uplinks.markdown(uplinks.run(quick=args.quick))
    if args.only in (None, "join"):
        body += join.markdown(join.run(quick=args.quick))
    if args.only in (None, "notes"):
        body += notes.markdown(notes.run(quick=args.quick))
    if args.only in (None, "outbox"):
        body += outbox.markdown(outbox.run(quick=args.quick))
    seconds = time.perf_counter() - started
    report.write(report.machine_md(machine, seconds, args.quick) + body, args.output)
    say(f"done in {seconds:.0f} s; wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
