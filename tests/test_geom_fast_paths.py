"""The fast point and line paths give the same numbers as the paths they replace, exactly:

- segment buffers made by ``_kernels.line_buffer`` are shapely's ``LineString.buffer`` bit for
  bit (where ``kinds.line.segment_kernel_lines`` sends segments to the kernel), and
  ``kinds.line.buffer_lines`` equals shapely for every line (the rest go to shapely);
- ``_kernels.convex_clip.clip_area_fast`` returns ``polygon.clip_area``'s float, not a close one,
  on disc pairs, segment buffers and random convex polygons;
- pairs of single segments made per data row (``_kernels.line_pairs``) equal the pairs of the
  shapely buffers, also for segments about two radii apart (where it skips pairs whose segments
  are farther apart than that without clipping);
- whole evaluations (cube, confusion, data rows) equal those of the previous path (shapely
  buffers, the O(n m) clipping kernels), compared frame for frame.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import shapely
from polars.testing import assert_frame_equal

import polars_metrics as pm
from polars_metrics._kernels import convex_clip as KC
from polars_metrics._kernels import polygon as KP
from polars_metrics.kinds import _planar as P
from polars_metrics.kinds import _planar_threads as T
from polars_metrics.kinds import line as line_kind
from polars_metrics.kinds import point as point_kind


def _segments(n: int, rng, log_ratio=(-2.0, 2.0)):
    """Random segments (p0, p1) and radii: lengths 10**log_ratio radii, any direction (a fifth
    axis-aligned or diagonal), coordinates up to 1e7 and a third rounded to 2 decimals."""
    p0 = rng.uniform(-1, 1, (n, 2)) * rng.choice([1.0, 500.0, 1e4, 1e7], (n, 1))
    radius = rng.choice([70.0, 1.0, 5.5, 1000.0, 0.3, 123.456], n)
    length = 10 ** rng.uniform(*log_ratio, n) * radius
    ang = rng.uniform(-np.pi, np.pi, n)
    special = rng.random(n) < 0.2
    ang[special] = rng.choice([0, np.pi / 2, np.pi, -np.pi / 2, np.pi / 4, -3 * np.pi / 4],
                              special.sum())
    p1 = p0 + length[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)
    rnd = rng.random(n) < 0.3
    p0[rnd], p1[rnd] = np.round(p0[rnd], 2), np.round(p1[rnd], 2)
    return p0, p1, radius


def _shapely_rings(coords, off, radius):
    return P.from_shapely(shapely.buffer(
        shapely.from_ragged_array(shapely.GeometryType.LINESTRING, coords, (off,)), radius,
        quad_segs=16))


def _ring(sh: P.Shapes, g: int) -> np.ndarray:
    assert sh.geom_off[g + 1] - sh.geom_off[g] == 1
    part = sh.geom_off[g]
    assert sh.part_off[part + 1] - sh.part_off[part] == 1
    ring = sh.part_off[part]
    return sh.coords[sh.ring_off[ring]:sh.ring_off[ring + 1]]


@pytest.mark.parametrize("seed", [0, 1])
def test_segment_buffers_are_shapely_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    p0, p1, radii = _segments(3000, rng)
    checked = 0
    for radius in np.unique(radii):
        m = radii == radius
        coords = np.ascontiguousarray(np.stack([p0[m], p1[m]], 1).reshape(-1, 2))
        off = np.arange(m.sum() + 1, dtype=np.int64) * 2
        fast = line_kind.segment_kernel_lines(coords, off, float(radius))
        pts, ring_off = T.segment_buffers(coords, off, fast, float(radius))
        ref = _shapely_rings(coords, off, float(radius))
        for k, g in enumerate(fast):
            mine = pts[ring_off[k]:ring_off[k + 1]]
            want = _ring(ref, int(g))
            assert mine.shape == want.shape and np.array_equal(mine, want), (coords[2 * g:2 * g + 2], radius)
            checked += 1
    assert checked > 2500  # segments at least 0.01 radius long: nearly all of them


def test_buffer_lines_equals_shapely_for_every_line():
    """Mixed batches: kernel segments, short segments, degenerate and multi-point lines (shapely)."""
    rng = np.random.default_rng(7)
    p0, p1, _ = _segments(400, rng, log_ratio=(-5.0, 1.5))
    lines = [np.stack([a, b]) for a, b in zip(p0, p1, strict=True)]
    lines += [np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 1.0], [9.0, 4.0]])]
    lines += [np.cumsum(rng.normal(0, 30, (int(rng.integers(3, 9)), 2)), axis=0) for _ in range(60)]
    order = rng.permutation(len(lines))
    lines = [lines[i] for i in order]
    coords = np.ascontiguousarray(np.concatenate(lines))
    off = np.concatenate([[0], np.cumsum([len(x) for x in lines])]).astype(np.int64)
    for radius in (70.0, 3.0):
        got = line_kind.buffer_lines(coords, off, radius)
        want = _shapely_rings(coords, off, radius)
        for name in ("coords", "ring_off", "part_off", "geom_off"):
            assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert 0 < line_kind.segment_kernel_lines(coords, off, 70.0).size < len(lines)


def test_segment_kernel_lines_against_a_per_line_rule():
    """The lines sent to the kernel, by a plain loop over the rule (two distinct points at least
    MIN_SEGMENT radii apart, coordinates within MAX_EXTENT radii): tables of single segments
    (strided views) and mixed tables (gathers)."""
    rng = np.random.default_rng(17)
    p0, p1, _ = _segments(3000, rng, log_ratio=(-4.0, 2.0))
    p0[::50] *= 1e3  # some beyond MAX_EXTENT radii
    segs = [np.stack([a, b]) for a, b in zip(p0, p1, strict=True)]
    segs[::97] = [np.array([[3.0, 4.0], [3.0, 4.0]])] * len(segs[::97])
    mixed = segs[:1000] + [np.array([[0.0, 0.0], [80.0, 0.0], [90.0, 5.0]])] + segs[1000:]
    for lines in (segs, mixed):
        coords = np.ascontiguousarray(np.concatenate(lines))
        off = np.concatenate([[0], np.cumsum([len(x) for x in lines])]).astype(np.int64)
        for radius in (70.0, 0.3):
            want = [i for i, x in enumerate(lines) if len(x) == 2
                    and np.sqrt(((x[1] - x[0]) ** 2).sum()) >= line_kind.MIN_SEGMENT * radius
                    and np.abs(x).max() <= line_kind.MAX_EXTENT * radius]
            got = line_kind.segment_kernel_lines(coords, off, radius)
            assert got.tolist() == want
            assert 0 < len(want) < len(lines)


def _clip_both(sx, sy, qx, qy, orient, ccx, ccy, cr):
    n, m = sx.shape[0], qx.shape[0]
    cap = 2 * (n + m) + 8
    buf = np.empty((4, cap))
    scratch = (np.empty(cap), np.empty(cap), np.empty(cap, np.int64), np.empty(cap, np.int64))
    old = KP.clip_area(sx, sy, n, qx, qy, m, orient, ccx, ccy, cr, buf)
    new = KC.clip_area_fast(sx, sy, n, qx, qy, m, orient, ccx, ccy, cr, buf, *scratch)
    return old, new


def test_fast_clip_equals_clip_area_on_discs():
    rng = np.random.default_rng(3)
    ox, oy = point_kind.disc_offsets(70.0)
    nonzero = 0
    for k in range(3000):
        a = rng.uniform(-300, 300, 2) * (1e6 if k % 3 == 0 else 1.0)
        dist = rng.choice([rng.uniform(0, 145), 0.0, 1.0, 70.0, 139.9, 140.0])
        ang = rng.choice([rng.uniform(-np.pi, np.pi), 0.0, np.pi / 2, np.pi / 4, np.pi / 64])
        b = a + dist * np.array([np.cos(ang), np.sin(ang)])
        if k % 5 == 0:
            a, b = np.round(a), np.round(b)
        old, new = _clip_both(a[0] + ox, a[1] + oy, b[0] + ox, b[1] + oy, -1, a[0], a[1],
                              70.0 * (1.0 + 1e-12))
        assert old == new, (a, b, old, new)
        nonzero += old > 0
    assert nonzero > 1500


def _convex(rng) -> np.ndarray:
    c = rng.uniform(-100, 100, 2) * (1e5 if rng.random() < 0.1 else 1.0)
    if rng.random() < 0.5:  # a segment buffer
        length, ang = rng.uniform(1, 300), rng.uniform(-np.pi, np.pi)
        seg = np.array([c, c + length * np.array([np.cos(ang), np.sin(ang)])])
        pts, _ = T.segment_buffers(seg, np.array([0, 2]), np.array([0]), float(rng.choice([5.0, 70.0])))
        return pts
    pts = c + rng.normal(0, 50, (int(rng.integers(3, 40)), 2))
    if rng.random() < 0.3:
        pts = np.round(pts)
    hull = np.array(shapely.convex_hull(shapely.multipoints(pts)).exterior.coords)[:-1]
    hull = hull[::-1] if rng.random() < 0.5 else hull
    return np.roll(hull, int(rng.integers(0, len(hull))), axis=0)


def test_fast_clip_equals_clip_area_on_convex_polygons():
    rng = np.random.default_rng(11)
    compared = 0
    for _ in range(2500):
        a = _convex(rng)
        b = _convex(rng)
        b = a.copy() if rng.random() < 0.05 else b - b.mean(0) + a.mean(0) + rng.normal(0, 40, 2)
        orient = int(KP._convex_sign(np.ascontiguousarray(b), 0, len(b)))
        if orient == 0:
            continue
        cx, cy = (a.min(0) + a.max(0)) / 2
        cr = np.sqrt(((a - [cx, cy]) ** 2).sum(1)).max() * (1 + 1e-12) + 1e-300
        old, new = _clip_both(*(np.ascontiguousarray(v) for v in (a[:, 0], a[:, 1], b[:, 0], b[:, 1])),
                              orient, cx, cy, cr)
        assert old == new
        compared += 1
    assert compared > 2000


def _data(kind: str, n_images: int, seed: int):
    """Synthetic detections as points (box centres) or lines (box diagonals)."""
    gt, pd = pm.synthetic.detections(n_images, seed=seed, fp_per_image=6.0, duplicates_per_gt=1.0)

    def geom(frame):
        b = frame["bbox"].to_numpy()
        if kind == "point":
            col = pl.Series("point", np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1))
            col = col.cast(pm.POINT_DTYPE)
        else:
            xy = np.stack([np.stack([b[:, 0], b[:, 1]], 1), np.stack([b[:, 2], b[:, 3]], 1)], 1)
            col = pl.Series("line", xy).cast(pm.LINE_DTYPE)
        return frame.drop("bbox").with_columns(col)

    return geom(gt), geom(pd)


def _frames(gt, pd, **kw):
    ev = pm.evaluate(gt, pd, **kw)
    return ev.cube, ev.confusion, ev.data_rows


def test_fused_segment_pairs_equal_buffered_pairs():
    """``_kernels.line_pairs`` (buffers made per data row, never kept) gives row_pairs' arrays
    on the shapely buffers, exactly."""
    rng = np.random.default_rng(5)
    n_rows = 10
    pts = []
    for _ in range(2):
        n = int(rng.integers(60, 200))
        row = np.sort(rng.integers(0, n_rows, n))
        p0 = rng.uniform(0, 400, (n, 2))
        p1 = p0 + rng.normal(0, 80, (n, 2))
        p1[::17] = p0[::17] + 1.0  # short segments
        coords = np.ascontiguousarray(np.stack([p0, p1], 1).reshape(-1, 2))
        pts.append((coords, np.arange(n + 1, dtype=np.int64) * 2,
                    np.searchsorted(row, np.arange(n_rows + 1)).astype(np.int64)))
    (ca, oa, go), (cb, ob, po) = pts
    for radius in (70.0, 12.0):
        fused = T.segment_pairs(ca, oa, go, cb, ob, po, radius)
        ref = P.row_pairs(_shapely_rings(ca, oa, radius), go, _shapely_rings(cb, ob, radius), po)
        assert fused is not None and len(fused[1]) > 100
        for got, want in zip(fused, ref, strict=True):
            assert np.array_equal(got, want)


def _near_pairs(rng, n_rows: int, per_row: int, radius: float):
    """gt segments and pd segments placed about ``2 radius`` from them (the gap at which the
    buffers start to touch): parallel sides, end to end, at an angle, crossing; some far from
    the origin or rounded."""
    gt, pd = [], []
    for _ in range(n_rows * per_row):
        c = rng.uniform(0, 600, 2) + (rng.choice([0.0, 1e6]) * np.ones(2))
        u = rng.normal(size=2)
        u /= np.linalg.norm(u)
        nrm = np.array([-u[1], u[0]])
        length = rng.uniform(0.05, 8.0) * radius
        a0, a1 = c, c + length * u
        gap = 2.0 * radius * (1.0 + rng.choice([-1e-3, -1e-6, -1e-9, 0.0, 1e-9, 1e-7, 2e-6,
                                                  1e-5, 1e-3, 0.05, rng.uniform(-0.5, 0.5)]))
        how = rng.integers(0, 4)
        if how == 0:    # parallel, beside
            b0, b1 = a0 + gap * nrm, a1 + gap * nrm + rng.normal(0, 1e-3, 2)
        elif how == 1:  # end to end on one line
            b0 = a1 + gap * u
            b1 = b0 + rng.uniform(0.05, 8.0) * radius * u
        elif how == 2:  # from a point beside the segment, at an angle
            b0 = a0 + 0.5 * length * u + gap * nrm
            v = rng.normal(size=2)
            b1 = b0 + rng.uniform(0.05, 8.0) * radius * np.sign(v @ nrm) * v / np.linalg.norm(v)
        else:           # long segments crossing anywhere
            m = a0 + rng.uniform(0, 1) * length * u
            v = rng.normal(size=2)
            v /= np.linalg.norm(v)
            b0, b1 = m - rng.uniform(0, 20) * radius * v, m + rng.uniform(0, 20) * radius * v
        if rng.random() < 0.2:
            a0, a1, b0, b1 = (np.round(x, 2) for x in (a0, a1, b0, b1))
        gt.append((a0, a1))
        pd.append((b0, b1))
    row_off = np.arange(n_rows + 1, dtype=np.int64) * per_row

    def table(segs):
        coords = np.ascontiguousarray(np.array(segs, np.float64).reshape(-1, 2))
        return coords, np.arange(len(segs) + 1, dtype=np.int64) * 2, row_off

    return table(gt), table(pd)


def _segment_gap2(ca, cb):
    """Squared distances between every gt segment and every pd segment (numpy; crossing: 0)."""
    a0, a1, b0, b1 = ca[0::2][:, None], ca[1::2][:, None], cb[0::2][None], cb[1::2][None]

    def to_seg(p, q0, q1):
        d = q1 - q0
        t = np.clip(((p - q0) * d).sum(-1) / (d * d).sum(-1), 0, 1)
        return (((q0 + t[..., None] * d) - p) ** 2).sum(-1)

    def side(p, q0, q1):
        return np.sign((q1 - q0)[..., 0] * (p - q0)[..., 1] - (q1 - q0)[..., 1] * (p - q0)[..., 0])

    cross = (side(b0, a0, a1) * side(b1, a0, a1) < 0) & (side(a0, b0, b1) * side(a1, b0, b1) < 0)
    d2 = np.minimum.reduce([to_seg(a0, b0, b1), to_seg(a1, b0, b1), to_seg(b0, a0, a1),
                            to_seg(b1, a0, a1)])
    return np.where(cross, 0.0, d2)


@pytest.mark.parametrize("radius", [70.0, 0.7])
def test_segment_pairs_near_touching_equal_buffered_pairs(radius):
    """Segments about ``2 radius`` apart, where ``line_pairs`` skips pairs whose segments are
    farther apart than ``2 radius`` (plus a margin) without clipping: the pairs and IoUs are
    still those of the shapely buffers, and the skip is taken (pairs whose bounding boxes
    overlap but whose segments are apart)."""
    rng = np.random.default_rng(13)
    (ca, oa, go), (cb, ob, po) = _near_pairs(rng, 40, 12, radius)
    fused = T.segment_pairs(ca, oa, go, cb, ob, po, radius)
    ref = P.row_pairs(_shapely_rings(ca, oa, radius), go, _shapely_rings(cb, ob, radius), po)
    assert fused is not None
    for got, want in zip(fused, ref, strict=True):
        assert np.array_equal(got, want)
    # the skip is exercised: same-row pairs whose buffers' boxes overlap, segments > 2 r apart
    gap2 = _segment_gap2(ca, cb)
    lo = np.minimum(ca[0::2], ca[1::2]) - radius, np.minimum(cb[0::2], cb[1::2]) - radius
    hi = np.maximum(ca[0::2], ca[1::2]) + radius, np.maximum(cb[0::2], cb[1::2]) + radius
    boxes = ((np.minimum(hi[0][:, None], hi[1][None]) - np.maximum(lo[0][:, None], lo[1][None]))
             > 0).all(-1)
    row = np.repeat(np.arange(len(go) - 1), 12)
    same = row[:, None] == row[None]
    skipped = same & boxes & (gap2 > (2 * radius * (1 + 1e-6)) ** 2)
    assert skipped.sum() > 100
    kept = set(zip(ref[1].tolist(), ref[2].tolist(), strict=True))
    assert not any((g, p) in kept for g, p in zip(*np.nonzero(skipped), strict=True))
    # and pairs barely closer than 2 r (buffers overlapping by a sliver) are found: a skip
    # with no margin, or one of 1e-6 below 2 r, would drop some
    assert (gap2[ref[1], ref[2]] > (2 * radius * (1 - 1e-3)) ** 2).sum() > 5
    assert (gap2[ref[1], ref[2]] > (2 * radius * (1 - 1e-6)) ** 2).sum() > 0


@pytest.mark.parametrize("kind", ["point", "line"])
@pytest.mark.parametrize("profile", [None, "labelbox-sdk"])
def test_whole_evaluations_equal_the_previous_paths(kind, profile, monkeypatch):
    gt, pd = _data(kind, 120, seed=4)
    if kind == "line":  # some multi-point lines and short segments go the shapely way
        extra = pl.Series("line", [[[5.0, 5.0], [60.0, 80.0], [120.0, 40.0]], [[10.0, 10.0], [10.1, 10.0]]],
                          dtype=pm.LINE_DTYPE)
        gt = gt.with_columns(pl.when(pl.int_range(pl.len()) < 2).then(extra.extend(
            pl.Series([None] * (gt.height - 2), dtype=pm.LINE_DTYPE))).otherwise(pl.col("line")).alias("line"))
    kw = {} if profile is None else {"profile": profile}
    fast = _frames(gt, pd, **kw)
    monkeypatch.setattr(line_kind, "buffer_lines", P.buffered_lines)   # shapely buffers
    monkeypatch.setattr(T, "segment_pairs", lambda *a: None)            # no fused segment pairs
    monkeypatch.setattr(T, "KC", T.K)                                   # polygon.fill_candidates
    monkeypatch.setattr(point_kind, "KC", point_kind.K)                 # disc.fill_disc_pairs
    before = _frames(gt, pd, **kw)
    for got, want in zip(fast, before, strict=True):
        assert_frame_equal(got, want, check_exact=True)
    assert fast[0]["tp"].sum() > 0 if "tp" in fast[0].columns else True
