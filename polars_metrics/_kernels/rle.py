"""Numba kernels for COCO run-length encoded (RLE) masks.

A batch of masks is stored as CSR: ``counts`` (uint32, all masks concatenated), ``offsets``
(int64, ``n + 1`` entries: mask ``i`` owns ``counts[offsets[i]:offsets[i + 1]]``) and int64
``heights`` / ``widths``. Counts are column-major run lengths starting with a run of zeros,
exactly as pycocotools' ``maskApi.c`` stores them.

Every routine reproduces the corresponding ``maskApi.c`` function bit for bit (including its
rounding and truncation quirks), so that IoUs and rasterized polygons equal pycocotools'.
No polars here: callers pass numpy arrays and handle errors.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit, prange
from polars_metrics._kernels.clip import clip_to_images

_SCALE = 5.0  # rleFrPoly upsamples the polygon by 5 before walking its boundary


def _serial(kernel, args: tuple, cum_work: np.ndarray) -> None:
    """Call a range kernel over all its units on this thread (callers above ``_kernels`` pass
    ``polars_metrics._parallel.run_ranges`` instead, which splits the units over threads)."""
    kernel(*args, 0, cum_work.shape[0] - 1)


def _writeable(a: np.ndarray, dtype) -> np.ndarray:
    """C-contiguous, writeable, of ``dtype``: numba compiles read-only arrays separately."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


# --- basic measures -----------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def rle_area(counts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Foreground pixel count of every mask (sum of the odd runs), like ``rleArea``."""
    n = offsets.size - 1
    out = np.zeros(n, np.int64)
    for i in prange(n):
        s = 0
        for j in range(offsets[i] + 1, offsets[i + 1], 2):
            s += counts[j]
        out[i] = s
    return out


@njit(cache=True, parallel=True)
def rle_total(counts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of all runs of every mask (must equal height * width for a valid RLE), saturated at
    2**62: a sum that large is never a valid size, and never wraps around int64."""
    n = offsets.size - 1
    out = np.zeros(n, np.int64)
    cap = np.int64(1) << 62
    for i in prange(n):
        s = np.int64(0)
        for j in range(offsets[i], offsets[i + 1]):
            s += np.int64(counts[j])
            if s > cap:
                s = cap
                break
        out[i] = s
    return out


@njit(cache=True, parallel=True)
def rle_to_bbox(
    counts: np.ndarray, offsets: np.ndarray, heights: np.ndarray, widths: np.ndarray
) -> np.ndarray:
    """Tight ``x, y, w, h`` box of every mask, like ``rleToBbox`` (all zeros for an empty mask)."""
    n = offsets.size - 1
    out = np.zeros((n, 4), np.float64)
    for i in prange(n):
        h = heights[i]
        w = widths[i]
        start = offsets[i]
        m = ((offsets[i + 1] - start) // 2) * 2  # a trailing zero run adds nothing
        if m == 0 or h == 0:
            continue
        xs = w
        ys = h
        xe = 0
        ye = 0
        cc = 0
        xp = 0
        for j in range(m):
            cc += counts[start + j]
            t = cc - (j % 2)
            y = t % h
            x = (t - y) // h
            if j % 2 == 0:
                xp = x
            elif xp < x:  # the run wraps a column: the box spans the full height
                ys = 0
                ye = h - 1
            xs = min(xs, x)
            xe = max(xe, x)
            ys = min(ys, y)
            ye = max(ye, y)
        out[i, 0] = xs
        out[i, 2] = xe - xs + 1
        out[i, 1] = ys
        out[i, 3] = ye - ys + 1
    return out


# --- IoU --------------------------------------------------------------------------------------------
@njit(cache=True)
def _bbox_iou(d: np.ndarray, g: np.ndarray, crowd: bool) -> float:
    """``bbIou`` for one pair of ``x, y, w, h`` boxes (crowd: detection area as the union)."""
    w = min(d[2] + d[0], g[2] + g[0]) - max(d[0], g[0])
    if w <= 0:
        return 0.0
    h = min(d[3] + d[1], g[3] + g[1]) - max(d[1], g[1])
    if h <= 0:
        return 0.0
    inter = w * h
    da = d[2] * d[3]
    u = da if crowd else da + g[2] * g[3] - inter
    return inter / u


@njit(cache=True, inline="always")
def _advance(runs: np.ndarray, nxt: int, left, on: bool, c):
    """One cursor of a two-cursor RLE walk consumes ``c`` pixels of its current run; when the
    run is used up it moves to the next run and flips ``on`` (foreground / background).
    Returns (next run index, pixels left in the current run, on, moved)."""
    left -= c
    if left == 0 and nxt < runs.size:
        return nxt + 1, runs[nxt], not on, True
    return nxt, left, on, False


@njit(cache=True)
def _rle_inter_union(dc: np.ndarray, gc: np.ndarray) -> tuple[int, int]:
    """Walk two RLEs of the same size in lockstep; return (intersection, union) pixel counts."""
    ca = dc[0]
    cb = gc[0]
    va = False
    vb = False
    a = 1
    b = 1
    inter = 0
    union = 0
    ct = 1
    while ct > 0:
        c = min(ca, cb)
        if va or vb:
            union += c
            if va and vb:
                inter += c
        a, ca, va, moved_a = _advance(dc, a, ca, va, c)
        b, cb, vb, moved_b = _advance(gc, b, cb, vb, c)
        ct = ca + cb
        if c == 0 and not (moved_a or moved_b):  # malformed (totals differ): stop instead of spinning
            break
    return inter, union


@njit(cache=True, nogil=True)
def rle_iou_groups(
    dt_counts: np.ndarray,
    dt_offsets: np.ndarray,
    dt_heights: np.ndarray,
    dt_widths: np.ndarray,
    dt_bbox: np.ndarray,
    dt_area: np.ndarray,
    gt_counts: np.ndarray,
    gt_offsets: np.ndarray,
    gt_heights: np.ndarray,
    gt_widths: np.ndarray,
    gt_bbox: np.ndarray,
    gt_crowd: np.ndarray,
    grp_dt_ptr: np.ndarray,
    grp_dt_idx: np.ndarray,
    grp_gt_ptr: np.ndarray,
    grp_gt_idx: np.ndarray,
    out_ptr: np.ndarray,
    out: np.ndarray,
    lo: int,
    hi: int,
) -> None:
    """Mask IoU of every (detection, ground truth) pair inside groups ``lo <= g < hi``,
    ``maskUtils.iou`` (groups are independent: callers run ranges of them on threads).

    Group ``g`` pairs the detections ``grp_dt_idx[grp_dt_ptr[g]:grp_dt_ptr[g+1]]`` with the
    ground truths ``grp_gt_idx[grp_gt_ptr[g]:grp_gt_ptr[g+1]]``; its ``D x G`` row-major block
    is written at ``out[out_ptr[g]:]``. ``dt_bbox`` / ``gt_bbox`` are the masks' ``rleToBbox``
    boxes (a cheap pre-filter, as in ``rleIou``) and ``dt_area`` their pixel areas. A crowd
    ground truth uses the detection area as the union. A pair of masks of different sizes gets
    ``-1`` (the caller raises); an empty mask has IoU 0 with everything. ``out`` is
    zero-filled by the caller (pairs whose boxes do not overlap are not written).
    """
    for g in range(lo, hi):
        d0 = grp_dt_ptr[g]
        nd = grp_dt_ptr[g + 1] - d0
        g0 = grp_gt_ptr[g]
        ng = grp_gt_ptr[g + 1] - g0
        base = out_ptr[g]
        for jj in range(ng):
            j = grp_gt_idx[g0 + jj]
            crowd = gt_crowd[j]
            for dd in range(nd):
                d = grp_dt_idx[d0 + dd]
                k = base + dd * ng + jj
                if dt_heights[d] != gt_heights[j] or dt_widths[d] != gt_widths[j]:
                    out[k] = -1.0
                    continue
                if _bbox_iou(dt_bbox[d], gt_bbox[j], crowd) <= 0.0:
                    continue
                inter, union = _rle_inter_union(
                    dt_counts[dt_offsets[d] : dt_offsets[d + 1]],
                    gt_counts[gt_offsets[j] : gt_offsets[j + 1]],
                )
                if inter == 0:
                    continue
                if crowd:
                    union = dt_area[d]
                out[k] = np.float64(inter) / np.float64(union)


def rle_iou_matrix(
    dt_counts: np.ndarray,
    dt_offsets: np.ndarray,
    dt_heights: np.ndarray,
    dt_widths: np.ndarray,
    gt_counts: np.ndarray,
    gt_offsets: np.ndarray,
    gt_heights: np.ndarray,
    gt_widths: np.ndarray,
    gt_crowd: np.ndarray | None = None,
) -> np.ndarray:
    """``D x G`` IoU matrix of two RLE batches (``maskUtils.iou(dt, gt, iscrowd)`` semantics).

    Entries for masks of different sizes are ``-1``: the caller decides how to fail.
    """
    dt_counts, gt_counts = _writeable(dt_counts, np.uint32), _writeable(gt_counts, np.uint32)
    dt_offsets, gt_offsets = _writeable(dt_offsets, np.int64), _writeable(gt_offsets, np.int64)
    dt_heights, dt_widths = _writeable(dt_heights, np.int64), _writeable(dt_widths, np.int64)
    gt_heights, gt_widths = _writeable(gt_heights, np.int64), _writeable(gt_widths, np.int64)
    nd = dt_offsets.size - 1
    ng = gt_offsets.size - 1
    if gt_crowd is None:
        gt_crowd = np.zeros(ng, np.bool_)
    dt_bbox = rle_to_bbox(dt_counts, dt_offsets, dt_heights, dt_widths)
    gt_bbox = rle_to_bbox(gt_counts, gt_offsets, gt_heights, gt_widths)
    dt_area = rle_area(dt_counts, dt_offsets)
    out = np.zeros(nd * ng, np.float64)
    rle_iou_groups(
        dt_counts, dt_offsets, dt_heights, dt_widths, dt_bbox, dt_area,
        gt_counts, gt_offsets, gt_heights, gt_widths, gt_bbox,
        _writeable(gt_crowd, np.bool_),
        np.array([0, nd], np.int64), np.arange(nd, dtype=np.int64),
        np.array([0, ng], np.int64), np.arange(ng, dtype=np.int64),
        np.array([0, nd * ng], np.int64), out, 0, 1,
    )  # fmt: skip
    return out.reshape(nd, ng)


# --- rasterization ----------------------------------------------------------------------------
@njit(cache=True)
def _poly_bound(xy: np.ndarray) -> int:
    """Upper bound on the number of runs ``_rle_fr_poly`` can emit for this polygon."""
    k = xy.size // 2
    if k == 0:
        return 1
    bound = 1
    x0 = int(_SCALE * xy[0] + 0.5)
    xprev = x0
    for j in range(1, k + 1):
        xj = int(_SCALE * xy[2 * j] + 0.5) if j < k else x0
        bound += abs(xj - xprev) // 5 + 1  # kept x-steps per edge: one per 5 upsampled columns
        xprev = xj
    return bound


@njit(cache=True)
def _rle_fr_poly(xy: np.ndarray, h: int, w: int, out: np.ndarray) -> int:
    """``rleFrPoly``: rasterize one polygon into ``out``; return the number of counts."""
    k = xy.size // 2
    x = np.empty(k + 1, np.int64)
    y = np.empty(k + 1, np.int64)
    for j in range(k):
        x[j] = int(_SCALE * xy[2 * j] + 0.5)  # C (int) cast: truncation toward zero
        y[j] = int(_SCALE * xy[2 * j + 1] + 0.5)
    if k > 0:
        x[k] = x[0]
        y[k] = y[0]
    m = 0
    for j in range(k):
        m += max(abs(x[j] - x[j + 1]), abs(y[j] - y[j + 1])) + 1
    u = np.empty(m, np.int64)
    v = np.empty(m, np.int64)
    m = 0
    for j in range(k):
        xs = x[j]
        xe = x[j + 1]
        ys = y[j]
        ye = y[j + 1]
        dx = abs(xe - xs)
        dy = abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe = xe, xs
            ys, ye = ye, ys
        if dx == 0 and dy == 0:
            # C computes 0/0 here; the point's v is never read (its neighbours share its u)
            u[m] = xs
            v[m] = ys
            m += 1
            continue
        if dx >= dy:
            s = np.float64(ye - ys) / dx
            for d in range(dx + 1):
                t = dx - d if flip else d
                u[m] = t + xs
                v[m] = int(ys + s * t + 0.5)
                m += 1
        else:
            s = np.float64(xe - xs) / dy
            for d in range(dy + 1):
                t = dy - d if flip else d
                v[m] = t + ys
                u[m] = int(xs + s * t + 0.5)
                m += 1
    # points where the boundary crosses a pixel-column centre, downsampled
    kk = m
    a = np.empty(kk + 1, np.int64)
    na = 0
    for j in range(1, kk):
        if u[j] != u[j - 1]:
            xd = np.float64(u[j] if u[j] < u[j - 1] else u[j] - 1)
            xd = (xd + 0.5) / _SCALE - 0.5
            if np.floor(xd) != xd or xd < 0 or xd > w - 1:
                continue
            yd = np.float64(v[j] if v[j] < v[j - 1] else v[j - 1])
            yd = (yd + 0.5) / _SCALE - 0.5
            if yd < 0:
                yd = 0.0
            elif yd > h:
                yd = np.float64(h)
            yd = np.ceil(yd)
            a[na] = int(xd) * h + int(yd)
            na += 1
    a[na] = h * w
    na += 1
    a = np.sort(a[:na])
    p = 0
    for j in range(na):
        t = a[j]
        a[j] -= p
        p = t
    # drop zero-length runs by merging their neighbours
    j = 0
    mo = 0
    out[mo] = a[j]
    mo += 1
    j += 1
    while j < na:
        if a[j] > 0:
            out[mo] = a[j]
            mo += 1
            j += 1
        else:
            j += 1
            if j < na:
                out[mo - 1] += a[j]
                j += 1
    return mo


@njit(cache=True)
def _rle_merge_union(ac: np.ndarray, bc: np.ndarray, out: np.ndarray) -> int:
    """``rleMerge`` of two masks with ``intersect=0``; write counts to ``out``, return length."""
    ca = ac[0]
    cb = bc[0]
    v = False
    va = False
    vb = False
    m = 0
    a = 1
    b = 1
    cc = 0
    ct = 1
    while ct > 0:
        c = min(ca, cb)
        cc += c
        a, ca, va, moved_a = _advance(ac, a, ca, va, c)
        b, cb, vb, moved_b = _advance(bc, b, cb, vb, c)
        ct = ca + cb
        vp = v
        v = va or vb
        if v != vp or ct == 0:
            out[m] = cc
            m += 1
            cc = 0
        if c == 0 and not (moved_a or moved_b) and ct > 0:  # malformed input: stop instead of spinning
            out[m] = cc
            m += 1
            break
    return m


@njit(cache=True, nogil=True)
def _polys_to_rle_chunk(
    coords: np.ndarray,
    poly_ptr: np.ndarray,
    obj_ptr: np.ndarray,
    heights: np.ndarray,
    widths: np.ndarray,
    base: int,
    slot_ptr: np.ndarray,
    slots: np.ndarray,
    lengths: np.ndarray,
    lo: int,
    hi: int,
) -> None:
    """Rasterize objects ``base + ii`` for ``lo <= ii < hi`` into their slots (objects are
    independent: callers run ranges of them on threads)."""
    for ii in range(lo, hi):
        i = base + ii
        h = heights[i]
        w = widths[i]
        p0 = obj_ptr[i]
        p1 = obj_ptr[i + 1]
        dst = slots[slot_ptr[ii] : slot_ptr[ii + 1]]
        if p1 == p0:
            dst[0] = h * w  # no polygon: an empty mask (rleMerge of nothing has size 0 in C)
            lengths[ii] = 1
            continue
        n = _rle_fr_poly(coords[poly_ptr[p0] : poly_ptr[p0 + 1]], h, w, dst)
        if p1 - p0 == 1:
            lengths[ii] = n
            continue
        cur = dst[:n].copy()
        for p in range(p0 + 1, p1):
            xy = coords[poly_ptr[p] : poly_ptr[p + 1]]
            tmp = np.empty(_poly_bound(xy), np.int64)
            nb = _rle_fr_poly(xy, h, w, tmp)
            merged = np.empty(cur.size + nb + 1, np.int64)
            nm = _rle_merge_union(cur, tmp[:nb], merged)
            cur = merged[:nm]
        for q in range(cur.size):  # explicit loop: parfors mis-sizes a slice copy here
            dst[q] = cur[q]
        lengths[ii] = cur.size


@njit(cache=True)
def _poly_bounds(coords: np.ndarray, poly_ptr: np.ndarray, obj_ptr: np.ndarray) -> np.ndarray:
    n = obj_ptr.size - 1
    out = np.zeros(n, np.int64)
    for i in range(n):
        s = 1
        for p in range(obj_ptr[i], obj_ptr[i + 1]):
            s += _poly_bound(coords[poly_ptr[p] : poly_ptr[p + 1]])
        out[i] = s
    return out


@njit(cache=True, nogil=True)
def _compact(slots: np.ndarray, slot_ptr: np.ndarray, lengths: np.ndarray, out: np.ndarray,
             out_ptr: np.ndarray, lo: int, hi: int) -> None:
    for i in range(lo, hi):
        s = slot_ptr[i]
        o = out_ptr[i]
        for j in range(lengths[i]):
            out[o + j] = slots[s + j]


def rle_from_polygons(
    coords: np.ndarray,
    poly_ptr: np.ndarray,
    obj_ptr: np.ndarray,
    heights: np.ndarray,
    widths: np.ndarray,
    chunk: int = 16384,
    run=_serial,
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterize polygon objects to RLE exactly like ``frPyObjects`` + ``merge`` of pycocotools.

    Parameters
    ----------
    coords : float64 array
        All polygons' ``x0, y0, x1, y1, ...`` concatenated.
    poly_ptr : int64 array
        Polygon ``p`` is ``coords[poly_ptr[p]:poly_ptr[p + 1]]`` (an odd trailing value is
        ignored, as in pycocotools).
    obj_ptr : int64 array
        Object ``i`` is the union of polygons ``obj_ptr[i]:obj_ptr[i + 1]``.
    heights, widths : int64 arrays
        Image size of each object.
    run : callable
        ``run(kernel, args, cum_work)`` calls a range kernel over every unit: serially by
        default, on threads with ``polars_metrics._parallel.run_ranges``.

    Returns
    -------
    counts : uint32 array, offsets : int64 array
        The CSR batch of RLE masks, counts identical to pycocotools' (for polygons reaching
        far outside their image, see :func:`clip_to_images`).
    """
    coords = _writeable(coords, np.float64)
    poly_ptr = _writeable(poly_ptr, np.int64)
    obj_ptr = _writeable(obj_ptr, np.int64)
    heights = _writeable(heights, np.int64)
    widths = _writeable(widths, np.int64)
    if coords.size and not np.isfinite(coords).all():
        raise ValueError("rle_from_polygons: polygon coordinates must be finite")
    coords, poly_ptr = clip_to_images(coords, poly_ptr, obj_ptr, heights, widths)
    n = obj_ptr.size - 1
    bounds = _poly_bounds(coords, poly_ptr, obj_ptr)
    lengths = np.zeros(n, np.int64)
    parts: list[np.ndarray] = []
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        slot_ptr = np.zeros(hi - lo + 1, np.int64)
        np.cumsum(bounds[lo:hi], out=slot_ptr[1:])
        slots = np.empty(slot_ptr[-1], np.int64)
        ln = lengths[lo:hi]
        run(_polys_to_rle_chunk, (coords, poly_ptr, obj_ptr, heights, widths, lo, slot_ptr, slots,
                                  ln), slot_ptr)
        out_ptr = np.zeros(hi - lo + 1, np.int64)
        np.cumsum(ln, out=out_ptr[1:])
        out = np.empty(out_ptr[-1], np.int64)
        run(_compact, (slots, slot_ptr, ln, out, out_ptr), out_ptr)
        parts.append(out)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    counts = np.concatenate(parts).astype(np.uint32) if parts else np.zeros(0, np.uint32)
    return counts, offsets


def rle_from_boxes(
    xywh: np.ndarray, heights: np.ndarray, widths: np.ndarray, run=_serial
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterize ``x, y, w, h`` boxes like ``rleFrBbox`` (a 4-point polygon each)."""
    b = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    xs, ys = b[:, 0], b[:, 1]
    xe, ye = xs + b[:, 2], ys + b[:, 3]
    coords = np.stack([xs, ys, xs, ye, xe, ye, xe, ys], axis=1).ravel()
    n = b.shape[0]
    ptr = np.arange(n + 1, dtype=np.int64)
    return rle_from_polygons(coords, ptr * 8, ptr, heights, widths, run=run)


# --- compressed strings -------------------------------------------------------------------------
MAX_RUN_CHARS = 7  # 35 bits: any uint32 count, or a delta between two, fits (pycocotools' long)
MAX_COUNT = 0xFFFFFFFF


@njit(cache=True, nogil=True)
def _string_lengths(buf: np.ndarray, str_ptr: np.ndarray, out: np.ndarray, lo: int,
                    hi: int) -> None:
    """Counts per string: one per char without the continuation bit, plus one for a string
    that ends inside a run (an unterminated run is still written by the decoder, which then
    flags it: the allocation must hold it). Strings ``lo <= i < hi``."""
    for i in range(lo, hi):
        c = 0
        for p in range(str_ptr[i], str_ptr[i + 1]):
            if ((buf[p] - 48) & 0x20) == 0:  # a char without the continuation bit ends a count
                c += 1
        if str_ptr[i + 1] > str_ptr[i] and ((buf[str_ptr[i + 1] - 1] - 48) & 0x20) != 0:
            c += 1
        out[i] = c


@njit(cache=True, nogil=True)
def _decode_strings(buf: np.ndarray, str_ptr: np.ndarray, offsets: np.ndarray,
                    counts: np.ndarray, bad: np.ndarray, lo: int, hi: int) -> None:
    """Decode every string into ``counts[offsets[i]:offsets[i + 1]]``; ``bad[i]`` = 1 when the
    string is not a valid COCO RLE: a character outside '0'..'o', a run of more than
    ``MAX_RUN_CHARS`` characters, a string ending inside a run, or a decoded count that is
    negative or above 2**32 - 1. Never writes outside string i's slice. Strings
    ``lo <= i < hi``."""
    for i in range(lo, hi):
        p = str_ptr[i]
        end = str_ptr[i + 1]
        m = 0
        o = offsets[i]
        room = offsets[i + 1] - o
        flag = 0
        while p < end and m < room:
            x = np.int64(0)
            k = 0
            more = True
            while more and p < end:
                c = np.int64(buf[p]) - 48
                if c < 0 or c > 63:
                    flag = 1
                if k < MAX_RUN_CHARS:
                    x |= (c & 0x1F) << (5 * k)
                else:
                    flag = 1  # too long: the shift would leave 64 bits
                more = (c & 0x20) != 0
                p += 1
                k += 1
                if not more and (c & 0x10) != 0 and k <= MAX_RUN_CHARS:
                    x |= np.int64(-1) << (5 * k)  # sign-extend a negative delta
            if more:
                flag = 1  # the string ended inside a run
            if m > 2:
                x += np.int64(counts[o + m - 2])
            if x < 0 or x > MAX_COUNT:
                flag = 1
                x = 0
            counts[o + m] = np.uint32(x)
            m += 1
        if p < end or m != room:
            flag = 1  # cannot happen with offsets from _string_lengths; never trusted
        bad[i] = flag


def rle_decode_strings(buf: np.ndarray, str_ptr: np.ndarray,
                       run=_serial) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode compressed COCO RLE strings (``rleFrString``) to a CSR batch of counts.

    ``buf`` holds all strings' bytes (uint8) back to back; string ``i`` is
    ``buf[str_ptr[i]:str_ptr[i + 1]]``. Returns ``(counts, offsets, bad)``: ``bad[i]`` is True
    when string ``i`` is malformed (see ``_decode_strings``); its counts are then meaningless
    and the caller must reject the row. ``str_ptr`` is checked (monotone, within ``buf``).
    ``run`` as in :func:`rle_from_polygons`.
    """
    buf = _writeable(buf, np.uint8)  # one numba specialization: never a read-only view
    str_ptr = _writeable(str_ptr, np.int64)
    if str_ptr.size == 0 or str_ptr[0] < 0 or str_ptr[-1] > buf.size or (np.diff(str_ptr) < 0).any():
        raise ValueError("rle_decode_strings: str_ptr must be monotone offsets into buf")
    lengths = np.zeros(str_ptr.size - 1, np.int64)
    run(_string_lengths, (buf, str_ptr, lengths), str_ptr)
    offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    counts = np.empty(offsets[-1], np.uint32)
    bad = np.zeros(lengths.size, np.uint8)
    run(_decode_strings, (buf, str_ptr, offsets, counts, bad), str_ptr)
    return counts, offsets, bad.astype(bool)


@njit(cache=True)
def _encode_one(counts: np.ndarray, lo: int, hi: int, out: np.ndarray, o: int) -> int:
    p = o
    for i in range(hi - lo):
        x = np.int64(counts[lo + i])
        if i > 2:
            x -= np.int64(counts[lo + i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift, as on a C long
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out[p] = c + 48
            p += 1
    return p - o


@njit(cache=True, nogil=True)
def _encoded_lengths(counts: np.ndarray, offsets: np.ndarray, out: np.ndarray, lo: int,
                     hi: int) -> None:
    for i in range(lo, hi):
        scratch = np.empty(7 * (offsets[i + 1] - offsets[i]) + 1, np.uint8)
        out[i] = _encode_one(counts, offsets[i], offsets[i + 1], scratch, 0)


@njit(cache=True, nogil=True)
def _encode_strings(counts: np.ndarray, offsets: np.ndarray, str_ptr: np.ndarray,
                    buf: np.ndarray, lo: int, hi: int) -> None:
    for i in range(lo, hi):
        _encode_one(counts, offsets[i], offsets[i + 1], buf, str_ptr[i])


def rle_encode_strings(counts: np.ndarray, offsets: np.ndarray,
                       run=_serial) -> tuple[np.ndarray, np.ndarray]:
    """Encode a CSR batch of counts to compressed COCO strings (``rleToString``).

    Returns the bytes of all strings back to back (uint8) and their ``str_ptr`` offsets.
    ``run`` as in :func:`rle_from_polygons`.
    """
    counts = _writeable(counts, np.uint32)
    offsets = _writeable(offsets, np.int64)
    lengths = np.zeros(offsets.size - 1, np.int64)
    run(_encoded_lengths, (counts, offsets, lengths), offsets)
    str_ptr = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=str_ptr[1:])
    buf = np.empty(str_ptr[-1], np.uint8)
    run(_encode_strings, (counts, offsets, str_ptr, buf), offsets)
    return buf, str_ptr


@njit(cache=True, parallel=True)
def rle_decode_dense(counts: np.ndarray, offsets: np.ndarray, size: int) -> np.ndarray:
    """Expand masks of one size (``h * w`` pixels) to a column-major uint8 array ``(n, size)``."""
    n = offsets.size - 1
    out = np.zeros((n, size), np.uint8)
    for i in prange(n):
        p = 0
        v = 0
        for j in range(offsets[i], offsets[i + 1]):
            c = counts[j]
            if v:
                out[i, p : min(p + c, size)] = 1
            p += c
            v = 1 - v
    return out


@njit(cache=True, parallel=True)
def _dense_run_counts(dense: np.ndarray) -> np.ndarray:
    n = dense.shape[0]
    out = np.zeros(n, np.int64)
    for i in prange(n):
        k = 1
        p = 0
        for j in range(dense.shape[1]):
            v = 1 if dense[i, j] else 0
            if v != p:
                k += 1
                p = v
        out[i] = k
    return out


@njit(cache=True, parallel=True)
def _dense_fill(dense: np.ndarray, offsets: np.ndarray, counts: np.ndarray) -> None:
    for i in prange(dense.shape[0]):
        o = offsets[i]
        p = 0
        c = 0
        for j in range(dense.shape[1]):
            v = 1 if dense[i, j] else 0
            if v != p:
                counts[o] = c
                o += 1
                c = 0
                p = v
            c += 1
        counts[o] = c


def rle_encode_dense(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rleEncode``: masks of one size as ``(n, h * w)`` column-major rows (nonzero = inside)
    to a CSR batch of counts (the first run counts zeros, so it may be 0)."""
    dense = _writeable(np.asarray(dense).reshape(len(dense), -1), np.uint8)
    lengths = _dense_run_counts(dense)
    offsets = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    counts = np.empty(offsets[-1], np.uint32)
    _dense_fill(dense, offsets, counts)
    return counts, offsets
