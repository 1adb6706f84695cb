"""Match events: what one greedy walk keeps (:class:`Matches`), and the walk kernel's driver.

A walk's match events are stored as (pair, confidence index); everything else an event
carries (ground truth, prediction, IoU, IoU bin) is read through its pair. The per-(data row,
feature) quantities and the data-row table come from the events on demand. :mod:`matching`
runs the walks and builds the frames from them.
"""
from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass

import numpy as np

from polars_metrics import _arrays
from polars_metrics._arrays import narrowed, widened  # noqa: F401 (re-exported)
from polars_metrics._kernels.aot import kernel
from polars_metrics._parallel import Background, num_threads, run_ranges
from polars_metrics._spare import borrow, spare_buffer
from polars_metrics.pairs import Pairs
from polars_metrics.prepare import Prepared


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
    # the event fields read through the pairs and the narrowed fields widened, kept while the
    # call that built this walk runs (its stages read them several times); emptied for good
    # once the run's result keeps its compact forms (:meth:`keep`) or by :meth:`drop_values`
    _in_call: dict[str, np.ndarray] | None = dataclasses.field(
        default_factory=dict, init=False, compare=False, repr=False)
    # (job, row_counts, row_means): the data-row table's arrays being built in the background
    # (:meth:`start_row_tables`) until the first read takes them
    _ahead: tuple[Background, np.ndarray, np.ndarray] | None = dataclasses.field(
        default=None, init=False, compare=False, repr=False)

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
        return self._derived("rf_feat", lambda: widened(self.narrow["rf_feat"]))

    @property
    def rf_ngt(self) -> np.ndarray:
        return self._derived("rf_ngt", lambda: widened(self.narrow["rf_ngt"]))

    @property
    def rf_until(self) -> np.ndarray:
        return self._derived("rf_until", lambda: widened(self.narrow["rf_until"]))

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
            walk = walk_rows(self.wide_sides(), self.npass, self.pairs, self.row_iou.shape[1],
                             self.class_aware, self.rf_off, self.rf_feat)
            object.__setattr__(self, "values", compact_walk_values(walk))
        return self.values

    def wide_sides(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``sides`` with the feature codes as int32 (a kept result's are narrowed)."""
        gt_off, pd_off, gt_feat, pd_feat = self.sides
        return gt_off, pd_off, widened(gt_feat), widened(pd_feat)

    def keep(self, pairs: Pairs, gt_codes: np.ndarray, pd_codes: np.ndarray) -> None:
        """Hold the compact forms a result keeps (in place, as :meth:`drop_values`): ``pairs``
        as :meth:`Pairs.kept` made them and the sides' narrowed feature codes, the same arrays
        the result's prepared view holds. Readers widen them on use. The call is over: its
        cache of widened fields goes too (a partial result kept for a merge, or sent to a
        worker, carries no copies)."""
        gt_off, pd_off, _, _ = self.sides
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "sides", (gt_off, pd_off, gt_codes, pd_codes))
        object.__setattr__(self, "_in_call", None)

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

    def through_pairs(self) -> tuple[np.ndarray, ...]:
        """The arguments with which a kernel reads each event's ground truth, prediction and
        IoU bin in place (``matching.pair_bin``), instead of gathering them: (ev_k, pair gt,
        pair pd, pair IoU, pair free flags — one entry when one holds for every pair — and
        the IoU cuts of :func:`bin_cuts`)."""
        free = self.pairs.always
        if free.shape[0] > 1 and free.strides[0] == 0:  # one flag for every pair (a view)
            free = free[:1]
        return (self.ev_k, self.pairs.gt, self.pairs.pd, self.pairs.iou,
                np.ascontiguousarray(free), bin_cuts(self.iou_thr, self.iou_strict))

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
        tables: 6 × 8 bytes × C × T per data row); the first call takes the ones the run
        started building ahead (:meth:`start_row_tables`), if any."""
        if self.score_rows is not None:
            return self.score_rows
        ahead = self._ahead
        if ahead is not None:
            object.__setattr__(self, "_ahead", None)
            job, counts, means = ahead
            job.wait()
            return counts, means
        kern, args, work, counts, means = self._row_tables_call()
        run_ranges(kern, args, work)
        return counts, means

    def _row_tables_call(self):
        """(kernel, arguments, work per row, row_counts, row_means) of :meth:`row_tables`."""
        shape = (3, *self.row_iou.shape, self.n_iou)
        # in the previous table's memory once nothing holds that table (see _spare)
        counts = spare_buffer("row_counts", shape, np.int64)
        means = spare_buffer("row_means", shape, np.float64)
        gt_off, pd_off, gt_feat, pd_feat = self.wide_sides()
        args = (gt_off, pd_off, gt_feat, pd_feat, self.npass, self.rf_off, self.rf_feat,
                self.rf_ngt, self.rf_until, self.ev_roff, self.ev_c, *self.through_pairs(),
                counts, means)
        return (event_kernel(row_tables_range, self.ev_k), args, self.ev_roff + self.rf_off,
                counts, means)

    def start_row_tables(self) -> None:
        """Start building :meth:`row_tables` on a pool thread while the run's next stages
        (cube, confusion, finalize) go on, on one core: the first read of the data-row table
        takes the arrays, its thread joining in for what is left. Nothing starts on one thread
        or under score order (its tables come with the walk).

        Arrays built ahead and never read would hold the table's spare (see ``_spare``), so a
        process keeps one such set: the next run's match stage cancels an unread one's job and
        lets its arrays go (:func:`drop_unread_tables`; a later read builds them again, as
        before).
        """
        global _unread
        if self.score_rows is not None or num_threads() <= 1:
            return
        drop_unread_tables()
        kern, args, work, counts, means = self._row_tables_call()
        object.__setattr__(self, "_ahead", (Background(kern, args, work), counts, means))
        _unread = weakref.ref(self)

    def _drop_ahead(self) -> None:
        ahead = self._ahead
        if ahead is not None:
            object.__setattr__(self, "_ahead", None)
            ahead[0].cancel()  # its worker is done with the spare before anyone else takes it

    def __getstate__(self) -> dict:
        """Pickled without the table being built ahead (a thread's job): the copy builds it
        on read."""
        return {**self.__dict__, "_ahead": None}

    def rf_kept(self, prep: Prepared) -> np.ndarray:
        """(n_rf, C) kept predictions per (data row, feature) and confidence threshold,
        from the predictions themselves (not stored)."""
        n_rf, C = int(self.rf_off[-1]), self.row_iou.shape[1]
        F = max(len(prep.features), 1)
        rf = np.searchsorted(self.rf_row * F + self.rf_feat, prep.pd.row * F + prep.pd.feat)
        hist = np.bincount(rf * (C + 1) + self.npass, minlength=n_rf * (C + 1))
        return _arrays.count_above(hist.reshape(n_rf, C + 1))  # kept at c iff npass > c


_unread: weakref.ref[Matches] | None = None  # the last walk that started its tables ahead


def drop_unread_tables() -> None:
    """Cancel the job building the last run's data-row table ahead and let its arrays go,
    unless they were read already: a new run is starting and reuses their spare, while the
    old result keeps only what it kept before (as a run that never built them ahead)."""
    last = _unread() if _unread is not None else None
    if last is not None:
        last._drop_ahead()


greedy_match_by_iou = kernel("matching", "greedy_match_by_iou")
row_tables_range = kernel("matching", "row_tables_range")
compact_events = kernel("groups", "compact_events")
compact_values = kernel("groups", "compact_values")
ROWS_PER_CHUNK = 64  # must equal _kernels.matching.ROWS_PER_CHUNK (rows sharing scratch arrays)


def walk_rows(sides, npass, pairs: Pairs, n_conf: int, class_aware: bool, rf_off, rf_feat) -> tuple:
    """The IoU-ordered walk kernel over every data row: (ev_off, ev_n, ev_pair, rf_ngt,
    rf_until, iv_n, iv_rf, iv_val, row_iou), events and values in per-row slots."""
    gt_off, pd_off, gt_feat, pd_feat = sides
    n_rows, n_rf = gt_off.shape[0] - 1, rf_feat.shape[0]
    cap = np.minimum(np.diff(gt_off), np.diff(pd_off)) * n_conf
    ev_off = _arrays.offsets_from_lengths(cap)
    n_cap = int(ev_off[-1])
    ev_n = np.zeros((n_rows, n_conf), dtype=np.int64)
    ev_pair, iv_val, iv_rf = _slots(n_cap)
    rf_ngt = np.zeros(n_rf, dtype=np.int32)
    rf_until = np.zeros(n_rf, dtype=np.int32)
    iv_n = np.zeros((n_rows, n_conf), dtype=np.int64)
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


def _slots(n_cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The walk's per-row slots (ev_pair int64, iv_val float64, iv_rf int32; 20 bytes each),
    uninitialized: in the data-row table's free spare when there is one (:func:`borrow`; the
    slots are compacted and gone before any table is built), else new arrays."""
    scratch = borrow("row_means", 20 * n_cap)
    if scratch is None:
        return (np.empty(n_cap, np.int64), np.empty(n_cap, np.float64),
                np.empty(n_cap, np.int32))
    return (scratch[:8 * n_cap].view(np.int64), scratch[8 * n_cap:16 * n_cap].view(np.float64),
            scratch[16 * n_cap:].view(np.int32))


def compact_walk_values(walk: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(iv_off, iv_c, iv_rf, iv_val) from a walk's per-row value slots."""
    ev_off, iv_n, iv_rf, iv_val = walk[0], walk[5], walk[6], walk[7]
    iv_off = _arrays.offsets_from_lengths(iv_n.sum(axis=1))
    n_iv = int(iv_off[-1])
    iv_c, iv_rf_out = np.empty(n_iv, np.int32), np.empty(n_iv, np.int32)
    iv_val_out = np.empty(n_iv, np.float64)
    run_ranges(compact_values, (ev_off, iv_n, iv_rf, iv_val, iv_off, iv_c, iv_rf_out, iv_val_out),
               iv_off)
    return iv_off, iv_c, iv_rf_out, iv_val_out


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


count_at_or_below = kernel("sorting", "count_at_or_below")
ALMOST_ONE = 1 - 1e-10  # the non-strict test compares with min(t, ALMOST_ONE), as COCO does


def event_kernel(kern, ev_k: np.ndarray):
    """``kern``, for events stored as int32 pair positions (its compiled signature); numba's
    JIT of it beyond 2**31 - 1 pairs, where positions are int64 (no compiled variant: such a
    run holds tens of GB of pairs, and compiling takes seconds of it)."""
    return kern if ev_k.dtype == np.int32 else kern.dispatcher


def bin_cuts(iou_thr: np.ndarray, strict: bool) -> np.ndarray:
    """Ascending cuts such that an IoU passes IoU index t iff ``cuts[t] <= iou``: the profile's
    test ``iou > t`` when ``strict`` (``nextafter(t, inf) <= iou``), else
    ``iou >= min(t, 1 - 1e-10)``.

    >>> bin_cuts(np.array([0.5, 1.0]), False).tolist() == [0.5, ALMOST_ONE]
    True
    >>> bool(bin_cuts(np.array([0.5]), True)[0] > 0.5)
    True
    """
    thr = np.asarray(iou_thr, np.float64)
    if strict:  # t < v  iff  nextafter(t, inf) <= v
        return np.nextafter(thr, np.inf)
    return np.minimum(thr, ALMOST_ONE)


def iou_passes(iou: np.ndarray, iou_thr: np.ndarray, strict: bool) -> np.ndarray:
    """Number of IoU thresholds each IoU passes: ``iou > t`` when ``strict``, else
    ``iou >= min(t, 1 - 1e-10)``. Thresholds ascend, so IoU index t passes iff t < result.

    Examples
    --------
    >>> thr = np.array([0.0, 0.5, 1.0])
    >>> iou_passes(np.array([0.5, 1.0]), thr, True), iou_passes(np.array([0.5, 1.0]), thr, False)
    (array([1, 2], dtype=int32), array([2, 3], dtype=int32))
    """
    return count_at_or_below(bin_cuts(iou_thr, strict), np.ascontiguousarray(iou, np.float64))
