"""Byte-level mutations of valid files through the readers: ``read_coco`` (its typed scanners
against the generic msgspec / ``json`` reader), ``read_labelbox_ndjson`` and
``read_labelbox_export``, each followed by ``pm.evaluate``. Every mutated input must end in the
library's own error, a reject, or a result — never a raw Python / numpy / polars error or a
crash — and the COCO scanners must give exactly the generic reader's frames or its error
message.

The edits (truncations, replaced / inserted / deleted bytes, repeated slices, oversized or odd
numbers such as ``1e400`` and ``99999999999999999999``) are drawn from a fixed seed, so a
failure names a reproducible case. Each loop runs in a fresh interpreter (this file run as a
script, :func:`reader_samples.run_isolated`): a segfault in a compiled scanner fails the test
by return code. Fields of another type are the subject of ``test_wrong_type_fields.py``.
"""
from __future__ import annotations

import json
import random
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
from reader_samples import (
    COCO_GT,
    COCO_RESULTS,
    export_records,
    ndjson_lines,
    outcome,
    run_isolated,
)

BYTES = b'{}[]",:0123456789.eE+-\\ntrufalsl \t\n\x00\xff'
ODD_NUMBERS = [b"1e400", b"-0", b"99999999999999999999", b"1.0000000000000000000001", b"NaN",
               b"Infinity", b"4294967296", b"-1", b"2147483648", b"1e-400", b"null", b"[]", b"{}"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to three random edits of ``data``."""
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op, i = rng.randrange(6), rng.randrange(len(b) + 1)
        if op == 0 and b:
            del b[i:]
        elif op == 1 and b:
            b[min(i, len(b) - 1)] = rng.choice(BYTES)
        elif op == 2:
            b[i:i] = bytes([rng.choice(BYTES)])
        elif op == 3 and b:
            del b[min(i, len(b) - 1)]
        elif op == 4 and b:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randrange(1, 40)]
        elif op == 5:
            b[i:i] = rng.choice(ODD_NUMBERS)
    return bytes(b)


def fuzz_coco(seed: int, n: int, which: str) -> list[dict]:
    """Read ``n`` mutated gt or results files with the scanners and with the generic reader."""
    from polars.testing import assert_frame_equal

    import polars_metrics as pm
    from polars_metrics.io.coco import gt as gt_reader
    from polars_metrics.io.coco import results as results_reader

    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp())
    findings = []
    for case in range(n):
        gt, res = json.dumps(COCO_GT).encode(), json.dumps(COCO_RESULTS).encode()
        gt, res = (mutate(rng, gt), res) if which == "gt" else (gt, mutate(rng, res))
        (tmp / "gt.json").write_bytes(gt)
        (tmp / "res.json").write_bytes(res)
        iou_type = rng.choice(["bbox", "segm"])

        def read(iou_type=iou_type):
            return pm.read_coco(tmp / "gt.json", tmp / "res.json", iou_type=iou_type)

        scanned = outcome(read)
        scanners = gt_reader.scan_gt, results_reader.scan_results
        gt_reader.scan_gt = results_reader.scan_results = lambda path: None
        try:
            generic = outcome(read)
        finally:
            gt_reader.scan_gt, results_reader.scan_results = scanners
        problem = None
        if "raw" in (scanned[0], generic[0]):
            problem = "raw error"
        elif scanned[0] != generic[0] or (scanned[0] == "error" and scanned[1] != generic[1]):
            problem = "scanner and generic reader disagree"
        elif scanned[0] == "ok":
            try:
                for a, b in zip(scanned[1], generic[1], strict=True):
                    assert_frame_equal(a, b, check_exact=True)  # floats equal exactly
            except AssertionError as e:
                problem, scanned = "frames differ", ("ok", str(e)[:800])
        if problem:
            findings.append({"case": case, "problem": problem, "iou_type": iou_type,
                             "input": (gt if which == "gt" else res)[:600].decode("latin-1"),
                             "scanner": str(scanned[1])[:1500], "generic": str(generic[1])[:1500]})
    return findings


def _fuzz_lines(seed: int, n: int, records: list[dict], read_and_evaluate) -> list[dict]:
    """``n`` documents of ``records`` (one JSON line each) with one mutated line, through
    ``read_and_evaluate(lines, on_invalid)`` with "raise" and "drop"; the raw errors."""
    rng = random.Random(seed)
    base = [json.dumps(record).encode() for record in records]
    findings = []
    for case in range(n):
        lines = list(base)
        k = rng.randrange(len(lines))
        lines[k] = mutate(rng, lines[k])
        for on_invalid in ("raise", "drop"):
            got = outcome(lambda lines=lines, on_invalid=on_invalid: read_and_evaluate(lines, on_invalid))
            if got[0] == "raw":
                findings.append({"case": case, "on_invalid": on_invalid,
                                 "line": lines[k][:600].decode("latin-1"), "error": got[1]})
    return findings


def fuzz_ndjson(seed: int, n: int) -> list[dict]:
    """Mutated NDJSON documents: read, and evaluate what drop keeps against itself."""
    import polars as pl

    import polars_metrics as pm

    def read_and_evaluate(lines, on_invalid):
        out = pm.read_labelbox_ndjson(lines, role="ground_truth", allow_rle_masks=True,
                                      global_key_map={"g3": "d3"}, on_invalid=on_invalid)
        frame = out[0] if isinstance(out, tuple) else out
        if on_invalid == "raise":
            return frame.height
        pd = frame if "confidence" in frame.columns else frame.with_columns(confidence=pl.lit(0.5))
        ev = pm.evaluate(frame, pd, on_invalid="drop")
        return ev.cube.height, ev.confusion.height, ev.data_rows.height

    return _fuzz_lines(seed, n, ndjson_lines(), read_and_evaluate)


def fuzz_export(seed: int, n: int) -> list[dict]:
    """Mutated project exports: read, and evaluate what is read against itself."""
    import polars as pl

    import polars_metrics as pm

    def read_and_evaluate(lines, on_invalid):
        gt, _ = pm.read_labelbox_export([line.decode("utf-8", "replace") for line in lines],
                                        on_invalid=on_invalid)
        ev = pm.evaluate(gt, gt.with_columns(confidence=pl.lit(0.5)), on_invalid="drop")
        return ev.cube.height, ev.data_rows.height

    return _fuzz_lines(seed, n, export_records(), read_and_evaluate)


@pytest.mark.parametrize("which", ["gt", "results"])
def test_mutated_coco_files_read_like_the_generic_reader(which):
    findings = run_isolated(__file__, "coco", "20261204", "600", which)
    assert not findings, json.dumps(findings[:3], indent=1)


def test_mutated_ndjson_lines_end_in_library_errors_or_results():
    findings = run_isolated(__file__, "ndjson", "20261204", "250")
    assert not findings, json.dumps(findings[:3], indent=1)


def test_mutated_export_lines_end_in_library_errors_or_results():
    findings = run_isolated(__file__, "export", "20261204", "250")
    assert not findings, json.dumps(findings[:3], indent=1)


if __name__ == "__main__":  # the loop of one test, in its own interpreter
    warnings.simplefilter("ignore")
    what = sys.argv[1]
    seed, count = int(sys.argv[2]), int(sys.argv[3])
    found = (fuzz_coco(seed, count, sys.argv[4]) if what == "coco"
             else fuzz_ndjson(seed, count) if what == "ndjson" else fuzz_export(seed, count))
    print(json.dumps(found))
