"""The kernels' row / group ranges split over threads give the same results as one range.

Every kernel with real work per unit takes a ``(lo, hi)`` range and is called through
``_parallel.run_ranges``, which runs work below ``SMALL`` units on one thread — so the other
test files, on small inputs, exercise one range only. Here ``SMALL`` is 0 and
``NUMBA_NUM_THREADS`` is 3: every call is split into up to three ranges on pool threads, and the
peer-comparing tests below (pycocotools, shapely, the Labelbox SDK, the naive references) run
again in that mode. A range boundary that drops, repeats or misplaces a unit fails them.
"""
from __future__ import annotations

import numpy as np
import pytest
from test_coco_random import test_random_bbox, test_random_segm  # noqa: F401
from test_kinds_mask import (  # noqa: F401
    test_box_polygon_and_rasterized_mask_agree,
    test_mask_pairs_match_pycocotools_and_naive,
)
from test_kinds_point_line import (  # noqa: F401
    test_circle_option_and_radius,
    test_point_pairs_match_shapely_buffer,
)
from test_kinds_polygon import (  # noqa: F401
    test_multipolygon_pairs_match_naive,
    test_polygon_and_box_pairs_match_naive,
)
from test_kinds_span import test_span_pairs_match_naive  # noqa: F401
from test_labelbox_sdk import (  # noqa: F401
    test_many_rows_match_sdk,
    test_semantic_masks_in_miou_instances_in_confusion,
)

from polars_metrics import _parallel


@pytest.fixture(autouse=True)
def split_every_call(monkeypatch):
    monkeypatch.setattr(_parallel, "SMALL", 0)
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")


def test_split_covers_every_unit_once():
    """The split itself, by hand: crowded units do not share a range, every unit is in one."""
    cum = np.array([0, 100, 101, 102, 103, 200], np.int64)  # units 0 and 4 carry the work
    ranges = _parallel.split(cum, 3)
    assert ranges[0] == (0, 1) and ranges[-1][1] == 5
    assert all(a[1] == b[0] for a, b in zip(ranges[:-1], ranges[1:], strict=True))
    seen = []
    _parallel.run_ranges(lambda lo, hi: seen.extend(range(lo, hi)), (), cum)
    assert sorted(seen) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("lengths", [[], [0], [5], [1, 0, 7, 3], [2] * 9, [100, 1]])
def test_pieces_cover_the_arrays_once_in_order(lengths):
    """``run_pieces``: a column in chunks, split in place over the threads (SMALL is 0 here)."""
    import threading

    arrays = [np.arange(n) + 1000 * i for i, n in enumerate(lengths)]
    total = sum(lengths)
    out, seen, lock = np.full(total, -1, np.int64), [], threading.Lock()

    def fill(piece, start):
        assert piece.base is not None or piece.size == 0  # a view: nothing copied
        with lock:
            seen.append((start, start + piece.shape[0]))
        out[start:start + piece.shape[0]] = piece

    _parallel.run_pieces(fill, arrays)
    assert out.tolist() == (np.concatenate(arrays).tolist() if arrays else [])
    covered = sorted(seen)
    assert all(a[1] == b[0] for a, b in zip(covered, covered[1:], strict=False))
    assert sum(b - a for a, b in covered) == total
