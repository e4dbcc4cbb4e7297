"""Lastmile benchmarks: `.venv/bin/python -m bench` (or `make bench`) writes bench/RESULTS.md.

Speed is measured, not asserted: every benchmark runs its baseline in the same run and
reports a ratio, and nothing here fails because a number is slow.
"""
