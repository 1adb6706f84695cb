"""Smoke test of benchmarks/kinds.py: every case runs on tiny inputs and passes its parity
check (no timing claims here)."""
from __future__ import annotations

from benchmarks import kinds


def test_every_case_runs_with_parity():
    rows = kinds.run_kinds_benchmark(scale=0.001, repeat=1)
    assert {r["case"] for r in rows} >= {"convex polygons", "general polygons", "points", "lines",
                                         "masks (RLE)", "spans"}
    for r in rows:
        assert r["ours_pairs_per_s"] > 0 and r["max_abs_diff"] <= 1e-9
    assert "| convex polygons |" in kinds.format_table(rows)
