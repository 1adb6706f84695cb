"""COCO results files read by the typed scanner (``_kernels/json_scan.py``).

Why a scanner of our own, measured on the 5k-image benchmark file (51 MB, 471k detections, one
process, 2026-12-03): Arrow's JSON reader on the array rewritten to NDJSON took 0.45 s (and
imports pyarrow: ~60 MB of resident memory and 0.1 s), polars' ``read_ndjson`` 1.6 s,
``read_json`` 2.6 s, msgspec into Python objects 0.9 s with the columns built, orjson 1.3 s.
The scanner writes the five fields straight into numpy columns on one pass over the bytes,
on threads (chunks split at object boundaries and checked, see the kernel module), converting
numbers exactly as Python's ``float()`` (Clinger's fast path, then Eisel–Lemire), with no
Python object per value and no copy of the file.

It reads only what it fully understands (a JSON array of objects with integer
``image_id`` / ``category_id``, a number ``score``, ``bbox`` as ``[]`` or four numbers,
``segmentation`` as a compressed RLE ``{"size", "counts"}``; other keys skipped after
validation). Anything else — ``null`` values, polygons, floats as ids, ``NaN``, a missing
field, malformed JSON, a UTF-8 error — returns ``None`` and the caller reads the file with the
generic path (msgspec, then ``json``), which gives the same frames and the existing errors.
"""
from __future__ import annotations

import codecs
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from polars_metrics._lazy import lazy
from polars_metrics._parallel import num_threads, run_ranges

J = lazy("polars_metrics._kernels.json_scan")

_WS = b" \t\n\r"
CHUNK_BYTES = 1 << 22  # files below 4 MB are scanned on one thread
SEG_PROBE_BYTES = 1 << 16  # where a results file is looked at for "segmentation" keys
MIN_OBJECT = len('{"image_id":0,"category_id":0,"score":0}')  # the fields the scanner requires


@dataclass
class Scanned:
    """Columns of a scanned results file: ``box_missing`` (absent or ``[]``; NaN boxes there);
    ``seg`` None when no entry has a segmentation, else (null, size length, height, width,
    counts bytes back to back, their offsets)."""

    img: np.ndarray
    cat: np.ndarray
    score: np.ndarray
    box: np.ndarray
    box_missing: np.ndarray
    seg: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None


def read_bytes(path: Path) -> mmap.mmap | bytearray:
    """The file's bytes as a writable buffer (the compiled kernels take writable arrays):
    memory-mapped copy-on-write, so the bytes are the page cache's, not a copy in fresh memory.

    Measured on the 20k-image results file (206 MB): reading it into a new buffer cost 0.37 s
    warm and up to 3.9 s on a fresh VM (50k page faults of never-touched memory), mapping it
    0.03–0.05 s. Like any memory map (polars maps Parquet files the same way), the file must
    not be truncated while it is read. What cannot be mapped (an empty file, a pipe) is read
    into a ``bytearray``.
    """
    with open(path, "rb") as f:
        try:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        except (ValueError, OSError):
            return bytearray(f.read())


def is_utf8(data: mmap.mmap | bytearray) -> bool:
    """Whether the bytes are valid UTF-8 (JSON's encoding); ASCII is checked without a copy."""
    buf = np.frombuffer(data, np.uint8)
    if buf.size == 0 or int(buf.max()) < 0x80:
        return True
    try:
        codecs.decode(memoryview(data), "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _skip_ws(data: mmap.mmap | bytearray, p: int) -> int:
    n = len(data)
    while p < n and data[p] in _WS:
        p += 1
    return p


def _guess_starts(data: mmap.mmap | bytearray, first: int, parts: int) -> list[int]:
    """Chunk starts: ``first`` and, for each later part, the first ``{`` after its share of the
    bytes that follows a ``,`` (a guess, checked after the scan)."""
    n = len(data)
    starts = [first]
    for k in range(1, parts):
        q = data.find(b"{", first + k * (n - first) // parts)
        for _ in range(64):
            if q < 0:
                break
            b = q - 1
            while b > first and data[b] in _WS:
                b -= 1
            if data[b] == 44:  # ','
                break
            q = data.find(b"{", q + 1)
        else:
            q = -1
        if q > starts[-1]:
            starts.append(q)
    return starts


def _scan(data: mmap.mmap | bytearray, buf: np.ndarray, starts: list[int], with_seg: bool
          ) -> tuple[str, tuple | None]:
    """Run the kernel over the chunks; ("ok", columns), ("retry", None) when a guessed chunk start
    was not an object start, ("give up", None)."""
    n = len(data)
    bounds = np.array(starts + [n], np.int64)
    # rows a chunk can hold: every object it reads starts in its range and is at least
    # MIN_OBJECT bytes long except the last; np.empty leaves untouched rows out of memory (RSS)
    cap = np.diff(bounds) // MIN_OBJECT + 1
    base = np.zeros(cap.size, np.int64)
    np.cumsum(cap[:-1], out=base[1:])
    rows = int(cap.sum())
    img = np.empty(rows, np.int64)
    cat = np.empty(rows, np.int64)
    score = np.empty(rows, np.float64)
    box = np.empty((rows, 4), np.float64)
    box_state = np.empty(rows, np.int8)
    seg = np.empty((rows if with_seg else 0, J.SEG_COLS), np.int64)
    status = np.zeros((cap.size, 3), np.int64)
    args = (buf, bounds, base, cap, img, cat, score, box, box_state, seg, status,
            *J.scratch(cap.size))
    run_ranges(J.scan_results, args, bounds, small=0)
    for k in range(cap.size):
        code = int(status[k, 2])
        if code == J.GIVE_UP:  # chunk k's start is proven (chunk 0, or checked below)
            return "give up", None
        if code != J.OK or (k + 1 < cap.size and int(status[k, 1]) != starts[k + 1]):
            return ("retry", None) if k + 1 < cap.size else ("give up", None)
    spans = [slice(int(b), int(b + g)) for b, g in zip(base, status[:, 0], strict=True)]

    def rows_of(a: np.ndarray) -> np.ndarray:  # the chunks' rows back to back (block copies)
        return a[spans[0]] if len(spans) == 1 else np.concatenate([a[sp] for sp in spans])

    cols = (rows_of(img), rows_of(cat), rows_of(score), rows_of(box), rows_of(box_state),
            rows_of(seg) if with_seg else None)
    return "ok", cols


def _scan_both_ways(data, buf: np.ndarray, starts: list[int], with_seg: bool):
    """:func:`_scan`, again with room for segmentations when it gave up without."""
    outcome, cols = _scan(data, buf, starts, with_seg)
    if outcome == "give up" and not with_seg:
        outcome, cols = _scan(data, buf, starts, True)
    return outcome, cols


def scan_results(path: str | os.PathLike) -> Scanned | list | None:
    """The results file's columns, ``[]`` for an empty array, or None (read it the generic way)."""
    data = read_bytes(Path(path))
    if not is_utf8(data):
        return None
    p = _skip_ws(data, 0)
    if p >= len(data) or data[p] != 91:  # '['
        return None
    first = _skip_ws(data, p + 1)
    if first < len(data) and data[first] == 93:  # ']'
        return [] if _skip_ws(data, first + 1) == len(data) else None
    buf = np.frombuffer(data, np.uint8)
    # results files are homogeneous: the first objects tell whether segmentations come (a
    # search of the whole file took 15 ms at 50 MB); a file that has them only further on
    # makes the scan give up, and it runs again with room for them
    with_seg = data.find(b'"segmentation"', first, first + SEG_PROBE_BYTES) >= 0
    parts = max(1, min(num_threads(), len(data) // CHUNK_BYTES))
    outcome, cols = _scan_both_ways(data, buf, _guess_starts(data, first, parts), with_seg)
    if outcome == "retry":
        outcome, cols = _scan_both_ways(data, buf, [first], with_seg)
    if outcome != "ok" or cols is None:
        return None
    img, cat, score, box, box_state, seg = cols
    return Scanned(img, cat, score, np.ascontiguousarray(box), box_state != J.BOX_FOUR,
                   None if seg is None else _segmentations(buf, seg))


def _segmentations(buf: np.ndarray, seg: np.ndarray) -> tuple | None:
    """(null, size length, height, width, counts bytes, offsets) of the compressed RLEs, or None
    when no entry has one."""
    present = seg[:, J.SEG_PRESENT] == 1
    if not present.any():
        return None
    null = ~present
    lengths = np.where(present, seg[:, J.SEG_LEN], 0)
    ptr = np.zeros(seg.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=ptr[1:])
    out = np.empty(int(ptr[-1]), np.uint8)
    lo = np.ascontiguousarray(np.where(present, seg[:, J.SEG_LO], 0))
    hi = np.ascontiguousarray(np.where(present, seg[:, J.SEG_HI], 0))
    run_ranges(J.copy_strings, (buf, lo, hi, ptr, out), ptr)
    size_len = np.where(present, seg[:, J.SEG_SIZE_LEN], 0)
    h = np.where(present & (size_len >= 1), seg[:, J.SEG_H], 0)
    w = np.where(present & (size_len >= 2), seg[:, J.SEG_W], 0)
    return null, size_len, h, w, out, ptr
