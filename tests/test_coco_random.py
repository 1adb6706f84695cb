"""Randomized differential tests of ``evaluate_coco`` against pycocotools ``COCOeval``.

Generated datasets hit the edges: crowd ground truths, areas exactly at 32² and 96², tied
scores (within and across images), IoUs exactly at thresholds (half-unit grid boxes), images
without annotations or without predictions, prediction-only and empty categories, an
annotation with id 0, more than 100 detections in one (image, category), custom maxDets /
IoU thresholds / recall thresholds / area ranges and ``use_cats=False``; segm with random
polygons, uncompressed crowd RLEs and compressed results. Full arrays are compared.
"""
from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import polars as pl
import pycocotools.coco as pycoco  # noqa: E402
import pycocotools.cocoeval as cocoeval  # noqa: E402
import pycocotools.mask as mask_utils  # noqa: E402
import pytest

from polars_metrics.coco import evaluate_coco
from polars_metrics.errors import FormatError
from polars_metrics.io.coco import read_coco

pytestmark = [
    pytest.mark.reference,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*"),
]

SCORES = np.array([0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0])


# --- data ---------------------------------------------------------------------------------------
def _uncompressed(mask: np.ndarray) -> list[int]:
    """Column-major run lengths of a dense mask, starting with zeros (COCO uncompressed RLE)."""
    flat = np.asarray(mask, np.uint8).ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] == 1 else runs


def _polygon(rng, x, y, w, h):
    k = int(rng.integers(3, 8))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    px = x + w / 2 + np.cos(ang) * w / 2 * rng.uniform(0.5, 1, k)
    py = y + h / 2 + np.sin(ang) * h / 2 * rng.uniform(0.5, 1, k)
    pts = np.stack([px, py], 1).ravel()
    if rng.random() < 0.5:
        pts = pts.round(0)
    return pts.tolist()


def make_dataset(seed: int, *, segm: bool = False, n_img: int = 14, n_cat: int = 5,
                 big_group: bool = False, id_zero: bool = False):
    """A ground-truth dict and a results list with the edge cases of the module doc."""
    rng = np.random.default_rng(seed)
    img_ids = rng.choice(np.arange(1, 10 * n_img), size=n_img, replace=False)
    sizes = rng.integers(30, 140, size=(n_img, 2)) if segm else rng.integers(60, 400, size=(n_img, 2))
    images = [{"id": int(i), "height": int(h), "width": int(w)} for i, (h, w) in zip(img_ids, sizes, strict=True)]
    cat_ids = np.sort(rng.choice(np.arange(1, 30), size=n_cat + 2, replace=False))
    categories = [{"id": int(c), "name": f"c{int(c)}"} for c in cat_ids]
    gt_cats = cat_ids[:n_cat]  # cat_ids[n_cat]: predictions only; cat_ids[n_cat + 1]: nothing
    pred_only = int(cat_ids[n_cat])

    anns = []
    next_id = 0 if id_zero else 1
    boxes_per_img: list[list[tuple]] = []
    for i, img in enumerate(images):
        H, W = img["height"], img["width"]
        n = 0 if i % 5 == 0 else int(rng.poisson(3))
        boxes = []
        for _ in range(n):
            c = int(rng.choice(gt_cats[: max(1, n_cat - 1)] if i % 2 else gt_cats))
            kind = rng.random()
            if kind < 0.15:
                w = h = 32.0
            elif kind < 0.25 and not segm:
                w = h = 96.0
            else:
                w = float(rng.integers(1, max(2, W // 2)) / 2 * 2) / 2 * 2
                h = float(rng.integers(1, max(2, H // 2))) / 2 * 2
                w, h = max(w / 2, 0.5), max(h / 2, 0.5)
            x = float(rng.integers(0, max(1, int(W - w)))) + (0.5 if rng.random() < 0.3 else 0.0)
            y = float(rng.integers(0, max(1, int(H - h))))
            akind = rng.random()
            if akind < 0.2:
                area = 32.0**2
            elif akind < 0.3:
                area = 96.0**2
            elif akind < 0.6:
                area = w * h
            else:
                area = round(w * h * rng.uniform(0.3, 1.2), 2)
            crowd = int(rng.random() < 0.12)
            ann = {"id": next_id, "image_id": img["id"], "category_id": c,
                   "bbox": [x, y, w, h], "area": area, "iscrowd": crowd}
            if segm:
                if crowd:
                    m = np.zeros((H, W), np.uint8)
                    m[int(y): int(y + h), int(x): int(x + w)] = 1
                    m[rng.integers(0, H, 5), rng.integers(0, W, 5)] = 1
                    ann["segmentation"] = {"size": [H, W], "counts": _uncompressed(m)}
                else:
                    polys = [_polygon(rng, x, y, w, h)]
                    if rng.random() < 0.25:
                        polys.append(_polygon(rng, x, y, w / 2, h / 2))
                    ann["segmentation"] = polys
            anns.append(ann)
            boxes.append((c, x, y, w, h))
            next_id += 1
        boxes_per_img.append(boxes)
    if id_zero and anns:
        assert any(a["id"] == 0 for a in anns)

    results = []
    for i, img in enumerate(images):
        H, W = img["height"], img["width"]
        if i % 7 == 3:
            continue  # an image without predictions
        dets = []
        for c, x, y, w, h in boxes_per_img[i]:
            for _ in range(int(rng.integers(0, 4))):
                cc = c if rng.random() < 0.85 else int(rng.choice(cat_ids[: n_cat + 1]))
                # half-unit shifts / shrinks: IoUs such as exactly 0.5 or 0.75 occur
                dx, dy = rng.choice([0, 0, 0.5, 1, -1, 2]), rng.choice([0, 0, 0.5, -0.5, 1])
                sw, sh = rng.choice([1.0, 1.0, 0.5, 0.75, 1.5]), rng.choice([1.0, 1.0, 0.5, 0.8])
                dets.append((cc, x + dx, y + dy, w * sw, h * sh))
        for _ in range(int(rng.integers(0, 6))):
            w, h = float(rng.integers(1, W // 2)), float(rng.integers(1, H // 2))
            if rng.random() < 0.2 and min(W, H) > 33:
                w = h = 32.0
            dets.append((int(rng.choice(cat_ids[: n_cat + 1])), float(rng.integers(0, W - w)),
                         float(rng.integers(0, H - h)), w, h))
        if rng.random() < 0.3:
            dets.append((pred_only, 1.0, 1.0, 10.0, 10.0))
        if big_group and i == 1:
            c = int(gt_cats[0])
            for _ in range(130):
                w, h = float(rng.integers(2, W // 2)), float(rng.integers(2, H // 2))
                dets.append((c, float(rng.integers(0, W - w)), float(rng.integers(0, H - h)), w, h))
        for c, x, y, w, h in dets:
            s = float(rng.choice(SCORES)) if rng.random() < 0.6 else round(float(rng.random()), 2)
            r = {"image_id": img["id"], "category_id": int(c), "score": s}
            if segm:
                xs, ys = max(x, 0.0), max(y, 0.0)
                poly = _polygon(rng, xs, ys, max(w, 2.0), max(h, 2.0))
                rle = mask_utils.merge(mask_utils.frPyObjects([poly], H, W))
                r["segmentation"] = {"size": [H, W], "counts": rle["counts"].decode()}
            else:
                r["bbox"] = [x, y, w, h]
            results.append(r)
    rng.shuffle(results)  # results need not be grouped by image
    gt = {"images": images, "annotations": anns, "categories": categories}
    return gt, results


# --- running both -------------------------------------------------------------------------------
def run_pycocotools(gt: dict, results: list, iou_type: str, params: dict):
    with contextlib.redirect_stdout(io.StringIO()):
        cg = pycoco.COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(results))
        ev = cocoeval.COCOeval(cg, cd, iou_type)
        if "iou_thresholds" in params:
            ev.params.iouThrs = np.asarray(params["iou_thresholds"], dtype=float)
        if "rec_thresholds" in params:
            ev.params.recThrs = np.asarray(params["rec_thresholds"], dtype=float)
        if "max_dets" in params:
            ev.params.maxDets = list(params["max_dets"])
        if "area_ranges" in params:
            ev.params.areaRng = [list(v) for v in params["area_ranges"].values()]
            ev.params.areaRngLbl = list(params["area_ranges"])
        if "use_cats" in params:
            ev.params.useCats = int(params["use_cats"])
        ev.evaluate()
        ev.accumulate()
        if len(ev.params.maxDets) >= 3:
            ev.summarize()
    return ev


def compare(ours, ev, pd: pl.DataFrame, gt: pl.DataFrame) -> None:
    for name in ("precision", "recall", "scores"):
        a, b = getattr(ours, name), ev.eval[name]
        assert a.shape == b.shape, name
        np.testing.assert_array_equal(a == -1, b == -1, err_msg=name)
        np.testing.assert_allclose(a, b, atol=1e-10, rtol=0, err_msg=name)
    if len(ev.params.maxDets) >= 3:
        np.testing.assert_allclose(ours.stats, ev.stats, atol=1e-10, rtol=0)
    # per-detection matches at the recorded area range and the largest maxDet
    lbl = ev.params.areaRngLbl
    a_rng = list(ev.params.areaRng[lbl.index(ours.match_area)])
    gt_ids = gt["id"].to_numpy()
    pd_row = {int(i): r for r, i in enumerate(pd["id"].to_list())}
    for e in ev.evalImgs:
        if e is None or list(e["aRng"]) != a_rng:
            continue
        for d, did in enumerate(e["dtIds"]):
            r = pd_row[did]
            m = ours.dt_match[:, r]
            got = np.where(m >= 0, gt_ids[np.maximum(m, 0)], 0)
            np.testing.assert_array_equal(got, e["dtMatches"][:, d])
            np.testing.assert_array_equal(ours.dt_ignore[:, r], e["dtIgnore"][:, d].astype(bool))


def check(gt_dict, results, iou_type="bbox", **params):
    gt, pd = read_coco(gt_dict, results)
    ours = evaluate_coco(gt, pd, iou_type=iou_type, **params)
    ev = run_pycocotools(gt_dict, results, iou_type, params)
    compare(ours, ev, pd, gt)
    return ours


# --- tests --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
def test_random_bbox(seed):
    gt, res = make_dataset(seed, big_group=seed % 3 == 0, id_zero=seed % 4 == 1)
    check(gt, res)


@pytest.mark.parametrize(
    "params",
    [
        {"iou_thresholds": [0.3, 0.5, 0.55, 0.75, 0.9]},
        {"iou_thresholds": np.linspace(0.05, 0.95, 19)},  # > 16: kernels run in chunks
        {"max_dets": (1, 5, 120)},
        {"max_dets": (3, 200, 7)},
        {"max_dets": (50,)},
        {"rec_thresholds": np.linspace(0, 1, 11)},
        # unordered, with a repeat and a non-positive value: the accumulate kernel walks
        # ascending thresholds with a pointer and searches otherwise
        {"rec_thresholds": [0.5, 0.1, 0.9, 0.3, 0.3, -0.2, 1.0, 0.05]},
        {"area_ranges": {"all": (0, 1e10), "small": (0, 400), "medium": (400, 2500)}},
        {"area_ranges": {"tiny": (0, 100), "all": (0, 1e10)}},
        {"use_cats": False},
        {"use_cats": False, "max_dets": (1, 10, 20)},
    ],
    ids=lambda p: "-".join(f"{k}" for k in p),
)
@pytest.mark.parametrize("seed", [100, 101])
def test_random_bbox_custom_params(seed, params):
    gt, res = make_dataset(seed, big_group=True, id_zero=True)
    check(gt, res, **params)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_random_segm(seed):
    gt, res = make_dataset(200 + seed, segm=True, n_img=10, id_zero=seed == 2)
    check(gt, res, iou_type="segm")


@pytest.mark.slow
def test_random_segm_use_cats_false_and_custom():
    gt, res = make_dataset(300, segm=True, n_img=10, big_group=True)
    check(gt, res, iou_type="segm", use_cats=False, max_dets=(1, 10, 150))


def test_exact_iou_at_threshold_and_area_boundaries():
    """IoU exactly 0.5 / 0.75 matches (>=); areas exactly 32² and 96² fall in both ranges."""
    gt = {
        "images": [{"id": 1, "height": 300, "width": 300}, {"id": 2, "height": 50, "width": 50}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 32, 32], "area": 1024.0, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 100, 96, 96], "area": 9216.0, "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 2, "bbox": [0, 100, 40, 40], "area": 1600.0, "iscrowd": 1},
        ],
    }
    res = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 32, 16], "score": 0.9},  # IoU 0.5
        {"image_id": 1, "category_id": 1, "bbox": [100, 100, 96, 72], "score": 0.9},  # IoU 0.75
        {"image_id": 1, "category_id": 2, "bbox": [0, 100, 20, 20], "score": 0.5},  # in a crowd
        {"image_id": 1, "category_id": 2, "bbox": [5, 105, 20, 20], "score": 0.5},  # crowd again
        {"image_id": 1, "category_id": 2, "bbox": [250, 250, 32, 32], "score": 0.5},
    ]
    ours = check(gt, res)
    t50 = 0
    t75 = int(np.flatnonzero(ours.params.iou_thresholds == 0.75)[0])
    assert ours.dt_match[t50, 0] == 0 and ours.dt_match[t75, 1] == 1
    assert ours.dt_match[t50 + 1, 0] == -1  # 0.55 > 0.5
    assert ours.dt_ignore[:, 2].all() and ours.dt_ignore[:, 3].all()  # matched to crowd


def test_empty_results_and_only_empty_images():
    gt = {"images": [{"id": 5, "height": 10, "width": 10}], "annotations": [],
          "categories": [{"id": 1, "name": "a"}]}
    g, p = read_coco(gt, [])
    r = evaluate_coco(g, p)
    assert (r.precision == -1).all() and (r.stats == -1).all()
    assert r.per_category["ap"].to_list() == [None]


# --- bad input ----------------------------------------------------------------------------------
BASE = {
    "images": [{"id": 1, "height": 20, "width": 30}],
    "categories": [{"id": 3, "name": "cat"}],
    "annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5], "area": 25}],
}


@pytest.mark.parametrize(
    "results,field,index",
    [
        ([{"image_id": 9, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 0.1}], "image_id", 0),
        ([{"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 0.1},
          {"image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 1], "score": 0.1}], "category_id", 1),
        ([{"image_id": 1, "category_id": 3, "bbox": [0, 0, -1, 1], "score": 0.1}], "bbox", 0),
        ([{"image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1]}], "score", 0),
        ([{"image_id": 1, "category_id": 3, "bbox": [0, 0, 1], "score": 0.2}], "bbox", 0),
    ],
)
def test_bad_results_raise_and_drop(results, field, index):
    with pytest.raises(FormatError, match=rf'results\[{index}\]: "{field}"'):
        read_coco(BASE, results)
    gt, pd, rejects = read_coco(BASE, results, on_invalid="drop")
    assert rejects.columns == ["table", "row", "data_row", "id", "column", "reason"]
    assert rejects.filter(pl.col("column") == field)["row"].to_list() == [index]
    assert pd.height == len(results) - 1


def test_bad_ground_truth():
    with pytest.raises(FormatError, match="images"):
        read_coco({"annotations": []})
    with pytest.raises(FormatError, match="JSON object"):
        read_coco([1, 2])
    bad = copy.deepcopy(BASE)
    bad["images"][0]["width"] = -4
    with pytest.raises(FormatError, match=r'images\[0\]: "width" is negative'):
        read_coco(bad)
    bad = copy.deepcopy(BASE)
    bad["annotations"].append({"id": 7, "image_id": 1, "category_id": 3, "bbox": [1, 1, 2, 2]})
    with pytest.raises(FormatError, match=r'annotations\[1\]: "id" repeats'):
        read_coco(bad)
    gt, pd, rej = read_coco(bad, None, on_invalid="drop")
    assert gt.height == 1 and rej["row"].to_list() == [1]
    with pytest.raises(FormatError, match="array"):
        read_coco(BASE, {"not": "a list"})


def test_frames_from_frame_and_placeholders():
    gt, pd = read_coco(BASE, pl.DataFrame(
        {"image_id": [1], "category_id": [3], "bbox": [[1.0, 1.0, 5.0, 5.0]], "score": [0.5]}
    ))
    assert pd["bbox"].to_list() == [[1.0, 1.0, 6.0, 6.0]]
    assert pd["feature"].to_list() == ["cat"] and pd["area"].to_list() == [25.0]
    two = copy.deepcopy(BASE)
    two["images"].append({"id": 2, "height": 5, "width": 5})
    g2, _ = read_coco(two)
    assert g2.filter(pl.col("data_row") == 2).select("feature", "id", "bbox").rows() == [(None, None, None)]
