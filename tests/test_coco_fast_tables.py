"""The COCO profile's cube / confusion / data-row tables from per-detection histograms.

``coco.cube.cube_tables`` counts each detection once into a (key, confidence, IoU) histogram
from the matcher's code words, and builds ``matches`` / ``false_positives`` on first access.
Two references:

* ``_previous_tables``: the implementation it replaced (every IoU threshold × detection
  expanded into cells: ``np.nonzero`` of the re-run matcher's ``dt_tp`` / ``dt_ignore``,
  rectangles accumulated by ``polars_metrics.cube.count_tables``) — full frame equality of
  all six tables;
* ``_naive_counts``: Python loops over every (detection, IoU threshold, confidence threshold)
  cell of pycocotools' own ``evalImgs`` (dtMatches / dtIgnore / gtIgnore) — the cube's
  tp / fp / fn and the data rows' counts, independently of our matcher.

Data: the pycocotools fixture (bbox and segm) and the seeded random datasets of
``test_coco_random`` (crowds, ids 0, area boundaries, exact-threshold IoUs, maxDet overflow).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import types
from pathlib import Path

import numpy as np
import polars as pl
import pycocotools.coco as pycoco
import pycocotools.cocoeval as cocoeval
import pytest
from polars.testing import assert_frame_equal
from test_coco_random import make_dataset

import polars_metrics as pm
from polars_metrics import schema as s
from polars_metrics._kernels import cube as KC
from polars_metrics.coco import cube as coco_cube
from polars_metrics.coco import run
from polars_metrics.coco.cube import category_index, cube_tables
from polars_metrics.cube import count_tables, label_tables
from polars_metrics.io.coco import read_coco
from polars_metrics.prepare import SLICE
from polars_metrics.profiles import get_profile

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools.*"),
              pytest.mark.filterwarnings("ignore::polars_metrics.errors.PolarsMetricsWarning")]

FIXTURE = Path(__file__).resolve().parent / "data" / "cocoapi"
GT = FIXTURE / "instances_val2014_100.json"
RESULTS = {"bbox": FIXTURE / "instances_val2014_fakebbox100_results.json",
           "segm": FIXTURE / "instances_val2014_fakesegm100_results.json"}
CONF = [0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 1.0]


# --- the previous implementation (verbatim, minus the frame renames) -----------------------------
def _rect_totals(key, n_keys, npass, t, C, T):
    key = np.ascontiguousarray(key, np.int64)
    return KC.accumulate_rectangles(key, np.zeros_like(key), np.ascontiguousarray(npass, np.int64),
                                    np.ascontiguousarray(t, np.int64),
                                    np.ascontiguousarray(t + 1, np.int64), n_keys, C, T)


def _previous_tables(gt, pd, res, *, conf_thr, images, slices, by, ids, zero_tn):
    iou_thr = np.asarray(res.params.iou_thresholds, dtype=np.float64)
    C, T, F, S = conf_thr.shape[0], iou_thr.shape[0], len(res.features), slices.height
    n_img = res.image_ids.shape[0]
    g_cat, d_cat = category_index(gt, res), category_index(pd, res)
    img_slice = images[SLICE].to_numpy().astype(np.int64)
    g_img = np.searchsorted(res.image_ids, gt[s.DATA_ROW].to_numpy())
    d_img = np.minimum(np.searchsorted(res.image_ids, pd[s.DATA_ROW].to_numpy()), max(n_img - 1, 0))
    d_slice = img_slice[d_img] if n_img else np.zeros(pd.height, np.int64)
    g_key = img_slice[g_img] * F + g_cat if n_img else g_cat
    d_key = d_slice * F + d_cat
    npass = np.searchsorted(conf_thr, pd[s.CONFIDENCE].to_numpy(), side="right").astype(np.int64)
    counted_gt = ~res.gt_ignore & (g_cat >= 0)
    evaluated = res.dt_rank >= 0
    tp = res.dt_tp
    counted_pd = ~res.dt_ignore & evaluated[None, :]
    t_tp, i_tp = np.nonzero(tp)
    t_pd, i_pd = np.nonzero(counted_pd)
    pd_total = _rect_totals(d_key[i_pd], S * F, npass[i_pd], t_pd, C, T).reshape(S, F, C, T)
    gt_total = np.bincount(g_key[counted_gt], minlength=S * F).reshape(S, F)
    n_pd = np.bincount(d_key[evaluated], minlength=S * F).reshape(S, F)
    zeros = np.zeros(t_tp.shape[0], np.int64)
    counts, confusion = count_tables(
        n_slices=S, n_features=F, conf_thr=conf_thr, iou_thr=iou_thr,
        ev_slice=d_slice[i_tp], ev_gt_feat=d_cat[i_tp], ev_pd_feat=d_cat[i_tp],
        c_lo=zeros, c_hi=npass[i_tp], t_lo=t_tp, t_hi=t_tp + 1,
        gt_total=np.broadcast_to(gt_total[:, None, None, :], (S, C, T, F)),
        pd_total=pd_total.transpose(0, 2, 3, 1), present=(gt_total + n_pd) > 0,
        iou_sum=np.zeros((S, C, F)), iou_rows=np.zeros((S, C, F), np.int64),
        tn=np.zeros((S, C, F), np.int64), has_tn=np.zeros(F, bool),
    )
    iou_rounded = np.round(iou_thr, s.THRESHOLD_DECIMALS)
    counts_df, confusion_df = label_tables(counts, confusion, slices=slices, by=by,
                                           features=res.features, conf_thr=conf_thr,
                                           iou_thr=iou_rounded)
    img_tp = _rect_totals(d_img[i_tp], n_img, npass[i_tp], t_tp, C, T)
    img_pd = _rect_totals(d_img[i_pd], n_img, npass[i_pd], t_pd, C, T)
    img_gt = np.bincount(g_img[counted_gt], minlength=n_img)
    # (t, img, c), int32 as the engine keeps them
    by_t = [np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.int32) for a in (img_tp, img_pd)]
    data_rows = coco_cube._image_table(images.select(s.DATA_ROW, *by), conf_thr, iou_rounded,
                                       *by_t, img_gt, zero_tn)
    feats = pl.Series(list(res.features), dtype=pl.String)
    gt_ids, pd_ids = ids
    fp_t, fp_i = np.nonzero(counted_pd & ~tp)
    g_row = res.dt_match[t_tp, i_tp]
    cat = feats.gather(d_cat[i_tp])
    matches = pl.DataFrame({
        s.DATA_ROW: pd[s.DATA_ROW].gather(i_tp), s.IOU_THRESHOLD: iou_rounded[t_tp],
        s.GT_ID: gt_ids.gather(g_row), s.PD_ID: pd_ids.gather(i_tp),
        s.CONFIDENCE: pd[s.CONFIDENCE].gather(i_tp), s.GT_FEATURE: cat.alias(s.GT_FEATURE),
        s.PD_FEATURE: cat.alias(s.PD_FEATURE)})
    return {
        "counts": counts_df, "confusion": confusion_df, "data_rows": data_rows, "matches": matches,
        "gt_counted": pl.DataFrame({s.DATA_ROW: gt[s.DATA_ROW].filter(counted_gt),
                                    s.GT_ID: gt_ids.filter(counted_gt),
                                    s.FEATURE: feats.gather(g_cat[counted_gt])}),
        "false_positives": pl.DataFrame({
            s.DATA_ROW: pd[s.DATA_ROW].gather(fp_i), s.IOU_THRESHOLD: iou_rounded[fp_t],
            s.PD_ID: pd_ids.gather(fp_i), s.CONFIDENCE: pd[s.CONFIDENCE].gather(fp_i),
            s.PD_FEATURE: feats.gather(d_cat[fp_i])}),
    }


def _both(monkeypatch, gt, pd, **kwargs):
    """(new tables, previous tables) of one ``run``: the previous ones are computed on exactly
    the arguments the new ``cube_tables`` received."""
    seen = {}

    def spy(*args, **kw):
        seen["prev"] = _previous_tables(*args, **kw)
        return cube_tables(*args, **kw)

    monkeypatch.setattr("polars_metrics.coco.cube_tables", spy)
    out = run(gt, pd, kwargs.pop("profile", get_profile("coco")), **kwargs)
    assert "prev" not in seen  # the tables are built on first read, not by the run
    return dataclasses.replace(out, tables=out.tables.value()), seen["prev"]


def _assert_same(out, prev):
    for name in ("counts", "confusion", "data_rows", "gt_counted", "matches", "false_positives"):
        assert_frame_equal(getattr(out.tables, name), prev[name], check_exact=True)


# --- an independent count from pycocotools' evalImgs ---------------------------------------------
def _pycoco_eval(gt_dict_or_path, results, iou_type):
    with contextlib.redirect_stdout(io.StringIO()):
        cg = pycoco.COCO(str(gt_dict_or_path)) if isinstance(gt_dict_or_path, Path) else None
        if cg is None:
            cg = pycoco.COCO()
            cg.dataset = gt_dict_or_path
            cg.createIndex()
        cd = cg.loadRes(str(results) if isinstance(results, Path) else results)
        ev = cocoeval.COCOeval(cg, cd, iou_type)
        ev.evaluate()
    return ev


def _naive_counts(ev, conf_thr):
    """{(category id, c, t): [tp, fp, fn]} and {(image id, c, t): [tp, fp, fn]} from the
    evalImgs at area 'all' and the largest maxDet, one cell at a time."""
    p = ev.params
    a_all = 0  # areaRngLbl[0] == "all"
    max_det = p.maxDets[-1]
    by_cat, by_img = {}, {}
    n_a, n_i = len(p.areaRng), len(p.imgIds)
    for k, cat in enumerate(p.catIds):
        for i, img in enumerate(p.imgIds):
            e = ev.evalImgs[k * n_a * n_i + a_all * n_i + i]
            if e is None:
                continue
            scores = e["dtScores"][:max_det]
            for t in range(len(p.iouThrs)):
                for c, thr in enumerate(conf_thr):
                    tp = fp = 0
                    for d, score in enumerate(scores):
                        if score < thr or e["dtIgnore"][t, d]:
                            continue
                        if e["dtMatches"][t, d] > 0:
                            tp += 1
                        else:
                            fp += 1
                    n_gt = int(sum(1 for g in e["gtIgnore"] if not g))
                    for table, key in ((by_cat, (cat, c, t)), (by_img, (img, c, t))):
                        cell = table.setdefault(key, [0, 0, 0])
                        cell[0] += tp
                        cell[1] += fp
                        cell[2] += n_gt - tp
    return by_cat, by_img


def _assert_naive(ev_ours, ev_py, conf_thr, gt):
    by_cat, by_img = _naive_counts(ev_py, conf_thr)
    cat_of = dict(zip(gt["feature"].cast(pl.String).to_list(), gt["category_id"].to_list(),
                      strict=True))
    cat_of.update(dict(zip(ev_ours.coco.features, ev_ours.coco.category_ids.tolist(), strict=True)))
    iou = np.round(ev_py.params.iouThrs, s.THRESHOLD_DECIMALS)
    cube = ev_ours.cube.with_columns(
        c=pl.col(s.CONFIDENCE_THRESHOLD).replace_strict(conf_thr, list(range(len(conf_thr)))),
        t=pl.col(s.IOU_THRESHOLD).replace_strict(iou.tolist(), list(range(iou.size))))
    seen = set()
    for row in cube.iter_rows(named=True):
        key = (cat_of[row[s.FEATURE]], row["c"], row["t"])
        assert [row[s.TP], row[s.FP], row[s.FN]] == by_cat.get(key, [0, 0, 0]), key
        seen.add(key)
    assert not {k for k, v in by_cat.items() if any(v)} - seen
    dr = ev_ours.data_rows.with_columns(
        c=pl.col(s.CONFIDENCE_THRESHOLD).replace_strict(conf_thr, list(range(len(conf_thr)))),
        t=pl.col(s.IOU_THRESHOLD).replace_strict(iou.tolist(), list(range(iou.size))))
    for row in dr.iter_rows(named=True):
        key = (row[s.DATA_ROW], row["c"], row["t"])
        assert [row[s.TP], row[s.FP], row[s.FN]] == by_img.get(key, [0, 0, 0]), key


# --- tests ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_fixture_tables_identical_and_naive(monkeypatch, iou_type):
    gt, pd = read_coco(GT, RESULTS[iou_type])
    profile = get_profile("coco", iou_type=iou_type)
    out, prev = _both(monkeypatch, gt, pd, profile=profile, confidence_thresholds=CONF)
    _assert_same(out, prev)
    ev = pm.evaluate(gt, pd, profile=profile, confidence_thresholds=CONF)
    _assert_naive(ev, _pycoco_eval(GT, RESULTS[iou_type], iou_type), CONF, gt)


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_identical_and_naive(monkeypatch, seed):
    gt_dict, results = make_dataset(seed, big_group=seed % 2 == 0, id_zero=seed % 3 == 0)
    gt, pd = read_coco(gt_dict, results)
    out, prev = _both(monkeypatch, gt, pd, confidence_thresholds=CONF)
    _assert_same(out, prev)
    ev = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF)
    _assert_naive(ev, _pycoco_eval(gt_dict, results, "bbox"), CONF, gt)


@pytest.mark.parametrize("seed", range(3))
def test_random_by_slices_many_thresholds_and_lazy_tables(monkeypatch, seed):
    """``by=`` slices, more than 16 IoU thresholds (two code words per detection), and the lazy
    tables: built once, on first access, equal to the previous eager ones."""
    gt_dict, results = make_dataset(100 + seed, n_img=20, big_group=True)
    gt, pd = read_coco(gt_dict, results)
    split = pl.col(s.DATA_ROW).mod(3).cast(pl.String).alias("split")
    gt, pd = gt.with_columns(split), pd.with_columns(split)
    ious = np.round(np.linspace(0.05, 0.95, 19), 2).tolist()
    out, prev = _both(monkeypatch, gt, pd, by="split", iou_thresholds=ious,
                      confidence_thresholds=CONF)
    assert "matches" not in out.tables.__dict__  # not built yet
    _assert_same(out, prev)
    assert out.tables.matches is out.tables.matches  # built once


def test_row_code_is_the_matchers_result():
    """The code words kept from the one matcher run give exactly ``dt_tp`` / ``dt_ignore`` of
    the separate matcher run at the kept area (what ``matches`` reads). They are taken once:
    the result keeps none after, and ``pm.evaluate_coco`` keeps none at all."""
    from polars_metrics.coco.engine import evaluate
    from polars_metrics.coco.params import normalize_params
    from polars_metrics.errors import PolarsMetricsError

    gt_dict, results = make_dataset(7, big_group=True, id_zero=True)
    gt, pd = read_coco(gt_dict, results)
    p = normalize_params("bbox", None, None, (1, 10, 100), None, True)
    res = evaluate(gt, pd, p, for_tables=True)
    code = res.take_row_code()[:, 0]
    for kept_none in (res, pm.evaluate_coco(gt, pd)):
        with pytest.raises(PolarsMetricsError, match="keeps no code words"):
            kept_none.take_row_code()
    T = res.params.iou_thresholds.size
    tp = np.array([(code >> t) & 1 for t in range(T)], bool)
    ign = np.array([(code >> (16 + t)) & 1 for t in range(T)], bool)
    evaluated = res.dt_rank >= 0
    np.testing.assert_array_equal(res.evaluated(), evaluated)
    np.testing.assert_array_equal(tp & ~ign & evaluated, res.dt_tp & evaluated)
    np.testing.assert_array_equal(ign[:, evaluated], res.dt_ignore[:, evaluated])
    assert ign[:, ~evaluated].all()


def test_no_predictions_and_no_images():
    """Empty sides still give the previous frames (no histogram rows, no keys)."""
    gt_dict, results = make_dataset(3)
    gt, pd = read_coco(gt_dict, results)
    ev = pm.evaluate(gt, pd.head(0), profile="coco", confidence_thresholds=CONF)
    assert ev.cube[s.TP].sum() == 0 and ev.cube[s.FP].sum() == 0
    assert ev.cube[s.FN].sum() == ev.tables.gt_counted.height * len(CONF) * 10
    assert ev.matches.height == 0 and ev.tables.false_positives.height == 0


@pytest.mark.parametrize("seed", [3, 4])
def test_data_row_ratios_are_the_expression_ratios(seed):
    """The data-row table's counts add up per image and its ratios (one kernel pass) equal the
    pipeline's polars expressions on the same counts, nulls included."""
    from polars_metrics.metrics import ratio_columns

    gt_dict, results = make_dataset(seed, big_group=True)
    gt, pd = read_coco(gt_dict, results)
    ev = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF)
    rows = ev.data_rows
    assert rows.height == len(CONF) * 10 * ev.coco.image_ids.size
    want = rows.select(s.TP, s.FP, s.FN).with_columns(ratio_columns())
    assert_frame_equal(rows.select(want.columns), want)
    assert rows[s.PRECISION].null_count() > 0  # images without detections: 0/0 is null
    # summed over images, the counts are the cube's (one slice, every feature)
    total = rows.group_by(s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD).agg(pl.col(s.TP, s.FP, s.FN).sum())
    cube = ev.cube.group_by(s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD).agg(pl.col(s.TP, s.FP, s.FN).sum())
    keys = [s.CONFIDENCE_THRESHOLD, s.IOU_THRESHOLD]
    assert_frame_equal(total.sort(keys), cube.sort(keys))


def test_data_rows_are_built_on_read_and_cached_weakly():
    """The per-image table is kept as its counts: built on read, the same frame while anybody
    holds it, built again (equal) once nobody does; ``renamed`` tables build it renamed."""
    import gc
    import weakref

    from polars_metrics.result.evaluation import Evaluation
    from polars_metrics.state import Deferred, RowTable

    gt, pd = read_coco(GT, RESULTS["bbox"])
    ev = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF)
    assert isinstance(Evaluation.data_rows.raw(ev), Deferred)  # the call built no table
    first = ev.data_rows
    assert isinstance(Evaluation.data_rows.raw(ev), RowTable)  # the counts, not the frame
    assert ev.data_rows is first and ev.tables.data_rows is first
    copy, ref = first.clone(), weakref.ref(first)
    del first
    gc.collect()
    assert ref() is None  # nobody held it: its memory went back
    assert_frame_equal(ev.data_rows, copy)
    renamed = ev.tables.renamed({s.DATA_ROW: "image_id"})
    assert_frame_equal(renamed.data_rows, copy.rename({s.DATA_ROW: "image_id"}))


def test_the_tables_are_built_on_first_read_once_whichever_is_read_first(monkeypatch):
    """``pm.evaluate(profile="coco")`` builds no table: ``cube_tables`` runs on the first read
    of any of cube / overall / confusion / data_rows / tables, once (also when threads read at
    once), its seconds then in ``timings``; the frames are the same whichever is read first.
    Until then the result holds a few input columns, never the geometry."""
    from concurrent.futures import ThreadPoolExecutor

    from polars_metrics.result.coco import CocoEvaluation

    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return cube_tables(*args, **kwargs)

    monkeypatch.setattr("polars_metrics.coco.cube_tables", counted)
    gt, pd = read_coco(GT, RESULTS["bbox"])
    names = ("cube", "overall", "confusion", "data_rows")
    seen = None
    for first in (*names, "tables"):
        calls.clear()
        ev = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF)
        _ = (ev.coco_summary, ev.coco.stats, ev.coco_per_category, ev.format_coco_summary())
        assert calls == [] and "cube" not in ev.timings
        getattr(ev, first)
        frames = {name: getattr(ev, name) for name in names}
        assert calls == [1] and ev.timings["cube"] > 0
        if seen is None:
            seen = frames
        for name in names:
            assert_frame_equal(frames[name], seen[name], check_exact=True)
    calls.clear()
    ev = pm.evaluate(gt, pd, profile="coco", confidence_thresholds=CONF)
    build = CocoEvaluation.tables.raw(ev)._build  # what the unbuilt result holds for them
    held = {c for a in (*build.args, *build.keywords.values()) if isinstance(a, pl.DataFrame)
            for c in a.columns if c != SLICE}
    assert held <= {s.DATA_ROW, s.FEATURE, "category_id", s.CONFIDENCE}, held
    with ThreadPoolExecutor(4) as pool:
        cubes = list(pool.map(lambda _: ev.cube, range(8)))
    assert calls == [1] and all(c is cubes[0] for c in cubes)
    assert_frame_equal(cubes[0], seen["cube"], check_exact=True)


def test_a_result_read_for_its_tables_keeps_no_per_row_codes_or_ranks():
    """The cube reads the code words and the evaluated rows once: neither they nor ``dt_rank``
    stay on the result (two results alive, as in a loop, would hold them twice), and
    the per-image counts it keeps for the data-row table are narrowed to a byte or two (a few
    detections an image here). (That table's counts are checked against pycocotools'
    per-image matches in ``_assert_naive``.)"""
    gt_dict, results = make_dataset(11, big_group=True)
    gt, pd = read_coco(gt_dict, results)
    ev = pm.evaluate(gt, pd, profile="coco")
    assert ev.coco._row_code_of[4]  # the code words, until the tables take them
    _ = (ev.cube, ev.confusion, ev.data_rows, ev.coco_summary)
    kept = vars(ev.coco)
    assert "dt_rank" not in kept and ev.coco._row_code_of[4] == []
    counts = [a for a in _closure_arrays(ev.tables.rows._build) if a.ndim == 3]
    assert len(counts) == 2 and {a.dtype for a in counts} <= {np.dtype(np.uint8), np.dtype(np.uint16)}


def _closure_arrays(fn, depth=0):
    """The arrays a builder (and the builders or tables it closes over) keeps alive."""
    for cell in fn.__closure__ or ():
        value = cell.cell_contents
        if isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, dict):
            yield from (v for v in value.values() if isinstance(v, np.ndarray))
        elif depth < 4 and isinstance(value, types.FunctionType):
            yield from _closure_arrays(value, depth + 1)
        elif depth < 4 and hasattr(value, "rows") and hasattr(value.rows, "_build"):
            yield from _closure_arrays(value.rows._build, depth + 1)
