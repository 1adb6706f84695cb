"""Axis-aligned boxes: ``bbox`` = (x0, y0, x1, y1), continuous area, no +1 pixel convention."""
from __future__ import annotations

import weakref

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._arrays import f64_matrix, f64_rows
from polars_metrics._kernels.aot import kernel
from polars_metrics._parallel import map_ranges, run_pieces, run_ranges
from polars_metrics.errors import SchemaError
from polars_metrics.kinds._base import Kind
from polars_metrics.validation import Check

NAME = "box"
GEOMETRY = (s.BBOX,)

box_problems = kernel("box", "box_problems")
_box_pairs_range = kernel("box", "box_pairs_range")
_box_iou_aligned_range = kernel("box", "box_iou_aligned_range")


def bbox_from_xywh(x: str | pl.Expr, y: str | pl.Expr, w: str | pl.Expr, h: str | pl.Expr) -> pl.Expr:
    """Build the ``bbox`` column from top-left corner, width and height (COCO's xywh).

    >>> df = pl.DataFrame({"x": [10.0], "y": [20.0], "w": [30.0], "h": [40.0]})
    >>> df.select(bbox_from_xywh("x", "y", "w", "h")).item().to_list()
    [10.0, 20.0, 40.0, 60.0]
    """
    x, y, w, h = (pl.col(c) if isinstance(c, str) else c for c in (x, y, w, h))
    return pl.concat_arr(x, y, x + w, y + h).cast(s.BBOX_DTYPE).alias(s.BBOX)


def bbox_from_tlhw(top: str | pl.Expr, left: str | pl.Expr, height: str | pl.Expr,
                   width: str | pl.Expr) -> pl.Expr:
    """Build the ``bbox`` column from the labeling platform's top / left / height / width.

    >>> df = pl.DataFrame({"top": [20.0], "left": [10.0], "height": [40.0], "width": [30.0]})
    >>> df.select(bbox_from_tlhw("top", "left", "height", "width")).item().to_list()
    [10.0, 20.0, 40.0, 60.0]
    """
    return bbox_from_xywh(left, top, width, height)


def normalize(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """Cast ``bbox`` to Array(Float64, 4); accept List or Array of any numeric type.

    >>> normalize(pl.DataFrame({"bbox": [[0, 0, 2, 3]]}), "ground_truth").schema["bbox"]
    Array(Float64, shape=(4,))
    """
    return four_numbers(frame, table, s.BBOX, "(x0, y0, x1, y1)",
                        "Build boxes with pm.bbox_from_xywh(...) or pm.bbox_from_tlhw(...).")


def four_numbers(frame: pl.DataFrame, table: str, column: str, meaning: str,
                 fix: str = "") -> pl.DataFrame:
    """``column`` cast to Array(Float64, 4) from a List or Array of any numeric type; another
    dtype, an array not 4 wide or a list row of another length is an error naming table,
    column (and row), ``meaning`` the four values and ``fix`` how to build them.

    >>> four_numbers(pl.DataFrame({"b": [[0, 1, 2, 3], [1, 2]]}), "gt", "b", "(x, y, w, h)")
    Traceback (most recent call last):
    ...
    polars_metrics.errors.SchemaError: gt.b: row 1 has 2 values; expected 4 (x, y, w, h).
    """
    dtype = frame.schema[column]
    if dtype == s.BBOX_DTYPE:
        return frame
    inner = getattr(dtype, "inner", None)
    if (isinstance(dtype, pl.List | pl.Array) and inner is not None and inner.is_numeric()
            and (not isinstance(dtype, pl.Array) or dtype.size == 4)):
        if isinstance(dtype, pl.List):
            lengths = frame[column].list.len()
            wrong = (lengths.is_not_null() & (lengths != 4)).arg_true()
            if wrong.len():
                row = int(wrong[0])
                raise SchemaError(f"{table}.{column}: row {row} has {int(lengths[row])} values; "
                                  f"expected 4 {meaning}. {fix}".rstrip())
        return frame.with_columns(pl.col(column).cast(s.BBOX_DTYPE))
    raise SchemaError(f"{table}.{column} has dtype {dtype}; expected Array(Float64, 4) as "
                      f"{meaning}. {fix}".rstrip())


_last_problems: tuple = (None, None)


def _problems(frame: pl.DataFrame) -> np.ndarray:
    """box_problems codes; null boxes (read as NaN rows) are left to the null check.

    Both box checks read these codes: the last frame's are kept so the column is scanned once.
    """
    global _last_problems
    ref, codes = _last_problems
    if ref is not None and ref() is frame:
        return codes
    # chunk by chunk: each chunk is viewed in place, nothing is copied; pieces on threads
    codes = np.empty(frame.height, dtype=np.int8)

    def fill(boxes: np.ndarray, start: int) -> None:
        codes[start:start + boxes.shape[0]] = box_problems(boxes)

    run_pieces(fill, [f64_rows(c, 4) for c in frame[s.BBOX].get_chunks()])
    if frame[s.BBOX].has_nulls():
        codes = np.where(frame[s.BBOX].is_null().to_numpy(), 0, codes)
    _last_problems = (weakref.ref(frame), codes)
    return codes


def _non_finite(frame: pl.DataFrame) -> np.ndarray:
    return _problems(frame) == 1


def _reversed(frame: pl.DataFrame) -> np.ndarray:
    return _problems(frame) == 2


def _too_large(frame: pl.DataFrame) -> np.ndarray:
    return _problems(frame) == 3


def _underflow(frame: pl.DataFrame) -> np.ndarray:
    return _problems(frame) == 4


def checks(table: str, keys=()) -> list[Check]:
    """Null boxes, non-finite coordinates, reversed corners, coordinates beyond ±1e150 (areas
    would overflow float64: at ~1.3e154 identical boxes score NaN), positive areas below 1e-290
    (they underflow to 0: identical boxes would not match).

    Examples
    --------
    >>> [c.reason for c in checks("ground_truth")][:3]
    ['bbox is null', 'bbox has a NaN or infinite coordinate', 'bbox has x1 < x0 or y1 < y0']
    """
    return [
        Check(s.BBOX, pl.col(s.BBOX).is_null(), "bbox is null", "give every box 4 coordinates"),
        Check(s.BBOX, _non_finite, "bbox has a NaN or infinite coordinate",
              "replace or remove non-finite coordinates"),
        Check(s.BBOX, _reversed, "bbox has x1 < x0 or y1 < y0",
              "store boxes as (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1 "
              "(pm.bbox_from_xywh converts x/y/width/height)"),
        Check(s.BBOX, _too_large, "bbox has a coordinate beyond ±1e150: its area would overflow "
              "float64", "check the units; scale the coordinates down"),
        Check(s.BBOX, _underflow, "bbox area is positive but below 1e-290: it underflows float64",
              "scale the coordinates up"),
    ]


def pairs(gt, pd, profile=None):
    """Candidate pairs with IoU > 0 per data row, gt-major within a row.

    ``gt`` and ``pd`` are :class:`~polars_metrics.prepare.Side` views in data-row order; the
    profile is not read (boxes in (lon, lat) are paired by the polygon kind). Returns pair_off
    (int64 CSR over data rows), pair_gt, pair_pd (int32 positions in data-row order) and
    pair_iou (float64). The boxes are read in place through the sides' row order.
    """
    if gt.frame[s.BBOX].n_chunks() > 1 or pd.frame[s.BBOX].n_chunks() > 1:
        return _joined(*_block_parts(gt, pd))
    g_boxes, g_idx = _boxes(gt)
    p_boxes, p_idx = _boxes(pd)
    return _joined(*_pair_parts(g_boxes, g_idx, gt.off, p_boxes, p_idx, pd.off))


BLOCK_BOXES = 1 << 18  # annotations (both sides) whose boxes a block of data rows gathers


def _block_parts(gt, pd) -> tuple[np.ndarray, list]:
    """:func:`_pair_parts` of sides whose box column is in several chunks (a Parquet file is
    read in several): by blocks of data rows holding about ``BLOCK_BOXES`` annotations, each
    block's boxes gathered from the chunks in data-row order (8 MB), rather than the whole
    column joined into one array (32 bytes a box: 300 MB of predictions at 100,000 images)."""
    n_rows = gt.off.shape[0] - 1
    work = gt.off + pd.off
    n_blocks = max(1, -(-int(work[-1]) // BLOCK_BOXES))
    edges = np.unique(np.r_[0, np.searchsorted(
        work, np.arange(1, n_blocks) * (int(work[-1]) / n_blocks)), n_rows])
    g_chunks = _Chunks(gt, int(np.diff(gt.off[edges]).max(initial=0)))
    p_chunks = _Chunks(pd, int(np.diff(pd.off[edges]).max(initial=0)))
    counts, parts = [np.zeros(1, np.int64)], []
    for r0, r1 in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        g0, g1, p0, p1 = int(gt.off[r0]), int(gt.off[r1]), int(pd.off[r0]), int(pd.off[r1])
        off, block = _pair_parts(g_chunks.boxes(g0, g1), None, gt.off[r0:r1 + 1] - g0,
                                 p_chunks.boxes(p0, p1), None, pd.off[r0:r1 + 1] - p0)
        for part in block:  # positions in the block -> in the side (int32, in place)
            for i, base in ((0, g0), (1, p0)):
                if not part[i].flags.writeable:
                    part[i] = part[i].copy()
                part[i] += np.int32(base)
        counts.append(np.diff(off))
        parts.extend(block)
    return np.cumsum(np.concatenate(counts)), parts


class _Chunks:
    """A side's box column as its chunks' (n, 4) views (no copy) and their first rows, and
    one buffer for the boxes of a block (reused by every block: no allocation per block)."""

    def __init__(self, side, block: int) -> None:
        self.views = [f64_rows(c, 4) for c in side.frame[s.BBOX].get_chunks()]
        self.starts = np.cumsum([0] + [v.shape[0] for v in self.views])
        self.idx = side.idx
        # rows in frame order (the frame was in data-row order, rows were only left out): each
        # chunk's rows of a block are one run of positions, copied without a mask
        self.ascending = self.idx is None or bool(np.all(self.idx[1:] >= self.idx[:-1]))
        self.buffer = np.empty((block, 4), dtype=np.float64)

    def boxes(self, a: int, b: int) -> np.ndarray:
        """The boxes of positions a..b (data-row order), contiguous, in the block buffer."""
        rows = np.arange(a, b) if self.idx is None else self.idx[a:b]
        out = self.buffer[:b - a]
        if self.ascending:
            cuts = np.searchsorted(rows, self.starts)
            for c, view in enumerate(self.views):
                lo, hi = int(cuts[c]), int(cuts[c + 1])
                if hi > lo:  # "clip": the indices are in range; "raise" would buffer the output
                    np.take(view, rows[lo:hi] - self.starts[c], axis=0, out=out[lo:hi], mode="clip")
            return out
        chunk = np.searchsorted(self.starts, rows, side="right") - 1
        for c in np.unique(chunk).tolist():
            sel = chunk == c
            out[sel] = self.views[c][rows[sel] - self.starts[c]]
        return out


_IDENTITY = np.zeros(0, dtype=np.int32)


def box_pairs(gt: np.ndarray, gt_idx: np.ndarray | None, gt_off: np.ndarray, pd: np.ndarray,
              pd_idx: np.ndarray | None, pd_off: np.ndarray):
    """One pass over the (gt, pd) grid of each data row (each IoU computed once), on a few
    threads by ranges of data rows; the ranges' pairs concatenate into the CSR arrays.
    Annotation i is box ``gt[gt_idx[i]]`` (``gt[i]`` when ``gt_idx`` is None), likewise pd.

    >>> gt = np.array([[0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    >>> pd = np.array([[1.0, 0.0, 3.0, 2.0]])
    >>> off, g, p, iou = box_pairs(gt, None, np.array([0, 2]), pd, None, np.array([0, 1]))
    >>> off.tolist(), g.tolist(), p.tolist(), iou.round(4).tolist()
    ([0, 1], [0], [0], [0.3333])
    """
    return _joined(*_pair_parts(gt, gt_idx, gt_off, pd, pd_idx, pd_off))


def _pair_parts(gt, gt_idx, gt_off, pd, pd_idx, pd_off) -> tuple[np.ndarray, list]:
    """:func:`box_pairs`' CSR offsets and the (gt, pd, iou) arrays of each thread's range."""
    n_rows = gt_off.shape[0] - 1
    # work of a row: its gt × pd grid
    cum_work = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.diff(gt_off) * np.diff(pd_off), out=cum_work[1:])
    counts = np.zeros(n_rows, dtype=np.int64)
    gt_idx = _IDENTITY if gt_idx is None else np.ascontiguousarray(gt_idx, dtype=np.int32)
    pd_idx = _IDENTITY if pd_idx is None else np.ascontiguousarray(pd_idx, dtype=np.int32)
    parts = map_ranges(_box_pairs_range, (gt, gt_idx, gt_off, pd, pd_idx, pd_off, counts),
                       cum_work)
    pair_off = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=pair_off[1:])
    return pair_off, [list(part) for part in parts]


JOIN_THREADS_PAIRS = 1 << 20  # pairs from which the join copies on threads (5k images: slower)


def _joined(pair_off: np.ndarray, parts: list[list[np.ndarray]]):
    """(off, gt, pd, iou) from the threads' parts, emptied as they are read: each column's
    parts are freed once it is joined, before the next column is (the stage's peak holds the
    parts and one joined column, not the parts and all three). The parts are copied in on
    threads: the joined columns are new pages (at 100,000 images 169 MB, mapped afresh on
    every call), whose first touch costs more than the copy."""
    if len(parts) == 1:
        return (pair_off, *parts[0])
    if not parts:
        return pair_off, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64)
    out = []
    for i in range(3):
        column = [part[i] for part in parts]
        for part in parts:
            part[i] = None
        joined = np.empty(sum(c.shape[0] for c in column), column[0].dtype)

        def put(piece: np.ndarray, start: int, joined: np.ndarray = joined) -> None:
            joined[start:start + piece.shape[0]] = piece

        run_pieces(put, column, small=JOIN_THREADS_PAIRS)
        out.append(joined)
        del column
    return (pair_off, *out)


def _boxes(side) -> tuple[np.ndarray, np.ndarray | None]:
    """The side's box column (a view when it is one chunk) and its row order."""
    return f64_rows(side.frame[s.BBOX], 4), side.idx


def aligned_iou(a: pl.Series, b: pl.Series) -> np.ndarray:
    """IoU of box a[i] with box b[i] for every i (no nulls; any numeric List / Array of 4).

    Examples
    --------
    >>> a = pl.Series([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    >>> b = pl.Series([[1.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    >>> aligned_iou(a, b).tolist()
    [0.3333333333333333, 0.0]
    """
    a, b = f64_matrix(a.cast(s.BBOX_DTYPE), 4), f64_matrix(b.cast(s.BBOX_DTYPE), 4)
    out = np.empty(a.shape[0], dtype=np.float64)
    run_ranges(_box_iou_aligned_range, (a, b, out), np.arange(a.shape[0] + 1, dtype=np.int64))
    return out


# a box in (lon, lat) is not a rectangle on the plane: under a geographic crs the polygon kind
# pairs boxes (it lists them in ``pairs_with``)
KIND = Kind(NAME, GEOMETRY, normalize, checks, pairs, aligned_iou=aligned_iou, geographic=False)
