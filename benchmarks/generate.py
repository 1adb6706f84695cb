"""Seeded synthetic detection data for the benchmark ladder.

Two layouts:

* ``"random"`` (the benchmark data): ~7 ground truths per image (Poisson), boxes anywhere in a
  640x480 image; predictions are a detector-like dump of ~94 boxes per image on average —
  one tight jittered copy per detected ground truth (high confidence, 5% label flips), loose
  duplicates (lower confidence) and random false positives (low confidence).
* ``"isolated"`` (a parity fixture): the image is cut into an 8x6 grid of 80x80 cells; every
  ground truth sits alone in its cell with at most one prediction, false positives sit in cells
  without a ground truth. Every box overlaps at most one box of the other side, so the matching
  is unique and every matching algorithm (IoU-ordered, score-ordered, class-first) must give
  the same confusion matrix.

Exactness on purpose: coordinates are multiples of 1/64 pixel and confidences multiples of
2^-20, so float32 peers (supervision) see the same inputs as float64 ones, and the IoU
``inter / union`` is the correctly rounded quotient of exactly computed areas — bit-identical
in every implementation that uses the textbook formula.

Everything is vectorized numpy (no Python per image), so 100,000 images take seconds.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

WIDTH, HEIGHT = 640.0, 480.0
COORD_STEP = 1.0 / 64.0  # exact in float32 and float64; keeps areas exact
SCORE_STEP = 2.0**-20  # exact in float32; no threshold of the 0.1 grid falls between rounding
BBOX_DTYPE = pl.Array(pl.Float64, 4)
LADDER = (500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000)
DATA_DIR = Path(__file__).resolve().parent / "data"

Layout = Literal["random", "isolated"]


@dataclass(frozen=True)
class GeneratorConfig:
    """Knobs of the generator; the defaults give 5,000 images ≈ 35k gts and ≈ 471k predictions."""

    n_classes: int = 80
    gt_per_image: float = 7.0  # Poisson mean
    detect_rate: float = 0.9  # a ground truth gets its tight copy with this probability
    flip_rate: float = 0.05  # the tight copy carries another class
    duplicates_per_gt: float = 2.0  # Poisson mean of loose copies per ground truth
    fp_per_image: float = 73.9  # Poisson mean of random boxes; 0.9*7 + 2*7 + 73.9 = 94.2
    empty_prediction_rate: float = 0.005  # images for which the model returned nothing
    tight_jitter: float = 0.07  # edge noise as a fraction of the box size
    loose_jitter: float = 0.2
    class_skew: float = 0.6  # class prior ∝ 1 / (k + 1) ** skew (long tail like COCO)
    layout: Layout = "random"


# The isolated fixture: more flips (off-diagonal cells get exercised), no duplicates.
ISOLATED = GeneratorConfig(
    detect_rate=0.85, flip_rate=0.15, duplicates_per_gt=0.0, fp_per_image=10.0, layout="isolated"
)

GRID_COLS, GRID_ROWS, CELL = 8, 6, 80.0


@dataclass(frozen=True)
class Dataset:
    ground_truth: pl.DataFrame
    predictions: pl.DataFrame
    classes: tuple[str, ...]
    n_images: int
    seed: int
    config: GeneratorConfig

    def stats(self) -> dict[str, float]:
        """Counts a reader can compare with the brief (and the smoke test asserts on)."""
        per_image_pd = self.predictions.group_by("data_row").len()["len"]
        return {
            "images": self.n_images,
            "ground_truths": self.ground_truth.height,
            "predictions": self.predictions.height,
            "gt_per_image": self.ground_truth.height / self.n_images,
            "pd_per_image": self.predictions.height / self.n_images,
            "max_pd_per_image": int(per_image_pd.max() or 0),
            "classes_seen": int(
                pl.concat([self.ground_truth["feature"], self.predictions["feature"]]).n_unique()
            ),
        }


def class_names(n_classes: int) -> tuple[str, ...]:
    return tuple(f"class_{k:02d}" for k in range(n_classes))


def _quantize(x: np.ndarray, step: float) -> np.ndarray:
    return np.round(x / step) * step


def _random_sizes(
    rng: np.random.Generator, n: int, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    # log-normal scale and aspect ratio: many small objects, a few large (COCO-like)
    scale = np.exp(rng.normal(np.log(60.0), 0.8, n))
    aspect = np.exp(rng.normal(0.0, 0.4, n))
    w = np.clip(scale * np.sqrt(aspect), lo, hi)
    h = np.clip(scale / np.sqrt(aspect), lo, hi)
    return w, h


def _boxes_in(
    rng: np.random.Generator,
    w: np.ndarray,
    h: np.ndarray,
    x_lo: np.ndarray,
    y_lo: np.ndarray,
    x_hi: np.ndarray,
    y_hi: np.ndarray,
) -> np.ndarray:
    """Boxes of size (w, h) placed uniformly inside the given regions, snapped to the grid."""
    w = np.minimum(w, x_hi - x_lo)
    h = np.minimum(h, y_hi - y_lo)
    x0 = x_lo + rng.random(w.size) * (x_hi - x_lo - w)
    y0 = y_lo + rng.random(h.size) * (y_hi - y_lo - h)
    x0, y0 = _quantize(x0, COORD_STEP), _quantize(y0, COORD_STEP)
    x1 = np.minimum(_quantize(x0 + w, COORD_STEP), x_hi)
    y1 = np.minimum(_quantize(y0 + h, COORD_STEP), y_hi)
    # never a zero-area box (they are a separate edge case, not benchmark material)
    x1 = np.maximum(x1, x0 + COORD_STEP)
    y1 = np.maximum(y1, y0 + COORD_STEP)
    return np.stack([x0, y0, x1, y1], axis=1)


def _jitter(
    rng: np.random.Generator, boxes: np.ndarray, sigma: float, bounds: np.ndarray
) -> np.ndarray:
    """Move each edge by N(0, sigma * size), clip into ``bounds`` (x_lo, y_lo, x_hi, y_hi)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    noise = rng.normal(0.0, sigma, boxes.shape) * np.stack([w, h, w, h], axis=1)
    out = _quantize(boxes + noise, COORD_STEP)
    out[:, 0] = np.clip(out[:, 0], bounds[:, 0], bounds[:, 2] - COORD_STEP)
    out[:, 1] = np.clip(out[:, 1], bounds[:, 1], bounds[:, 3] - COORD_STEP)
    out[:, 2] = np.clip(out[:, 2], out[:, 0] + COORD_STEP, bounds[:, 2])
    out[:, 3] = np.clip(out[:, 3], out[:, 1] + COORD_STEP, bounds[:, 3])
    return out


def _scores(rng: np.random.Generator, a: float, b: float, n: int) -> np.ndarray:
    # never 0: valor-lite silently drops score <= 1e-9 predictions, we keep them at c = 0
    return np.clip(_quantize(rng.beta(a, b, n), SCORE_STEP), SCORE_STEP, 1.0)


def generate(n_images: int, *, seed: int = 0, config: GeneratorConfig | None = None) -> Dataset:
    """Generate ``n_images`` images of ground truth and predictions (data rows 1..n).

    Rows are sorted by data row; inside a data row predictions are in random order (not by
    score), so tie rules that depend on input order are exercised.
    """
    cfg = config or GeneratorConfig()
    rng = np.random.default_rng([seed, n_images, 0 if cfg.layout == "random" else 1])
    classes = class_names(cfg.n_classes)
    prior = 1.0 / np.arange(1, cfg.n_classes + 1) ** cfg.class_skew
    prior /= prior.sum()

    n_cells = GRID_COLS * GRID_ROWS
    n_gt_img = rng.poisson(cfg.gt_per_image, n_images)
    if cfg.layout == "isolated":
        n_gt_img = np.minimum(n_gt_img, n_cells // 2)
    gt_img = np.repeat(np.arange(n_images), n_gt_img)
    n_gt = gt_img.size
    gt_cls = rng.choice(cfg.n_classes, n_gt, p=prior)

    if cfg.layout == "random":
        w, h = _random_sizes(rng, n_gt, 4.0, 400.0)
        zeros = np.zeros(n_gt)
        gt_bounds = np.stack([zeros, zeros, zeros + WIDTH, zeros + HEIGHT], axis=1)
    else:
        # a random permutation of cells per image: the first n_gt_img cells hold ground truths
        cell_perm = np.argsort(rng.random((n_images, n_cells)), axis=1)
        rank = np.arange(n_gt) - np.repeat(np.cumsum(n_gt_img) - n_gt_img, n_gt_img)
        gt_cell = cell_perm[gt_img, rank]
        gt_bounds = _cell_bounds(gt_cell)
        w = rng.uniform(16.0, 64.0, n_gt)
        h = rng.uniform(16.0, 64.0, n_gt)
    gt_box = _boxes_in(rng, w, h, *gt_bounds.T)

    # --- predictions -----------------------------------------------------------------------
    has_pd_img = rng.random(n_images) >= cfg.empty_prediction_rate
    # tight copies
    det = (rng.random(n_gt) < cfg.detect_rate) & has_pd_img[gt_img]
    tight_src = np.flatnonzero(det)
    tight_box = _jitter(rng, gt_box[tight_src], cfg.tight_jitter, gt_bounds[tight_src])
    tight_cls = gt_cls[tight_src].copy()
    flip = rng.random(tight_src.size) < cfg.flip_rate
    tight_cls[flip] = (tight_cls[flip] + rng.integers(1, cfg.n_classes, flip.sum())) % cfg.n_classes
    tight_score = _scores(rng, 6.0, 2.0, tight_src.size)
    # loose duplicates (random layout only: they would break the one-to-one fixture)
    n_dup = rng.poisson(cfg.duplicates_per_gt, n_gt) * has_pd_img[gt_img]
    dup_src = np.repeat(np.arange(n_gt), n_dup)
    dup_box = _jitter(rng, gt_box[dup_src], cfg.loose_jitter, gt_bounds[dup_src])
    dup_cls = gt_cls[dup_src].copy()
    dflip = rng.random(dup_src.size) < cfg.flip_rate * 2
    dup_cls[dflip] = rng.choice(cfg.n_classes, dflip.sum(), p=prior)
    dup_score = _scores(rng, 2.0, 4.0, dup_src.size)
    # false positives
    n_fp_img = rng.poisson(cfg.fp_per_image, n_images) * has_pd_img
    fp_img = np.repeat(np.arange(n_images), n_fp_img)
    if cfg.layout == "random":
        fw, fh = _random_sizes(rng, fp_img.size, 4.0, 400.0)
        zeros = np.zeros(fp_img.size)
        fp_bounds = np.stack([zeros, zeros, zeros + WIDTH, zeros + HEIGHT], axis=1)
    else:
        # any cell that holds no ground truth of that image
        free = n_cells - n_gt_img[fp_img]
        pick = n_gt_img[fp_img] + (rng.random(fp_img.size) * free).astype(np.int64)
        fp_bounds = _cell_bounds(cell_perm[fp_img, pick])
        fw = rng.uniform(16.0, 64.0, fp_img.size)
        fh = rng.uniform(16.0, 64.0, fp_img.size)
    fp_box = _boxes_in(rng, fw, fh, *fp_bounds.T)
    fp_cls = rng.choice(cfg.n_classes, fp_img.size, p=prior)
    fp_score = _scores(rng, 1.2, 8.0, fp_img.size)

    pd_img = np.concatenate([gt_img[tight_src], gt_img[dup_src], fp_img])
    pd_box = np.concatenate([tight_box, dup_box, fp_box])
    pd_cls = np.concatenate([tight_cls, dup_cls, fp_cls])
    pd_score = np.concatenate([tight_score, dup_score, fp_score])
    # sort by image, random order inside an image
    order = np.lexsort((rng.random(pd_img.size), pd_img))
    pd_img, pd_box, pd_cls, pd_score = pd_img[order], pd_box[order], pd_cls[order], pd_score[order]

    names = pl.Series("feature", classes, dtype=pl.String)
    ground_truth = pl.DataFrame(
        {
            "data_row": (gt_img + 1).astype(np.int64),
            "id": np.arange(1, n_gt + 1, dtype=np.int64),
            "feature": names.gather(gt_cls),
            "bbox": pl.Series("bbox", gt_box, dtype=BBOX_DTYPE),
        }
    )
    predictions = pl.DataFrame(
        {
            "data_row": (pd_img + 1).astype(np.int64),
            "id": np.arange(1, pd_img.size + 1, dtype=np.int64),
            "feature": names.gather(pd_cls),
            "bbox": pl.Series("bbox", pd_box, dtype=BBOX_DTYPE),
            "confidence": pd_score.astype(np.float64),
        }
    )
    return Dataset(ground_truth, predictions, classes, n_images, seed, cfg)


def _cell_bounds(cell: np.ndarray) -> np.ndarray:
    x_lo = (cell % GRID_COLS) * CELL
    y_lo = (cell // GRID_COLS) * CELL
    return np.stack([x_lo, y_lo, x_lo + CELL, y_lo + CELL], axis=1).astype(np.float64)


# --- Parquet cache ----------------------------------------------------------------------------


def dataset_dir(n_images: int, root: Path = DATA_DIR) -> Path:
    return root / str(n_images)


def write_parquet(ds: Dataset, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ds.ground_truth.write_parquet(directory / "ground_truth.parquet")
    ds.predictions.write_parquet(directory / "predictions.parquet")
    meta = {
        "n_images": ds.n_images,
        "seed": ds.seed,
        "config": asdict(ds.config),
        "stats": ds.stats(),
    }
    (directory / "meta.json").write_text(json.dumps(meta, indent=2))


def read_parquet(directory: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Load both tables fully into memory (the benchmark times evaluation, not I/O)."""
    return (
        pl.read_parquet(directory / "ground_truth.parquet"),
        pl.read_parquet(directory / "predictions.parquet"),
    )


def ensure_dataset(
    n_images: int, *, seed: int = 0, config: GeneratorConfig | None = None, root: Path = DATA_DIR
) -> Path:
    """Write the Parquet files for this size unless an identical (same seed/config) copy exists."""
    cfg = config or GeneratorConfig()
    directory = dataset_dir(n_images, root)
    meta_path = directory / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("seed") == seed and meta.get("config") == asdict(cfg):
            return directory
    write_parquet(generate(n_images, seed=seed, config=cfg), directory)
    return directory


def isolated(n_images: int, *, seed: int = 0) -> Dataset:
    """The one-to-one parity fixture (see module docstring)."""
    return generate(n_images, seed=seed, config=ISOLATED)


def with_config(**changes: object) -> GeneratorConfig:
    return replace(GeneratorConfig(), **changes)  # type: ignore[arg-type]


# --- COCO JSON --------------------------------------------------------------------------------


def write_coco(
    ground_truth: pl.DataFrame,
    predictions: pl.DataFrame,
    classes: tuple[str, ...],
    gt_path: Path,
    results_path: Path,
    n_images: int | None = None,
) -> None:
    """Write the same data as a COCO ground-truth file and a COCO results file.

    Image ids are the data rows; category ids are 1-based positions in ``classes``; boxes are
    ``[x, y, w, h]`` with ``area = w * h`` and ``iscrowd = 0``.
    """
    cat_ids = pl.DataFrame(
        {"feature": list(classes), "category_id": np.arange(1, len(classes) + 1)}
    )
    n = (
        n_images
        if n_images is not None
        else int(max(ground_truth["data_row"].max() or 0, predictions["data_row"].max() or 0))
    )
    images = pl.DataFrame(
        {"id": np.arange(1, n + 1), "width": int(WIDTH), "height": int(HEIGHT)}
    ).with_columns(file_name=pl.format("{}.jpg", pl.col("id")))

    def xywh(df: pl.DataFrame) -> pl.DataFrame:
        b = pl.col("bbox").arr
        return df.join(cat_ids, on="feature", how="left").with_columns(
            x=b.get(0), y=b.get(1), w=b.get(2) - b.get(0), h=b.get(3) - b.get(1)
        )

    g = xywh(ground_truth).select(
        "id",
        image_id="data_row",
        category_id="category_id",
        bbox=pl.concat_list("x", "y", "w", "h"),
        area=pl.col("w") * pl.col("h"),
        iscrowd=pl.lit(0),
    )
    categories = cat_ids.select(id="category_id", name="feature")
    gt_path.parent.mkdir(parents=True, exist_ok=True)
    gt_path.write_text(
        '{"images":'
        + images.write_json()
        + ',"categories":'
        + categories.write_json()
        + ',"annotations":'
        + g.write_json()
        + "}"
    )
    r = xywh(predictions).select(
        image_id="data_row",
        category_id="category_id",
        bbox=pl.concat_list("x", "y", "w", "h"),
        score="confidence",
    )
    results_path.write_text(r.write_json())


# --- Large datasets, written in a streaming way -----------------------------------------------

STREAM_CHUNK = 50_000  # images generated (and held) at a time


def write_partitioned(n_images: int, directory: Path, *, seed: int = 0,
                      chunk: int = STREAM_CHUNK, config: GeneratorConfig | None = None) -> Path:
    """Write ``n_images`` images as ``directory/{ground_truth,predictions}/part-NNNNN.parquet``,
    ``chunk`` images at a time (memory bounded by one chunk, whatever ``n_images``).

    Chunk ``k`` is :func:`generate` with seed ``(seed, k)`` and its data rows and ids shifted
    past the earlier chunks', so the dataset is the same for every run with the same arguments.
    A finished dataset has ``meta.json``; an identical one is not written again. An interrupted
    write resumes: each part is written to a temporary name and renamed, and a part already
    there is kept (its row count, read from the Parquet footer, shifts the later chunks' ids).
    The same holds for parts of a smaller dataset with the same seed and chunk placed (or hard
    linked) here first: its chunks are the first chunks of this one, byte for byte.
    """
    cfg = config or GeneratorConfig()
    meta = {"n_images": n_images, "seed": seed, "chunk": chunk, "config": asdict(cfg)}
    meta_path = directory / "meta.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).get("config") == meta["config"] \
            and {k: v for k, v in json.loads(meta_path.read_text()).items() if k != "stats"} \
            == meta:
        return directory
    for sub in ("ground_truth", "predictions"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    next_gt = next_pd = 1
    n_gt = n_pd = 0
    for k, start in enumerate(range(0, n_images, chunk)):
        paths = [directory / sub / f"part-{k:05d}.parquet" for sub in ("ground_truth", "predictions")]
        if all(p.exists() for p in paths):
            heights = [pl.scan_parquet(p).select(pl.len()).collect().item() for p in paths]
        else:
            n = min(chunk, n_images - start)
            ds = generate(n, seed=seed * 1_000_003 + k, config=cfg)
            gt = ds.ground_truth.with_columns(pl.col("data_row") + start,
                                              pl.col("id") + (next_gt - 1))
            pd = ds.predictions.with_columns(pl.col("data_row") + start,
                                             pl.col("id") + (next_pd - 1))
            for frame, path in zip((gt, pd), paths, strict=True):
                tmp = path.with_suffix(".tmp")
                frame.write_parquet(tmp)
                os.replace(tmp, path)
            heights = [gt.height, pd.height]
            del ds, gt, pd
        next_gt += heights[0]
        next_pd += heights[1]
        n_gt, n_pd = n_gt + heights[0], n_pd + heights[1]
    meta["stats"] = {"ground_truths": n_gt, "predictions": n_pd}
    meta_path.write_text(json.dumps(meta, indent=2))
    return directory
