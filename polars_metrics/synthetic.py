"""Seeded synthetic object-detection data for demos, notebooks and quick experiments.

:func:`detections` returns a ground-truth and a prediction table in the engine's input schema,
shaped like the output of a real detector before non-maximum suppression is tuned:

* ground truth: a Poisson number of boxes per image (mean ``gt_per_image``), COCO-like sizes
  and a long-tailed class prior (the first class is the most frequent, as ``person`` in COCO);
* predictions: a jittered copy of most ground truths (each class has its own difficulty, which
  raises its miss rate, its jitter and its label-flip rate) whose confidence grows with the
  copy's IoU; loose duplicates with lower confidence; random false-positive boxes with low
  confidence; and label flips, mostly to a *confusable* class (``cat`` ↔ ``dog``,
  ``car`` ↔ ``truck``, ...: :data:`CONFUSABLE`) so the confusion matrix has readable
  off-diagonal cells;
* a ``split`` column ("train" / "val" / "test") constant per data row, on both tables, to
  try ``evaluate(..., by="split")``.

Everything is vectorized numpy: no Python loop per image (100,000 images take seconds).

Examples
--------
>>> import polars_metrics as pm
>>> gt, pd = pm.synthetic.detections(n_images=3, seed=1)
>>> gt.columns, pd.columns
(['data_row', 'split', 'id', 'feature', 'bbox'], ['data_row', 'split', 'id', 'feature', 'bbox', 'confidence'])
>>> gt["data_row"].unique().sort().to_list()
['img_000001', 'img_000002', 'img_000003']
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import polars as pl

from polars_metrics import schema as s

__all__ = ["COCO_CLASSES", "CONFUSABLE", "class_names", "confusable_codes", "detections"]

SPLIT = "split"
DEFAULT_SPLITS: tuple[tuple[str, float], ...] = (("train", 0.7), ("val", 0.15), ("test", 0.15))

# The 80 COCO object categories, in COCO order.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)

# The class a detector most often mistakes each class for (a flipped label goes here mostly).
# ``person`` has none: its rare flips spread over all classes.
CONFUSABLE: dict[str, str] = {
    "bicycle": "motorcycle", "car": "truck", "motorcycle": "bicycle",
    "airplane": "kite", "bus": "train", "train": "bus", "truck": "car", "boat": "surfboard",
    "traffic light": "stop sign", "fire hydrant": "parking meter", "stop sign": "traffic light",
    "parking meter": "fire hydrant", "bench": "chair", "bird": "airplane", "cat": "dog",
    "dog": "cat", "horse": "zebra", "sheep": "cow", "cow": "sheep", "elephant": "bear",
    "bear": "elephant", "zebra": "horse", "giraffe": "horse", "backpack": "handbag",
    "umbrella": "kite", "handbag": "backpack", "tie": "handbag", "suitcase": "handbag",
    "frisbee": "sports ball", "skis": "snowboard", "snowboard": "skis",
    "sports ball": "frisbee", "kite": "bird", "baseball bat": "tennis racket",
    "baseball glove": "sports ball", "skateboard": "snowboard", "surfboard": "boat",
    "tennis racket": "baseball bat", "bottle": "wine glass", "wine glass": "cup", "cup": "bowl",
    "fork": "spoon", "knife": "fork", "spoon": "fork", "bowl": "cup", "banana": "hot dog",
    "apple": "orange", "sandwich": "hot dog", "orange": "apple", "broccoli": "potted plant",
    "carrot": "broccoli", "hot dog": "sandwich", "pizza": "cake", "donut": "cake",
    "cake": "donut", "chair": "couch", "couch": "chair", "potted plant": "broccoli",
    "bed": "couch", "dining table": "bench", "toilet": "sink", "tv": "laptop",
    "laptop": "tv", "mouse": "remote", "remote": "cell phone", "keyboard": "laptop",
    "cell phone": "remote", "microwave": "oven", "oven": "microwave", "toaster": "microwave",
    "sink": "toilet", "refrigerator": "oven", "book": "laptop", "clock": "vase",
    "vase": "bottle", "scissors": "knife", "teddy bear": "bear", "hair drier": "toothbrush",
    "toothbrush": "hair drier",
}


def class_names(n_classes: int) -> tuple[str, ...]:
    """The first ``n_classes`` COCO names, or ``class_000``, ``class_001``, ... beyond 80."""
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}.")
    if n_classes <= len(COCO_CLASSES):
        return COCO_CLASSES[:n_classes]
    width = len(str(n_classes - 1))
    return tuple(f"class_{k:0{width}d}" for k in range(n_classes))


def confusable_codes(names: Sequence[str]) -> np.ndarray:
    """For each class code, the code of its confusable class, or -1 when it has none here.

    >>> confusable_codes(["car", "person", "truck"]).tolist()
    [2, -1, 0]
    """
    index = {name: k for k, name in enumerate(names)}
    return np.array([index.get(CONFUSABLE.get(name, ""), -1) for name in names], dtype=np.int64)


def detections(n_images: int = 5000, n_classes: int = 80, seed: int = 0, *,
               gt_per_image: float = 7.0, detect_rate: float = 0.93, flip_rate: float = 0.05,
               duplicates_per_gt: float = 2.0, fp_per_image: float = 74.0,
               empty_prediction_rate: float = 0.005,
               splits: Sequence[tuple[str, float]] = DEFAULT_SPLITS,
               width: float = 640.0, height: float = 480.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Generate seeded ground truth and predictions for ``n_images`` images.

    Parameters
    ----------
    n_images : number of images (data rows ``img_000001``, ``img_000002``, ...).
    n_classes : number of classes (COCO names up to 80, ``class_NNN`` beyond).
    seed : the same seed and arguments always give the same frames.
    gt_per_image : Poisson mean of ground-truth boxes per image.
    detect_rate : probability that an easy class's ground truth gets its tight copy; harder
        classes miss more.
    flip_rate : base probability that a tight copy carries another label (80% of flips go to
        the confusable class, the rest to a random class); harder classes flip more.
    duplicates_per_gt : Poisson mean of loose, low-confidence copies per ground truth.
    fp_per_image : Poisson mean of random false-positive boxes per image.
    empty_prediction_rate : fraction of images for which the model returned nothing (such
        rows are excluded from the metrics under the default profile).
    splits : (name, probability) pairs; each image gets one split.
    width, height : image size; boxes lie inside it.

    Returns
    -------
    ground_truth : (data_row, split, id, feature, bbox), bbox = Array(Float64, 4) as
        (x0, y0, x1, y1).
    predictions : the same columns plus ``confidence`` (Float64 in (0, 1]).

    With the defaults an image has ~7 ground truths and ~94 predictions on average.
    """
    if n_images < 0:
        raise ValueError(f"n_images must be >= 0, got {n_images}.")
    names = class_names(n_classes)
    split_names = [name for name, _ in splits]
    split_p = np.asarray([p for _, p in splits], dtype=np.float64)
    if split_p.size == 0 or (split_p < 0).any() or split_p.sum() <= 0:
        raise ValueError(f"splits must be (name, probability) pairs with a positive total; got {splits!r}.")
    split_p = split_p / split_p.sum()

    rng = np.random.default_rng([seed, n_images, n_classes])
    prior = 1.0 / np.arange(1, n_classes + 1) ** 0.6          # long tail, like COCO
    prior /= prior.sum()
    difficulty = rng.beta(2.0, 4.0, n_classes)                # per class, in [0, 1]
    image_split = rng.choice(len(split_names), n_images, p=split_p)
    size = (width, height)
    # ground truth
    n_gt_img = rng.poisson(gt_per_image, n_images)
    gt_img = np.repeat(np.arange(n_images), n_gt_img)
    gt_cls = rng.choice(n_classes, gt_img.size, p=prior)
    gt_box = _random_boxes(rng, gt_img.size, width, height)
    gt = _Boxes(gt_img, gt_cls, gt_box, np.zeros(0))
    # predictions: the model's kinds of output, drawn in this order (the seed fixes the data)
    has_pd = rng.random(n_images) >= empty_prediction_rate
    flips = (flip_rate, confusable_codes(names), n_classes)
    tight = _tight_copies(rng, gt, difficulty[gt_cls], has_pd, detect_rate, flips, size)
    loose = _loose_duplicates(rng, gt, has_pd, duplicates_per_gt, flips, size)
    n_fp_img = rng.poisson(fp_per_image, n_images) * has_pd
    fp_img = np.repeat(np.arange(n_images), n_fp_img)
    fp_box = _random_boxes(rng, fp_img.size, width, height)
    fp = _Boxes(fp_img, rng.choice(n_classes, fp_img.size, p=prior), fp_box,
                rng.beta(1.2, 9.0, fp_img.size))
    pd = _shuffled_within_images(rng, tight, loose, fp)
    return _frames(n_images, names, split_names, image_split, gt, pd)


class _Boxes(NamedTuple):
    img: np.ndarray
    cls: np.ndarray
    box: np.ndarray
    score: np.ndarray


def _tight_copies(rng, gt: _Boxes, d, has_pd, detect_rate, flips, size) -> _Boxes:
    """A jittered copy of most ground truths: hit rate, jitter and flips depend on the class
    difficulty ``d``; the confidence grows with the copy's IoU."""
    flip_rate, partner, n_classes = flips
    hit = (rng.random(gt.img.size) < detect_rate - 0.35 * d) & has_pd[gt.img]
    src = np.flatnonzero(hit)
    sigma = 0.06 * (1.0 + 1.5 * d[src]) * np.exp(rng.normal(0.0, 0.45, src.size))
    box = _jitter(rng, gt.box[src], sigma, *size)
    cls = _flip(rng, gt.cls[src], flip_rate * (0.5 + 2.0 * d[src]), partner, n_classes)
    quality = _aligned_iou(box, gt.box[src])
    score = _sigmoid(9.0 * (quality - 0.55) + rng.normal(0.0, 0.9, src.size))
    score *= np.where(cls == gt.cls[src], 1.0, 0.8)   # a wrong label is less sure
    return _Boxes(gt.img[src], cls, box, score)


def _loose_duplicates(rng, gt: _Boxes, has_pd, per_gt, flips, size) -> _Boxes:
    """Loose, low-confidence copies: Poisson(``per_gt``) per ground truth."""
    flip_rate, partner, n_classes = flips
    n_dup = rng.poisson(per_gt, gt.img.size) * has_pd[gt.img]
    src = np.repeat(np.arange(gt.img.size), n_dup)
    box = _jitter(rng, gt.box[src], np.full(src.size, 0.25), *size)
    cls = _flip(rng, gt.cls[src], np.full(src.size, 2 * flip_rate), partner, n_classes)
    quality = _aligned_iou(box, gt.box[src])
    score = 0.6 * _sigmoid(7.0 * (quality - 0.6) + rng.normal(0.0, 0.9, src.size))
    return _Boxes(gt.img[src], cls, box, score)


def _shuffled_within_images(rng, *parts: _Boxes) -> _Boxes:
    """All predictions by image, in random order inside an image (detectors do not sort
    their output for us); confidences rounded to 4 decimals in (0, 1]."""
    img, box, cls, score = (np.concatenate([getattr(p, f) for p in parts])
                            for f in ("img", "box", "cls", "score"))
    order = np.lexsort((rng.random(img.size), img))
    return _Boxes(img[order], cls[order], box[order],
                  np.clip(np.round(score[order], 4), 1e-4, 1.0))


def _frames(n_images, names, split_names, image_split, gt: _Boxes, pd: _Boxes):
    row_names = pl.Series(s.DATA_ROW, np.arange(1, n_images + 1, dtype=np.int64)).cast(pl.String)
    row_names = ("img_" + row_names.str.zfill(6)).alias(s.DATA_ROW)
    split_col = pl.Series(SPLIT, split_names, dtype=pl.String)
    feature = pl.Series(s.FEATURE, names, dtype=pl.String)

    def table(b: _Boxes) -> pl.DataFrame:
        return pl.DataFrame([
            row_names.gather(b.img),
            split_col.gather(image_split[b.img]),
            pl.Series(s.ID, np.arange(1, b.img.size + 1, dtype=np.int64)),
            feature.gather(b.cls),
            pl.Series(s.BBOX, np.round(b.box, 2).reshape(-1, 4), dtype=s.BBOX_DTYPE),
        ])

    predictions = table(pd).with_columns(pl.Series(s.CONFIDENCE, pd.score, dtype=pl.Float64))
    return table(gt), predictions


# --- helpers (vectorized over all boxes) -----------------------------------------------------------

def _random_boxes(rng: np.random.Generator, n: int, width: float, height: float) -> np.ndarray:
    """COCO-like sizes: log-normal scale and aspect ratio, placed uniformly in the image."""
    scale = np.exp(rng.normal(np.log(60.0), 0.8, n))
    aspect = np.exp(rng.normal(0.0, 0.4, n))
    w = np.clip(scale * np.sqrt(aspect), 4.0, 0.9 * width)
    h = np.clip(scale / np.sqrt(aspect), 4.0, 0.9 * height)
    x0 = rng.random(n) * (width - w)
    y0 = rng.random(n) * (height - h)
    return np.stack([x0, y0, x0 + w, y0 + h], axis=1)


def _jitter(rng: np.random.Generator, boxes: np.ndarray, sigma: np.ndarray, width: float,
            height: float) -> np.ndarray:
    """Move each edge by N(0, sigma * box size); keep the box inside the image, >= 1 px wide."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    noise = rng.normal(0.0, 1.0, boxes.shape) * (sigma[:, None] * np.stack([w, h, w, h], axis=1))
    out = boxes + noise
    out[:, 0] = np.clip(out[:, 0], 0.0, width - 1.0)
    out[:, 1] = np.clip(out[:, 1], 0.0, height - 1.0)
    out[:, 2] = np.clip(out[:, 2], out[:, 0] + 1.0, width)
    out[:, 3] = np.clip(out[:, 3], out[:, 1] + 1.0, height)
    return out


def _aligned_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0.0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0.0, None)
    inter = iw * ih
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
             - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _flip(rng: np.random.Generator, cls: np.ndarray, rate: np.ndarray, partner: np.ndarray,
          n_classes: int) -> np.ndarray:
    """Flip labels with probability ``rate``: 80% to the confusable class (when the class has
    one), else to another class drawn uniformly."""
    out = cls.copy()
    if n_classes < 2:
        return out
    flip = rng.random(cls.size) < rate
    to_partner = (rng.random(cls.size) < 0.8) & (partner[cls] >= 0)
    other = (cls + rng.integers(1, n_classes, cls.size)) % n_classes
    out[flip] = np.where(to_partner[flip], partner[cls[flip]], other[flip])
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
