"""Benchmark harness: ours vs supervision, valor-lite (and COCO peers) on the same seeded data.

Run ``python -m benchmarks`` (or ``make bench``); see ``benchmarks/README.md``. Parity with each
peer is checked before any ratio is reported.
"""
