"""COCO ``segmentation`` values (polygons, uncompressed or compressed RLE) to the ``mask``
column, the way ``COCO.annToRLE`` reads them: polygons rasterized like ``frPyObjects`` +
``merge``, compressed strings decoded, uncompressed counts kept."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from polars_metrics._arrays import offsets_from_lengths
from polars_metrics._lazy import lazy
from polars_metrics._parallel import run_ranges
from polars_metrics.io.coco._columns import INT64_MAX
from polars_metrics.kinds._rle import (
    FIRST_CHAR,
    LAST_CHAR,
    RLE_REASONS,
    decode_strings,
    mask_series,
    rle_problems,
)

R = lazy("polars_metrics._kernels.rle")
_SIZE_REASON = "has an RLE size that is not [height, width] (non-negative 64-bit ints)"
_POLYGONS_REASON = "is not a list of polygons (lists of x, y numbers)"
_DECODE_REASON = ("is not a valid compressed RLE string (a character outside '0'..'o', a string "
                  "ending inside a run, or a count out of range)")


def decode_csr(buf: np.ndarray, ptr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``kinds._rle.decode_strings`` for strings already back to back in ``buf`` (string i is
    ``buf[ptr[i]:ptr[i + 1]]``): no Arrow array needed."""
    counts, offsets, bad = R.rle_decode_strings(buf, ptr, run=run_ranges)
    bad_char = (buf < FIRST_CHAR) | (buf > LAST_CHAR)
    if bad_char.any():
        bad[np.searchsorted(ptr, np.flatnonzero(bad_char), side="right") - 1] = True
    return counts, offsets, bad


class Segmentations:
    """Parses COCO ``segmentation`` values into RLE masks, like ``COCO.annToRLE``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.kind = np.zeros(n, np.int8)  # 0 none, 1 polygons, 2 uncompressed, 3 compressed
        self.bad = np.zeros(n, bool)
        self.reason: dict[int, str] = {}
        self.poly_rows: list[int] = []
        self.poly_coords: list[np.ndarray] = []
        self.poly_lens: list[int] = []
        self.poly_per_obj: list[int] = []
        self.unc_rows: list[int] = []
        self.unc_counts: list[np.ndarray] = []
        self.unc_size: list[tuple[int, int]] = []
        self.cmp_rows: list[int] = []
        self.cmp_strings: list[str | bytes] = []
        self.cmp_size: list[tuple[int, int]] = []
        self.cmp_csr: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.poly_csr: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.unc_csr: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def parse(self, i: int, seg: Any) -> None:
        if seg is None or (isinstance(seg, list) and len(seg) == 0):
            return
        if isinstance(seg, list):
            # frPyObjects: a first polygon of exactly 4 numbers makes the whole list boxes
            try:
                first = seg[0]
                as_box = isinstance(first, (list, tuple)) and len(first) == 4
                polys = []
                for p in seg:
                    a = np.asarray(p, dtype=np.float64).ravel()
                    if as_box:
                        if a.size != 4:
                            raise ValueError
                        x, y, w, h = a
                        a = np.array([x, y, x, y + h, x + w, y + h, x + w, y])
                    elif a.size % 2:
                        a = a[:-1]
                    if not np.isfinite(a).all():
                        raise ValueError
                    polys.append(a)
            except (TypeError, ValueError, OverflowError):  # an int beyond float: not finite
                self._bad(i, _POLYGONS_REASON)
                return
            self.kind[i] = 1
            self.poly_rows.append(i)
            self.poly_per_obj.append(len(polys))
            for a in polys:
                self.poly_coords.append(a)
                self.poly_lens.append(a.size)
            return
        if isinstance(seg, Mapping) and "counts" in seg and "size" in seg:
            size = seg["size"]
            if (
                not isinstance(size, (list, tuple))
                or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= INT64_MAX
                           for v in size)
            ):
                self._bad(i, _SIZE_REASON)
                return
            c = seg["counts"]
            if isinstance(c, (str, bytes)):
                self.kind[i] = 3
                self.cmp_rows.append(i)
                self.cmp_strings.append(c if isinstance(c, str) else c.decode("ascii", "replace"))
                self.cmp_size.append((size[0], size[1]))
                return
            if isinstance(c, list):
                try:
                    arr = np.asarray(c, dtype=np.int64)
                except (TypeError, ValueError, OverflowError):
                    arr = None
                if arr is None or arr.ndim != 1 or (arr < 0).any() or (arr > 0xFFFFFFFF).any():
                    self._bad(i, "has RLE counts that are not non-negative integers")
                    return
                self.kind[i] = 2
                self.unc_rows.append(i)
                self.unc_counts.append(arr.astype(np.uint32))
                self.unc_size.append((size[0], size[1]))
                return
        self._bad(i, "is neither polygons nor an RLE {size, counts}")

    def add_compressed(self, null: np.ndarray, size_len: np.ndarray, h: np.ndarray, w: np.ndarray,
                       buf: np.ndarray, ptr: np.ndarray) -> None:
        """Compressed RLEs of every row at once (the results scanner's columns: row i's counts
        string is ``buf[ptr[i]:ptr[i + 1]]``, empty on ``null`` rows), checked as :meth:`parse`
        checks them one by one."""
        size_bad = ~null & ((size_len != 2) | (h < 0) | (w < 0))
        for i in np.flatnonzero(size_bad):
            self._bad(int(i), _SIZE_REASON)
        ok = ~null & ~size_bad
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            return
        lengths = np.diff(ptr)
        if size_bad.any():  # leave out the strings of rows rejected above
            buf = buf[np.repeat(ok, lengths)]
            lengths = lengths[ok]
        else:
            lengths = lengths[rows]
        self.add_strings(rows, buf, offsets_from_lengths(lengths), h[rows], w[rows])

    def add_strings(self, rows: np.ndarray, buf: np.ndarray, ptr: np.ndarray, h: np.ndarray,
                    w: np.ndarray) -> None:
        """Compressed RLEs of ``rows`` (ascending; sizes checked): row ``rows[k]``'s string is
        ``buf[ptr[k]:ptr[k + 1]]``."""
        self.kind[rows] = 3
        self.cmp_csr = (rows, buf, ptr, h, w)

    def add_polygons(self, rows: np.ndarray, per_row: np.ndarray, lo: np.ndarray,
                     length: np.ndarray, coords: np.ndarray) -> None:
        """Polygons of ``rows`` (ascending) at once, as :meth:`parse` takes them one by one:
        row ``rows[k]`` has ``per_row[k]`` (>= 1) polygons, back to back in ``lo`` / ``length``
        (polygon j is ``coords[lo[j]:lo[j] + length[j]]``). A first polygon of 4 numbers
        makes the row's polygons boxes (every one must then have 4); an odd polygon loses
        its last number."""
        optr = offsets_from_lengths(per_row)
        owner = np.repeat(np.arange(rows.size), per_row)
        as_box = (length[optr[:-1]] == 4)[owner]
        bad = np.zeros(rows.size, bool)
        bad[owner[as_box & (length != 4)]] = True
        for r in rows[bad]:
            self._bad(int(r), _POLYGONS_REASON)
        if bad.all():
            return
        keep = ~bad[owner]
        rows, per_row = rows[~bad], per_row[~bad]
        lo, length, as_box = lo[keep], length[keep], as_box[keep]
        new_len = np.where(as_box, 8, length - length % 2)
        pptr = offsets_from_lengths(new_len)
        out = np.empty(int(pptr[-1]), np.float64)
        plain = np.flatnonzero(~as_box)
        if plain.size:
            ln = new_len[plain]
            within = np.arange(int(ln.sum())) - np.repeat(offsets_from_lengths(ln)[:-1], ln)
            out[np.repeat(pptr[plain], ln) + within] = coords[np.repeat(lo[plain], ln) + within]
        boxes = np.flatnonzero(as_box)
        if boxes.size:
            x, y, bw, bh = (coords[lo[boxes] + k] for k in range(4))
            corners = np.stack([x, y, x, y + bh, x + bw, y + bh, x + bw, y], axis=1)
            out[(pptr[boxes][:, None] + np.arange(8)).ravel()] = corners.ravel()
        self.kind[rows] = 1
        self.poly_csr = (rows, out, pptr, offsets_from_lengths(per_row))

    def add_uncompressed(self, rows: np.ndarray, counts: np.ndarray, ptr: np.ndarray,
                         h: np.ndarray, w: np.ndarray) -> None:
        """Uncompressed RLEs of ``rows`` (ascending; sizes and counts checked): row
        ``rows[k]``'s counts are ``counts[ptr[k]:ptr[k + 1]]`` (uint32)."""
        self.kind[rows] = 2
        self.unc_csr = (rows, counts, ptr, h, w)

    def _bad(self, i: int, reason: str) -> None:
        self.bad[i] = True
        self.reason[i] = reason

    def build(self, heights: np.ndarray, widths: np.ndarray, hw_known: np.ndarray
              ) -> tuple[pl.Series | None, np.ndarray, np.ndarray]:
        """Rasterize / decode; returns the ``mask`` column (None when no row has one), the
        per-row ``bad`` mask (malformed values, polygons on images of unknown size, RLEs whose
        counts do not sum to height x width) and the reason per bad row."""
        n = self.n
        if not (self.kind > 0).any():
            return None, self.bad, self._reasons()
        lens = np.zeros(n, np.int64)
        h = np.zeros(n, np.int64)
        w = np.zeros(n, np.int64)
        pieces: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if self.poly_rows or self.poly_csr is not None:
            rows, coords, pptr, optr = self._polygon_arrays()
            unknown = ~hw_known[rows]
            for r in rows[unknown]:
                self._bad(int(r), "is a polygon but its image has no height/width to rasterize on")
            ph, pw = heights[rows], widths[rows]
            sized = rle_problems(np.zeros(0, np.uint32), np.zeros(rows.size + 1, np.int64), ph, pw,
                                 np.ones(rows.size, bool))
            unusable = hw_known[rows] & np.isin(sized, (1, 2))  # size missing / too large
            for r, code in zip(rows[unusable], sized[unusable], strict=True):
                self._bad(int(r), f"is a polygon on an image whose size is unusable: "
                                  f"{RLE_REASONS[int(code)]}")
            ph = np.where(unusable | unknown, 0, ph)  # those rows are rejected; rasterize nothing
            pw = np.where(unusable | unknown, 0, pw)
            c, o = R.rle_from_polygons(coords, pptr, optr, ph, pw, run=run_ranges)
            pieces[1] = (rows, c, o)
            h[rows], w[rows] = ph, pw
        if self.unc_csr is not None:
            rows, c, o, uh, uw = self.unc_csr
            pieces[2] = (rows, c, o)
            h[rows], w[rows] = uh, uw
        elif self.unc_rows:
            rows = np.array(self.unc_rows, np.int64)
            c = np.concatenate(self.unc_counts) if self.unc_counts else np.zeros(0, np.uint32)
            o = offsets_from_lengths([a.size for a in self.unc_counts])
            sz = np.array(self.unc_size, np.int64).reshape(-1, 2)
            pieces[2] = (rows, c, o)
            h[rows], w[rows] = sz[:, 0], sz[:, 1]
        if self.cmp_rows or self.cmp_csr is not None:
            if self.cmp_csr is not None:
                rows, buf, ptr, ch, cw = self.cmp_csr
                c, o, badc = decode_csr(buf, ptr)
            else:
                rows = np.array(self.cmp_rows, np.int64)
                c, o, badc = decode_strings(self.cmp_strings)
                sz = np.array(self.cmp_size, np.int64).reshape(-1, 2)
                ch, cw = sz[:, 0], sz[:, 1]
            for r in rows[badc]:
                self._bad(int(r), _DECODE_REASON)
            pieces[3] = (rows, c, o)
            h[rows], w[rows] = ch, cw
        return self._assemble(pieces, h, w, lens)

    def _polygon_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, coordinates, polygon offsets, per-row polygon offsets) of the polygon rows."""
        if self.poly_csr is not None:
            return self.poly_csr
        coords = np.concatenate(self.poly_coords) if self.poly_coords else np.zeros(0)
        return (np.array(self.poly_rows, np.int64), coords, offsets_from_lengths(self.poly_lens),
                offsets_from_lengths(self.poly_per_obj))

    def _assemble(self, pieces, h, w, lens):
        n = self.n
        for rows, _c, o in pieces.values():
            lens[rows] = np.diff(o)
        offsets = offsets_from_lengths(lens)
        counts = np.empty(offsets[-1], np.uint32)
        for rows, c, o in pieces.values():
            dst = np.repeat(offsets[rows] - o[:-1], np.diff(o)) + np.arange(o[-1])
            counts[dst] = c
        has = self.kind > 0
        codes = rle_problems(counts, offsets, h, w, np.zeros(n, bool))  # exact, overflow-free
        for r in np.flatnonzero(has & ~self.bad & (codes != 0)):
            self._bad(int(r), f"is an invalid RLE: {RLE_REASONS[int(codes[r])]} ({h[r]}×{w[r]})")
        h = np.where(self.bad, 0, h)
        null = ~has | self.bad
        return mask_series(counts, offsets, h, w, null), self.bad, self._reasons()

    def _reasons(self) -> np.ndarray:
        """The reason per row ("" on good rows), without a Python step per row."""
        reasons = np.full(self.n, "", object)
        if self.reason:
            reasons[np.fromiter(self.reason, np.int64, len(self.reason))] = list(self.reason.values())
        return reasons
