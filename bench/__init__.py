"""Benchmarks of SAPA on the embedded stack, each figure measured next to a floor in the same run.

`make bench` (or `python -m bench.run [--only NAME] [--quick]`) runs every registered benchmark,
prints one table and writes the rows as JSON under `var/bench/`. See `bench/harness.py`.
"""
