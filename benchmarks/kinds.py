"""Per-kind IoU throughput (pairs/s) against the obvious alternative, on the same pairs.

``python -m benchmarks.kinds [--scale 1.0] [--repeat 5]`` prints a markdown table;
``run_kinds_benchmark()`` returns its rows. Every case checks parity with the alternative
before timing (a fast wrong answer fails, it does not win), and reports the minimum of
``repeat`` warm runs (the machine may be shared) after one warm-up run (numba compile).

| case | ours | alternative |
|---|---|---|
| convex polygons | numba clipping (``kinds._planar.row_pairs``) | shapely ``intersection`` + ``union`` areas, vectorized |
| general polygons | bbox prefilter + shapely ``intersection`` area, a + b - i | same as above |
| points | 64-gon discs clipped in numba (``kinds.point.disc_pairs``) | shapely ``buffer(70)`` + ``intersection`` + ``union`` |
| lines | shapely ``buffer`` (vectorized) + the polygon path | shapely ``buffer(70)`` + ``intersection`` + ``union`` |
| masks | RLE kernel (``_kernels.rle_pairs``) | ``pycocotools.mask.iou`` per image (D × G) |
| spans | numba kernel (``_kernels.span``) | — (target ≥ 50 M pairs/s) |

Ours starts from the Polars columns (geometry parsing included); the shapely alternative starts
from prebuilt geometry arrays (construction not timed) except for points and lines, where the
buffering is part of the work (timed on both sides).
"""
from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable

import numba
import numpy as np
import polars as pl
import shapely

from polars_metrics import schema as s
from polars_metrics._kernels import span as span_kernels
from polars_metrics._kernels.disc import CIRCLE, POLYGON
from polars_metrics.kinds import _planar as P
from polars_metrics.kinds.mask import _Batch, block_ious
from polars_metrics.kinds.point import disc_pairs

TARGETS = {  # speed-up over the alternative, or absolute pairs/s
    "convex polygons": ("speedup", 10.0),
    "general polygons": ("speedup", 1.0),
    "masks (RLE)": ("speedup", 2.0),
    "spans": ("pairs/s", 50e6),
}


def _best(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: numba compile, caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _aligned_offsets(n: int) -> np.ndarray:
    return np.arange(n + 1, dtype=np.int64)


def _shapely_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = shapely.area(shapely.intersection(a, b))
    union = shapely.area(shapely.union(a, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _dense(off, g, p, v, n):
    out = np.zeros(n)
    out[g] = v  # aligned rows: pair k is (k, k)
    return out


def _row(case: str, n_pairs: int, t_ours: float, t_alt: float | None, alt: str, err: float) -> dict:
    row = {"case": case, "pairs": n_pairs, "ours_pairs_per_s": n_pairs / t_ours,
           "alternative": alt, "alt_pairs_per_s": None if t_alt is None else n_pairs / t_alt,
           "speedup": None if t_alt is None else t_alt / t_ours, "max_abs_diff": err,
           "threads": numba.get_num_threads()}
    kind, target = TARGETS.get(case, (None, None))
    if kind == "speedup":
        row["target"] = f">= {target:g}x"
        row["meets_target"] = row["speedup"] >= target
    elif kind == "pairs/s":
        row["target"] = f">= {target / 1e6:g} M pairs/s"
        row["meets_target"] = row["ours_pairs_per_s"] >= target
    return row


# --- polygons -------------------------------------------------------------------------------------
def _rings(rng, n: int, k: int, convex: bool, jitter: float = 4.0):
    c = rng.uniform(0, 1000, (n, 2))
    if convex:
        ang = np.sort(rng.uniform(0, 2 * np.pi, (n, k)), axis=1)
        r = rng.uniform(10, 30, (n, 1))
    else:
        ang = np.tile(np.linspace(0, 2 * np.pi, k, endpoint=False), (n, 1))
        r = rng.uniform(10, 30, (n, 1)) * rng.uniform(0.4, 1.0, (n, k))
    a = np.stack([c[:, :1] + r * np.cos(ang), c[:, 1:] + r * np.sin(ang)], axis=2)
    # the prediction: the same shape scaled and shifted (stays convex / simple)
    scale = rng.uniform(0.8, 1.2, (n, 1, 1))
    b = (a - c[:, None, :]) * scale + c[:, None, :] + rng.normal(0, jitter, (n, 1, 2))
    return a, b


def _polygon_series(rings: np.ndarray, holes: np.ndarray | None = None) -> pl.Series:
    values = [[r.tolist()] if holes is None else [r.tolist(), h.tolist()]
              for r, h in zip(rings, holes if holes is not None else rings, strict=True)]
    return pl.Series(s.POLYGON, values, dtype=s.POLYGON_DTYPE)


def bench_polygons(n: int, repeat: int, *, convex: bool, k: int, holes: bool = False, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    a, b = _rings(rng, n, k, convex)
    ha = hb = None
    if holes:
        ha = (a - a.mean(axis=1, keepdims=True)) * 0.3 + a.mean(axis=1, keepdims=True)
        hb = (b - b.mean(axis=1, keepdims=True)) * 0.3 + b.mean(axis=1, keepdims=True)
        ha, hb = ha[:, ::-1], hb[:, ::-1]
    sa, sb = _polygon_series(a, ha), _polygon_series(b, hb)
    ga = shapely.polygons(a) if not holes else shapely.polygons(shapely.linearrings(a), holes=ha[:, None])
    gb = shapely.polygons(b) if not holes else shapely.polygons(shapely.linearrings(b), holes=hb[:, None])
    assert shapely.is_valid(ga).all() and shapely.is_valid(gb).all()
    off = _aligned_offsets(n)

    def ours():
        return P.row_pairs(P.from_series(sa), off, P.from_series(sb), off)

    ref = _shapely_iou(ga, gb)
    got = _dense(*ours(), n)
    err = float(np.abs(got - ref).max())
    assert err <= 1e-9, f"polygon parity failed: {err}"
    t_ours = _best(ours, repeat)
    t_alt = _best(lambda: _shapely_iou(ga, gb), repeat)
    label = "convex polygons" if convex else "general polygons"
    row = _row(label, n, t_ours, t_alt, "shapely intersection + union (prebuilt)", err)
    row["detail"] = f"{k}-gons" + (" with a hole" if holes else "")
    return row


# --- points and lines -----------------------------------------------------------------------------
def bench_points(n: int, repeat: int, *, how: str = "buffer", seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 10000, (n, 2))
    b = a + rng.normal(0, 40, (n, 2))
    off = _aligned_offsets(n)
    mode = POLYGON if how == "buffer" else CIRCLE

    def ours():
        return disc_pairs(a, off, b, off, 70.0, mode)

    def alternative():
        return _shapely_iou(shapely.buffer(shapely.points(a), 70.0, quad_segs=16),
                            shapely.buffer(shapely.points(b), 70.0, quad_segs=16))

    got = _dense(*ours(), n)
    if how == "buffer":
        ref = alternative()
    else:
        d = np.hypot(*(a - b).T)
        lens = 2 * 70.0**2 * np.arccos(np.minimum(d / 140, 1)) - d / 2 * np.sqrt(np.maximum(140**2 - d * d, 0))
        ref = np.where(d < 140, lens / (2 * math.pi * 70.0**2 - lens), 0.0)
    err = float(np.abs(got - ref).max())
    assert err <= 1e-9, f"point parity failed: {err}"
    t_ours = _best(ours, repeat)
    t_alt = _best(alternative, repeat)
    row = _row("points" if how == "buffer" else "points (circle)", n, t_ours, t_alt,
               "shapely buffer(70) + intersection + union", err)
    row["detail"] = "64-gon discs" if how == "buffer" else "exact circles vs shapely 64-gons (not parity)"
    return row


def bench_lines(n: int, repeat: int, *, k: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 10000, (n, 1, 2))
    a = start + np.cumsum(rng.normal(0, 60, (n, k, 2)), axis=1)
    b = a + rng.normal(0, 20, (n, 1, 2))
    sa = pl.Series(s.LINE, a.tolist(), dtype=s.LINE_DTYPE)
    sb = pl.Series(s.LINE, b.tolist(), dtype=s.LINE_DTYPE)
    off = _aligned_offsets(n)

    def ours():
        return P.row_pairs(P.buffered_lines(*P.lines_from_series(sa), 70.0), off,
                           P.buffered_lines(*P.lines_from_series(sb), 70.0), off)

    la, lb = shapely.linestrings(a), shapely.linestrings(b)

    def alternative():
        return _shapely_iou(shapely.buffer(la, 70.0, quad_segs=16), shapely.buffer(lb, 70.0, quad_segs=16))

    err = float(np.abs(_dense(*ours(), n) - alternative()).max())
    assert err <= 1e-9, f"line parity failed: {err}"
    t_ours = _best(ours, repeat)
    t_alt = _best(alternative, repeat)
    row = _row("lines", n, t_ours, t_alt, "shapely buffer(70) + intersection + union", err)
    row["detail"] = f"{k}-point polylines"
    return row


# --- masks ----------------------------------------------------------------------------------------
def _blob_masks(rng, n: int, h: int, w: int) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(10, h / 4), rng.uniform(10, w / 4)
        out.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)
    return out


def bench_masks(n_images: int, per_image: int, repeat: int, *, h: int = 240, w: int = 320, seed: int = 0) -> dict:
    from pycocotools import mask as mask_api

    from polars_metrics.kinds.mask import masks_from_arrays

    rng = np.random.default_rng(seed)
    gt_dense = _blob_masks(rng, n_images * per_image, h, w)
    pd_dense = [np.roll(m, (int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), axis=(0, 1)) for m in gt_dense]
    sg, sp = masks_from_arrays(gt_dense), masks_from_arrays(pd_dense)
    off = np.arange(0, n_images * per_image + 1, per_image, dtype=np.int64)
    coco_g = [mask_api.encode(np.asfortranarray(m.astype(np.uint8))) for m in gt_dense]
    coco_p = [mask_api.encode(np.asfortranarray(m.astype(np.uint8))) for m in pd_dense]
    crowd = [0] * per_image

    def ours():
        a, b = _Batch(sg), _Batch(sp)
        return block_ious(a, b, off, off)

    def alternative():
        return [mask_api.iou(coco_p[i * per_image:(i + 1) * per_image],
                             coco_g[i * per_image:(i + 1) * per_image], crowd) for i in range(n_images)]

    _, got = ours()
    ref = np.concatenate([np.asarray(m).T.ravel() for m in alternative()])  # gt-major like ours
    err = float(np.abs(got - ref).max())
    assert err <= 1e-12, f"mask parity failed: {err}"
    t_ours = _best(ours, repeat)
    t_alt = _best(alternative, repeat)
    n_pairs = n_images * per_image * per_image
    row = _row("masks (RLE)", n_pairs, t_ours, t_alt, "pycocotools.mask.iou per image", err)
    row["detail"] = f"{n_images} images {h}x{w}, {per_image}x{per_image} masks each"
    return row


# --- spans ----------------------------------------------------------------------------------------
def bench_spans(n_rows: int, per_row: int, repeat: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = n_rows * per_row
    gs = rng.integers(0, 2000, n).astype(np.int64)
    ge = gs + rng.integers(0, 30, n)
    ps = np.clip(gs + rng.integers(-10, 10, n), 0, None).astype(np.int64)
    pe = ps + rng.integers(0, 30, n)
    msg = np.zeros(n, np.int64)
    off = np.arange(0, n + 1, per_row, dtype=np.int64)

    def ours():
        return span_kernels.span_pairs(gs, ge, msg, off, ps, pe, msg, off)

    # parity on a sample of rows against the plain formula
    _, g, p, v = ours()
    k = min(g.shape[0], 20000)
    inter = np.maximum(0, np.minimum(ge[g[:k]], pe[p[:k]]) - np.maximum(gs[g[:k]], ps[p[:k]]))
    union = np.maximum(ge[g[:k]], pe[p[:k]]) - np.minimum(gs[g[:k]], ps[p[:k]])
    ref = np.where(union == 0, 1.0, inter / np.maximum(union, 1))
    err = float(np.abs(v[:k] - ref).max()) if k else 0.0
    assert err == 0.0, f"span parity failed: {err}"
    t_ours = _best(ours, repeat)
    row = _row("spans", n_rows * per_row * per_row, t_ours, None, "—", err)
    row["detail"] = f"{n_rows} rows, {per_row}x{per_row} spans each (all pairs evaluated)"
    return row


def run_kinds_benchmark(scale: float = 1.0, repeat: int = 5) -> list[dict]:
    """Pairs/s per kind, ours vs the alternative on the same pairs (parity checked first)."""
    def sz(n: int) -> int:
        return max(10, int(n * scale))

    return [
        bench_polygons(sz(200_000), repeat, convex=True, k=4),
        bench_polygons(sz(100_000), repeat, convex=True, k=12),
        bench_polygons(sz(50_000), repeat, convex=False, k=12),
        bench_polygons(sz(50_000), repeat, convex=False, k=8, holes=True),
        bench_points(sz(100_000), repeat),
        bench_points(sz(100_000), repeat, how="circle"),
        bench_lines(sz(30_000), repeat),
        bench_masks(sz(200), 10, repeat),
        bench_spans(sz(200_000), 10, repeat),
    ]


def format_table(rows: list[dict]) -> str:
    lines = ["| case | detail | pairs | ours (pairs/s) | alternative | alt (pairs/s) | speed-up | target | max abs diff |",
             "|---|---|---:|---:|---|---:|---:|---|---:|"]
    for r in rows:
        alt = "—" if r["alt_pairs_per_s"] is None else f"{r['alt_pairs_per_s']:,.0f}"
        speed = "—" if r["speedup"] is None else f"{r['speedup']:.1f}x"
        target = r.get("target", "")
        if target:
            target += " ✓" if r["meets_target"] else " ✗"
        lines.append(f"| {r['case']} | {r.get('detail', '')} | {r['pairs']:,} | {r['ours_pairs_per_s']:,.0f} | "
                     f"{r['alternative']} | {alt} | {speed} | {target} | {r['max_abs_diff']:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.kinds", description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every problem size")
    ap.add_argument("--repeat", type=int, default=5, help="warm repetitions (the minimum is reported)")
    args = ap.parse_args(argv)
    rows = run_kinds_benchmark(args.scale, args.repeat)
    print(f"numba threads: {numba.get_num_threads()}, cpus: {os.cpu_count()}, "
          f"load average: {os.getloadavg()[0]:.1f}")
    print(format_table(rows))


if __name__ == "__main__":
    main()
