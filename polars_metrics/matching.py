"""Pairs → matches: the greedy walks of SPEC §5 (IoU order) and the score-ordered walks.

IoU order (:func:`match`): the kernel emits the match events of the IoU-threshold-0 walk at each
confidence threshold (the prefix property gives every IoU threshold from them), the per-(data
row, feature) quantities that the cube needs, and the data-row table's per-row aggregates.

Score order (:func:`match_by_score`, ``greedy_order="score"``): predictions by confidence
descending each take their best free ground truth, one walk per IoU threshold; a confidence
threshold only truncates the walk, so a match found at IoU index ``t`` holds at every
confidence threshold its prediction passes. The threshold-free IoU metric does not depend on
the walk order and comes from the same computation as under IoU order.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import polars as pl

from polars_metrics import _arrays
from polars_metrics import schema as s
from polars_metrics._kernels.aot import kernel
from polars_metrics._parallel import run_ranges
from polars_metrics._spare import reserve, spare_buffer
from polars_metrics.pairs import Pairs, index_dtype
from polars_metrics.prepare import Prepared
from polars_metrics.profiles import Profile

THRESHOLD_FREE = "threshold_free"  # matches-frame column: a classification pair


@dataclass(frozen=True)
class Matches:
    """Match events and the per-(data row, feature) and per-row quantities of one walk.

    Each match event is a rectangle of the (confidence index × IoU index) grid, see
    :meth:`rectangles`. IoU order (``ev_t`` is None): events are the matched pairs of the
    IoU-threshold-0 walk at confidence index ``ev_c``, matches at IoU index ``t < ev_bin``.
    Score order (``ev_t`` set): events are the matches of the walk at IoU index ``ev_t``,
    holding at every confidence index ``c < ev_c`` (the thresholds the prediction passes);
    ``ev_bin = ev_t + 1``.

    An event is stored as its pair (``ev_k``, a position in ``pairs``) and its confidence
    index: its ground truth, prediction, IoU, classification flag and IoU bin are the pair's,
    read through ``ev_k`` on each access (:attr:`ev_gt`, :attr:`ev_pd`, :attr:`ev_iou`,
    :attr:`ev_free`, :attr:`ev_bin`) — 8 bytes an event kept instead of 25.
    """

    # match events, ordered by data row then confidence index (IoU order) / IoU index (score)
    ev_k: np.ndarray        # the event's pair: int32 (int64 beyond 2**31 - 1 pairs)
    pairs: Pairs            # the run's pairs (the same object the result keeps)
    # per (data row, feature present on the row): CSR over rows
    rf_off: np.ndarray
    # small-range int32 arrays, kept in the narrowest unsigned dtype holding their values
    # (:func:`narrowed`) and read back as int32 by the properties of the same names: ev_c
    # (confidence index of each event; score order: thresholds passed), rf_feat (feature
    # code), rf_ngt (ground truths), rf_until (the IoU metric of the (row, feature) is defined
    # at c < rf_until), npass (per prediction, the confidence thresholds it passes, as matched;
    # the result's prepared view shares it) — 1 or 2 bytes an entry kept instead of 4
    narrow: dict[str, np.ndarray]
    # its nonzero values, ordered by data row, then c, then feature (zeros are not stored):
    # (iv_off, iv_c, iv_rf, iv_val), see :attr:`iv_off`; None once dropped (:meth:`drop_values`)
    values: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None
    class_aware: bool       # the walk's switch (read when the values are walked again)
    row_iou: np.ndarray     # (n_rows, C): mean IoU metric (NaN = undefined)
    gt_row: np.ndarray      # the data row of each ground truth (prep.gt.row, not a copy)
    ev_roff: np.ndarray     # int64 CSR offsets of the events over data rows
    # what :meth:`row_tables` reads: the data-row ends of the sides (gt_off, pd_off) and the
    # features (gt_feat, pd_feat) in data-row order (the prepared sides' arrays, not copies)
    sides: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    iou_thr: np.ndarray     # the IoU thresholds (T), ascending
    iou_strict: bool        # the profile's IoU test (``iou > t``, else ``iou >= t``)
    ev_t: np.ndarray | None = None  # int32 IoU index of each event: score order only
    # score order: (row_counts, row_means) as computed with the walk (see :meth:`row_tables`)
    score_rows: tuple[np.ndarray, np.ndarray] | None = None
    # the event fields read through the pairs, kept while the call that built this walk runs
    # (its stages read them several times); emptied for good by :meth:`drop_values`
    _in_call: dict[str, np.ndarray] | None = dataclasses.field(
        default_factory=dict, init=False, compare=False, repr=False)

    def _derived(self, name: str, make) -> np.ndarray:
        if self._in_call is None:
            return make()
        if name not in self._in_call:
            self._in_call[name] = make()
        return self._in_call[name]

    @property
    def n_iou(self) -> int:
        return self.iou_thr.shape[0]

    @property
    def ev_c(self) -> np.ndarray:
        return self._derived("ev_c", lambda: widened(self.narrow["ev_c"]))

    @property
    def rf_feat(self) -> np.ndarray:
        return widened(self.narrow["rf_feat"])

    @property
    def rf_ngt(self) -> np.ndarray:
        return widened(self.narrow["rf_ngt"])

    @property
    def rf_until(self) -> np.ndarray:
        return widened(self.narrow["rf_until"])

    @property
    def npass(self) -> np.ndarray:
        return self._derived("npass", lambda: widened(self.narrow["npass"]))

    @property
    def ev_gt(self) -> np.ndarray:
        """int32 position in prep.gt (data-row order) of each event's ground truth."""
        return self._derived("ev_gt", lambda: self.pairs.gt[self.ev_k])

    @property
    def ev_pd(self) -> np.ndarray:
        """int32 position in prep.pd of each event's prediction."""
        return self._derived("ev_pd", lambda: self.pairs.pd[self.ev_k])

    @property
    def ev_iou(self) -> np.ndarray:
        return self.pairs.iou[self.ev_k]

    @property
    def ev_free(self) -> np.ndarray:
        """bool: a match at every IoU threshold (classification pairs)."""
        return self.pairs.always[self.ev_k]

    @property
    def ev_bin(self) -> np.ndarray:
        """int32: the event is a match at IoU index t iff t < ev_bin."""
        if self.ev_t is not None:
            return self.ev_t + np.int32(1)
        return self._derived("ev_bin", lambda: event_bins(self.pairs, self.ev_k, self.iou_thr,
                                                          self.iou_strict))

    # --- the sparse IoU-metric values: the cube reads them in the call; a finished result
    # drops them (Evaluation.from_partial, :meth:`drop_values`) and walks again on first read
    # (iou_values, data_row_features): 16 bytes a value, ~75 MB at 100,000 images ----------
    @property
    def iv_off(self) -> np.ndarray:
        """int64 CSR offsets of the values over data rows."""
        return self._values()[0]

    @property
    def iv_c(self) -> np.ndarray:
        """int32 confidence index of each value."""
        return self._values()[1]

    @property
    def iv_rf(self) -> np.ndarray:
        """int32 (data row, feature) entry of each value."""
        return self._values()[2]

    @property
    def iv_val(self) -> np.ndarray:
        return self._values()[3]

    def _values(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if self.values is None:  # walked again, the same kernel on the same inputs; kept
            walk = _walk(self.sides, self.npass, self.pairs, self.row_iou.shape[1],
                         self.class_aware, self.rf_off, self.rf_feat)
            object.__setattr__(self, "values", _compact_values(walk))
        return self.values

    def drop_values(self) -> None:
        """Let the sparse IoU-metric values go (in place: every holder of this walk, e.g. the
        data-row table's builder, lets them go): they are walked again (about the match
        stage's time) on first read of ``iv_*`` and kept from then on. The event fields the
        call kept go too, and are read through the pairs from now on."""
        object.__setattr__(self, "values", None)
        object.__setattr__(self, "_in_call", None)

    @property
    def score_ordered(self) -> bool:
        return self.ev_t is not None

    def rectangles(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(c_lo, c_hi, t_lo, t_hi): event i is a match at every cell of
        ``[c_lo, c_hi) × [t_lo, t_hi)``."""
        zero = np.zeros_like(self.ev_c)
        if self.score_ordered:
            return zero, self.ev_c, self.ev_t, self.ev_t + 1
        return self.ev_c, self.ev_c + 1, zero, self.ev_bin

    @property
    def ev_row(self) -> np.ndarray:
        """The data row of each event (its ground truth's; not stored)."""
        return self.gt_row[self.ev_gt]

    @property
    def rf_row(self) -> np.ndarray:
        return np.repeat(np.arange(self.rf_off.shape[0] - 1), np.diff(self.rf_off))

    def rf_iou(self) -> np.ndarray:
        """(n_rf, C) IoU metric per (data row, feature) and confidence threshold; NaN where
        undefined. Built on demand from the sparse values (dense, it is the largest array of a
        run)."""
        C = self.row_iou.shape[1]
        dense = np.where(np.arange(C)[None, :] < self.rf_until[:, None], 0.0, np.nan)
        dense[self.iv_rf, self.iv_c] = self.iv_val
        return dense

    def row_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(row_counts, row_means), both (3, n_rows, C, T) and metric-major so each metric is
        one contiguous column (zero-copy frame columns): tp, fp, fn summed over a row's
        features, and the means of its per-feature precision, recall and F1 (NaN where none
        is defined). Built on each call from the events (a result keeps the events, not these
        tables: 6 × 8 bytes × C × T per data row)."""
        if self.score_rows is not None:
            return self.score_rows
        shape = (3, *self.row_iou.shape, self.n_iou)
        # in the previous table's memory once nothing holds that table (see _spare)
        counts = spare_buffer("row_counts", shape, np.int64)
        means = spare_buffer("row_means", shape, np.float64)
        gt_off, pd_off, gt_feat, pd_feat = self.sides
        run_ranges(row_tables_range, (
            gt_off, pd_off, gt_feat, pd_feat, self.npass, self.rf_off, self.rf_feat,
            self.rf_ngt, self.rf_until, self.ev_roff, self.ev_c, self.ev_gt, self.ev_pd,
            self.ev_bin, counts, means), self.ev_roff + self.rf_off)
        return counts, means

    def rf_kept(self, prep: Prepared) -> np.ndarray:
        """(n_rf, C) kept predictions per (data row, feature) and confidence threshold,
        from the predictions themselves (not stored)."""
        n_rf, C = int(self.rf_off[-1]), self.row_iou.shape[1]
        F = max(len(prep.features), 1)
        rf = np.searchsorted(self.rf_row * F + self.rf_feat, prep.pd.row * F + prep.pd.feat)
        hist = np.bincount(rf * (C + 1) + self.npass, minlength=n_rf * (C + 1))
        return _arrays.count_above(hist.reshape(n_rf, C + 1))  # kept at c iff npass > c


greedy_match_by_iou = kernel("matching", "greedy_match_by_iou")
row_tables_range = kernel("matching", "row_tables_range")
compact_events = kernel("groups", "compact_events")
compact_values = kernel("groups", "compact_values")
ROWS_PER_CHUNK = 64  # must equal _kernels.matching.ROWS_PER_CHUNK (rows sharing scratch arrays)

BITMAP_LIMIT = 1 << 26  # (rows × features) cells up to which a bitmap finds row features


def row_features(prep: Prepared, gt_feat: np.ndarray, pd_feat: np.ndarray):
    """Per data row, the sorted distinct feature codes present on either side (CSR)."""
    n_rows, n_feat = prep.n_rows, len(prep.features)
    if n_rows * n_feat <= BITMAP_LIMIT:
        # one side at a time, in place in its (fresh) row array: no concatenated temporaries
        seen = np.zeros(n_rows * n_feat, dtype=bool)
        for side, feat in ((prep.gt, gt_feat), (prep.pd, pd_feat)):
            code = side.row
            code *= n_feat
            code += feat
            seen[code] = True
            del code
        code = np.flatnonzero(seen)
    else:
        code = np.unique(np.concatenate([prep.gt.row * n_feat + gt_feat,
                                         prep.pd.row * n_feat + pd_feat]))
    return _arrays.offsets(code // n_feat, n_rows), (code % n_feat).astype(np.int32)


def match(prep: Prepared, pairs: Pairs, profile: Profile) -> Matches:
    n_rows, n_conf, n_iou = prep.n_rows, prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    gt_feat, pd_feat, npass = prep.gt.feat, prep.pd.feat, prep.pd.npass
    if not profile.use_confidence:
        npass = np.full_like(npass, n_conf)
    rf_off, rf_feat = row_features(prep, gt_feat, pd_feat)
    if profile.greedy_order != "score":  # (score order builds its table with the walk)
        for name, dtype in (("row_counts", np.int64), ("row_means", np.float64)):
            reserve(name, (3, n_rows, n_conf, n_iou), dtype)  # the data-row table's: see _spare
    sides = (prep.gt.off, prep.pd.off, gt_feat, pd_feat)
    walk = _walk(sides, npass, pairs, n_conf, profile.class_aware, rf_off, rf_feat)
    ev_off, ev_n, ev_pair, rf_ngt, rf_until, _, _, _, row_iou = walk
    out_off = _arrays.offsets_from_lengths(ev_n.sum(axis=1))
    n_ev = int(out_off[-1])
    ev_c, ev_k = np.empty(n_ev, np.int32), np.empty(n_ev, np.int64)
    run_ranges(compact_events, (ev_off, ev_n, ev_pair, out_off, ev_c, ev_k), out_off)
    del ev_pair
    walk = walk[:2] + (None,) + walk[3:]  # the events' scratch goes before the values'
    return Matches(
        ev_k=ev_k.astype(index_dtype(len(pairs))), pairs=pairs, rf_off=rf_off,
        narrow=narrowed(ev_c=ev_c, rf_feat=rf_feat, rf_ngt=rf_ngt, rf_until=rf_until,
                        npass=npass),
        values=_compact_values(walk), class_aware=profile.class_aware,
        row_iou=row_iou, gt_row=prep.gt.row, ev_roff=out_off, sides=sides,
        iou_thr=prep.iou_thr, iou_strict=profile.iou_strict)


def _walk(sides, npass, pairs: Pairs, n_conf: int, class_aware: bool, rf_off, rf_feat) -> tuple:
    """The IoU-ordered walk kernel over every data row: (ev_off, ev_n, ev_pair, rf_ngt,
    rf_until, iv_n, iv_rf, iv_val, row_iou), events and values in per-row slots."""
    gt_off, pd_off, gt_feat, pd_feat = sides
    n_rows, n_rf = gt_off.shape[0] - 1, rf_feat.shape[0]
    cap = np.minimum(np.diff(gt_off), np.diff(pd_off)) * n_conf
    ev_off = _arrays.offsets_from_lengths(cap)
    n_cap = int(ev_off[-1])
    ev_n = np.zeros((n_rows, n_conf), dtype=np.int64)
    ev_pair = np.empty(n_cap, dtype=np.int64)
    rf_ngt = np.zeros(n_rf, dtype=np.int32)
    rf_until = np.zeros(n_rf, dtype=np.int32)
    iv_n = np.zeros((n_rows, n_conf), dtype=np.int64)
    iv_rf = np.empty(n_cap, dtype=np.int32)
    iv_val = np.empty(n_cap, dtype=np.float64)
    row_iou = np.empty((n_rows, n_conf), dtype=np.float64)  # the kernel writes every cell
    # work per chunk of rows: its pairs, plus its annotations (rows without pairs still count)
    chunk_rows = np.minimum(np.arange(0, n_rows + ROWS_PER_CHUNK, ROWS_PER_CHUNK), n_rows)
    chunk_work = pairs.off[chunk_rows] + gt_off[chunk_rows] + pd_off[chunk_rows]
    run_ranges(greedy_match_by_iou, (
        gt_off, pd_off, gt_feat, pd_feat, npass,
        pairs.off, pairs.gt, pairs.pd, pairs.iou, n_conf, class_aware,
        rf_off, rf_feat, ev_off,
        ev_n, ev_pair,
        rf_ngt, rf_until, iv_n, iv_rf, iv_val, row_iou,
    ), chunk_work)
    return ev_off, ev_n, ev_pair, rf_ngt, rf_until, iv_n, iv_rf, iv_val, row_iou


def _compact_values(walk: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(iv_off, iv_c, iv_rf, iv_val) from a walk's per-row value slots."""
    ev_off, iv_n, iv_rf, iv_val = walk[0], walk[5], walk[6], walk[7]
    iv_off = _arrays.offsets_from_lengths(iv_n.sum(axis=1))
    n_iv = int(iv_off[-1])
    iv_c, iv_rf_out = np.empty(n_iv, np.int32), np.empty(n_iv, np.int32)
    iv_val_out = np.empty(n_iv, np.float64)
    run_ranges(compact_values, (ev_off, iv_n, iv_rf, iv_val, iv_off, iv_c, iv_rf_out, iv_val_out),
               iv_off)
    return iv_off, iv_c, iv_rf_out, iv_val_out


def narrowed(**arrays: np.ndarray) -> dict[str, np.ndarray]:
    """Each non-negative int32 array in the narrowest unsigned dtype holding its values (uint8,
    uint16, else as it is); :func:`widened` reads it back.

    >>> {k: v.dtype.name for k, v in narrowed(a=np.array([0, 255], np.int32),
    ...                                       b=np.array([256], np.int32),
    ...                                       c=np.array([70000], np.int32),
    ...                                       d=np.array([-1], np.int32)).items()}
    {'a': 'uint8', 'b': 'uint16', 'c': 'int32', 'd': 'int32'}
    """
    out = {}
    for name, a in arrays.items():
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        dtype = (np.uint8 if hi <= 0xFF else np.uint16 if hi <= 0xFFFF else None) if lo >= 0 else None
        out[name] = a if dtype is None else a.astype(dtype)
    return out


def widened(a: np.ndarray) -> np.ndarray:
    """A :func:`narrowed` array as int32 (no copy when it is int32 already)."""
    return a.astype(np.int32, copy=False)


def event_bins(pairs: Pairs, ev_k: np.ndarray, iou_thr: np.ndarray, strict: bool) -> np.ndarray:
    """The IoU bin of each event (pair ``ev_k``): the IoU thresholds its IoU passes
    (:func:`iou_passes`), all of them for a classification pair.

    >>> p = Pairs(np.array([0, 2]), np.array([0, 0], np.int32), np.array([0, 1], np.int32),
    ...           np.array([0.5, 0.2]), np.array([False, True]))
    >>> event_bins(p, np.array([0, 1], np.int32), np.array([0.1, 0.5, 0.9]), True).tolist()
    [1, 3]
    """
    out = iou_passes(pairs.iou[ev_k], iou_thr, strict)
    out[pairs.always[ev_k]] = iou_thr.shape[0]
    return out


greedy_match_by_score = kernel("matching", "greedy_match_by_score")
count_at_or_below = kernel("sorting", "count_at_or_below")
accumulate_rectangles = kernel("cube", "accumulate_rectangles")
ALMOST_ONE = 1 - 1e-10  # the non-strict test compares with min(t, ALMOST_ONE), as COCO does


def iou_passes(iou: np.ndarray, iou_thr: np.ndarray, strict: bool) -> np.ndarray:
    """Number of IoU thresholds each IoU passes: ``iou > t`` when ``strict``, else
    ``iou >= min(t, 1 - 1e-10)``. Thresholds ascend, so IoU index t passes iff t < result.

    Examples
    --------
    >>> thr = np.array([0.0, 0.5, 1.0])
    >>> iou_passes(np.array([0.5, 1.0]), thr, True), iou_passes(np.array([0.5, 1.0]), thr, False)
    (array([1, 2], dtype=int32), array([2, 3], dtype=int32))
    """
    iou = np.ascontiguousarray(iou, dtype=np.float64)
    if strict:  # t < v  iff  nextafter(t, inf) <= v
        return count_at_or_below(np.nextafter(np.asarray(iou_thr, np.float64), np.inf), iou)
    return count_at_or_below(np.minimum(iou_thr, ALMOST_ONE).astype(np.float64), iou)


def _walk_order(prep: Prepared, pairs: Pairs, npass: np.ndarray, class_aware: bool) -> np.ndarray:
    """The pairs taking part in the score-ordered walk, in walk order: data row, prediction
    by confidence descending (ties: input order), then ground truth in input order.
    Predictions that pass no confidence threshold count nowhere and are left out."""
    conf = prep.pd.column(s.CONFIDENCE).fill_null(1.0).to_numpy()
    rank = np.empty(len(prep.pd), dtype=np.int64)
    rank[np.lexsort((-conf, prep.pd.row))] = np.arange(len(prep.pd))
    keep = npass[pairs.pd] > 0
    if class_aware:
        keep &= prep.gt.feat[pairs.gt] == prep.pd.feat[pairs.pd]
    k = np.flatnonzero(keep)
    return k[np.lexsort((pairs.gt[k], rank[pairs.pd[k]]))]


def match_by_score(prep: Prepared, pairs: Pairs, profile: Profile) -> Matches:
    """Score-ordered greedy matching (``greedy_order="score"``), one walk per IoU threshold.

    At IoU threshold t, per data row (only equal features when ``profile.class_aware``), the
    predictions by confidence descending (ties: input order) each take the still-free ground
    truth of highest IoU passing the test (``iou > t``, or ``iou >= t`` unless
    ``profile.iou_strict``; ties: ground-truth input order). Classification pairs pass every
    threshold. A confidence threshold truncates the walk, so a match holds at every confidence
    threshold its prediction passes. The IoU metric and the per-(data row, feature) quantities
    are those of :func:`match` (they do not depend on the walk order).

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> from polars_metrics.pairs import build_pairs
    >>> from polars_metrics.prepare import prepare
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"] * 2, "feature": ["cat"] * 2,
    ...                    "bbox": [[0.0, 0, 10, 10], [0.0, 0, 10, 8]]}, schema_overrides={"bbox": box})
    >>> pd = pl.DataFrame({"data_row": ["a"] * 2, "feature": ["cat"] * 2, "confidence": [0.6, 0.9],
    ...                    "bbox": [[0.0, 0, 10, 9], [0.0, 0, 10, 10]]}, schema_overrides={"bbox": box})
    >>> prof = pm.get_profile("labelbox", greedy_order="score")
    >>> prep = prepare(gt, pd, keys=["data_row"], by=[], data_rows=None, profile=prof,
    ...                conf_thr=np.array([0.5]), iou_thr=np.array([0.5, 0.85]), on_invalid="raise")
    >>> m = match_by_score(prep, build_pairs(prep), prof)
    >>> m.ev_t.tolist(), m.ev_gt.tolist(), m.ev_pd.tolist()  # pd 1 (0.9) goes first
    ([0, 0, 1, 1], [0, 1, 0, 1], [1, 0, 1, 0])
    """
    base = match(prep, pairs, profile)  # IoU metric, per-(row, feature) counts, npass
    n_rows, n_iou = prep.n_rows, prep.iou_thr.shape[0]
    k = _walk_order(prep, pairs, base.npass, profile.class_aware)
    walk_gt, walk_pd, walk_iou = pairs.gt[k], pairs.pd[k], pairs.iou[k]
    walk_nt = iou_passes(walk_iou, prep.iou_thr, profile.iou_strict)
    walk_nt[pairs.always[k]] = n_iou
    walk_off = _arrays.offsets(prep.gt.row[walk_gt], n_rows)
    cap = np.minimum(np.diff(prep.gt.off), np.diff(prep.pd.off)) * n_iou
    ev_off = _arrays.offsets_from_lengths(cap)
    ev_n = np.zeros((n_rows, n_iou), dtype=np.int64)
    ev_walk = np.empty(int(ev_off[-1]), dtype=np.int64)
    run_ranges(greedy_match_by_score, (prep.gt.off, walk_off, walk_gt, walk_pd, walk_iou,
                                       walk_nt, n_iou, ev_off, ev_n, ev_walk),
               walk_off + prep.gt.off)
    out_off = _arrays.offsets_from_lengths(ev_n.sum(axis=1))
    ev_t, ev_w = np.empty(int(out_off[-1]), np.int32), np.empty(int(out_off[-1]), np.int64)
    run_ranges(compact_events, (ev_off, ev_n, ev_walk, out_off, ev_t, ev_w), out_off)
    ev_k = k[ev_w].astype(index_dtype(len(pairs)))
    ev_c = base.npass[pairs.pd[ev_k]].astype(np.int32)
    score_rows = _score_row_tables(prep, base, ev_k, ev_c, ev_t)
    return dataclasses.replace(base, narrow={**base.narrow, **narrowed(ev_c=ev_c)}, ev_k=ev_k,
                               ev_t=ev_t, ev_roff=out_off, score_rows=score_rows)


def rf_true_positives(prep: Prepared, m: Matches) -> tuple[np.ndarray, np.ndarray]:
    """(rf, tp): the (data row, feature) entries with a same-feature match event (sorted) and
    their true positives (len(rf), C, T), from the events' rectangles.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(confidence=pl.lit(0.9))
    >>> part = pm.partial(gt, pd, greedy_order="score", confidence_thresholds=[0.5, 0.95],
    ...                   iou_thresholds=[0.5])
    >>> rf, tp = rf_true_positives(part.detail.prep, part.detail.matches_arrays)
    >>> rf.tolist(), tp.tolist()  # one (row, feature); a match at c = 0.5 only
    ([0], [[[1], [0]]])
    """
    C, T = prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    F = max(len(prep.features), 1)
    ev_gt = m.ev_gt
    gf = prep.gt.feat[ev_gt]
    same = gf == prep.pd.feat[m.ev_pd]
    ev_rf = np.searchsorted(m.rf_row * F + m.rf_feat, m.gt_row[ev_gt[same]] * F + gf[same])
    rf, inv = np.unique(ev_rf, return_inverse=True)
    c_lo, c_hi, t_lo, t_hi = (np.ascontiguousarray(a[same], dtype=np.int64)
                              for a in m.rectangles())
    tp = accumulate_rectangles(inv.astype(np.int64), c_lo, c_hi, t_lo, t_hi, rf.shape[0], C, T)
    return rf, tp


def _per_row(values: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Sum the leading axis of ``values`` into data rows (``rows`` ascending)."""
    out = np.zeros((n_rows, *values.shape[1:]), dtype=values.dtype)
    if rows.shape[0]:
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        out[rows[starts]] = np.add.reduceat(values, starts, axis=0)
    return out


def _score_row_tables(prep: Prepared, base: Matches, ev_k, ev_c, ev_t):
    """row_counts and row_means (see :class:`Matches`) of the score-ordered walk: sums over
    the features of a row, and means of the per-feature ratios defined on it (defined-ness
    depends on the counts of annotations only, as under IoU order)."""
    n, C, T = prep.n_rows, prep.conf_thr.shape[0], prep.iou_thr.shape[0]
    probe = dataclasses.replace(base, narrow={**base.narrow, "ev_c": ev_c}, ev_k=ev_k, ev_t=ev_t)
    rf, tp = rf_true_positives(prep, probe)
    rf_row = base.rf_row
    kept = base.rf_kept(prep)                      # (n_rf, C)
    ngt = base.rf_ngt.astype(np.int64)
    k_a, g_a = kept[rf][:, :, None], ngt[rf][:, None, None]
    tp_f = tp.astype(np.float64)
    ratios = (np.divide(tp_f, k_a, out=np.zeros_like(tp_f), where=k_a > 0), tp_f / g_a,
              2.0 * tp_f / (k_a + g_a))
    sums = [_per_row(v, rf_row[rf], n) for v in ratios]
    tp_row = _per_row(tp, rf_row[rf], n)
    kept_row = _per_row(kept, rf_row, n)[:, :, None]
    defined = (_per_row((kept > 0).astype(np.int64), rf_row, n),
               _per_row((ngt > 0).astype(np.int64)[:, None], rf_row, n),
               _per_row((np.arange(C)[None, :] < base.rf_until[:, None]).astype(np.int64),
                        rf_row, n))
    row_counts = np.empty((3, n, C, T), dtype=np.int64)
    row_counts[0] = tp_row
    row_counts[1] = kept_row - tp_row
    row_counts[2] = np.diff(prep.gt.off)[:, None, None] - tp_row
    row_means = np.empty((3, n, C, T), dtype=np.float64)
    for i in range(3):
        d = np.broadcast_to(defined[i][:, :, None], (n, C, T))
        row_means[i] = np.where(d > 0, sums[i] / np.maximum(d, 1), np.nan)
    return row_counts, row_means


def matches_frame(prep: Prepared, m: Matches) -> pl.DataFrame:
    """The match events as a frame.

    IoU order: (*keys, confidence_threshold, gt_id, pd_id, iou, threshold_free, gt_feature,
    pd_feature) — the pairs matched by the walk at IoU threshold 0 for each confidence
    threshold; the matches at IoU threshold ``t`` are those passing the IoU test or
    ``threshold_free`` (classification pairs, which IoU thresholds do not apply to).

    Score order: (*keys, iou_threshold, confidence_threshold, gt_id, pd_id, iou,
    threshold_free, gt_feature, pd_feature) — the matches of the walk at each IoU threshold;
    ``confidence_threshold`` is the highest confidence threshold the match holds at, and it
    holds at every lower one too. :func:`matched_at` reads either at one cell.

    Examples
    --------
    >>> import polars as pl, polars_metrics as pm
    >>> box = pl.Array(pl.Float64, 4)
    >>> gt = pl.DataFrame({"data_row": ["a"], "feature": ["cat"], "bbox": [[0.0, 0, 10, 10]]},
    ...                   schema_overrides={"bbox": box})
    >>> pd = gt.with_columns(confidence=pl.lit(0.9))
    >>> part = pm.partial(gt, pd, greedy_order="score", confidence_thresholds=[0.5, 0.8],
    ...                   iou_thresholds=[0.5])
    >>> matches_frame(part.detail.prep, part.detail.matches_arrays).select("iou_threshold", "confidence_threshold", "pd_id").rows()
    [(0.5, 0.8, 0)]
    """
    names = pl.Series(list(prep.features), dtype=pl.String)
    cols: dict[str, object] = {}
    if m.score_ordered:
        cols[s.IOU_THRESHOLD] = prep.iou_thr[m.ev_t]
        cols[s.CONFIDENCE_THRESHOLD] = prep.conf_thr[m.ev_c - 1]
    else:
        cols[s.CONFIDENCE_THRESHOLD] = prep.conf_thr[m.ev_c]
    ev_gt, ev_pd = m.ev_gt, m.ev_pd
    cols.update({
        s.GT_ID: prep.gt.column(s.ID).gather(ev_gt),
        s.PD_ID: prep.pd.column(s.ID).gather(ev_pd),
        s.IOU: m.ev_iou,
        THRESHOLD_FREE: m.ev_free,
        s.GT_FEATURE: names.gather(prep.gt.feat[ev_gt]),
        s.PD_FEATURE: names.gather(prep.pd.feat[ev_pd]),
    })
    return pl.concat([prep.rows.select(prep.keys)[m.gt_row[ev_gt]], pl.DataFrame(cols)],
                     how="horizontal")


def matched_at(matches: pl.DataFrame, confidence: float, iou: float,
               strict: bool = True) -> pl.DataFrame:
    """The rows of a :func:`matches_frame` (or of merged ones) that are matches at the cell
    (confidence threshold, IoU threshold); both values are grid values. ``strict``: the
    profile's ``iou_strict`` (read under IoU order; score-ordered frames list each IoU
    threshold's matches).

    Examples
    --------
    >>> frame = pl.DataFrame({"iou_threshold": [0.5, 0.5, 0.75], "confidence_threshold": [0.2, 0.9, 0.9],
    ...                       "gt_id": [1, 2, 2]})
    >>> matched_at(frame, 0.5, 0.5)["gt_id"].to_list()
    [2]
    """
    if s.IOU_THRESHOLD in matches.columns:  # score order
        return matches.filter((pl.col(s.IOU_THRESHOLD) == iou)
                              & (pl.col(s.CONFIDENCE_THRESHOLD) >= confidence))
    passes = pl.col(s.IOU) > iou if strict else pl.col(s.IOU) >= min(iou, ALMOST_ONE)
    return matches.filter((pl.col(s.CONFIDENCE_THRESHOLD) == confidence)
                          & (passes | pl.col(THRESHOLD_FREE)))
