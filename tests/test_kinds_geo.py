"""Geospatial (crs="EPSG:4326"): a local equal-area plane per data row, never IoU in degrees."""
from __future__ import annotations

import numpy as np
import polars as pl
import pyproj  # noqa: E402
import pytest
import shapely

import polars_metrics as pm
from polars_metrics.kinds.geo import laea


def to_lonlat(xy, lon0, lat0):
    """Metres on the azimuthal equidistant plane at (lon0, lat0) → lon/lat (pyproj)."""
    t = pyproj.Transformer.from_crs(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84",
                                    "EPSG:4326", always_xy=True)
    x, y = t.transform(np.asarray(xy)[:, 0], np.asarray(xy)[:, 1])
    return np.c_[x, y]


def test_projection_matches_pyproj_laea():
    rng = np.random.default_rng(0)
    for lon0, lat0 in [(0, 0), (10, 60), (170, -45), (-100, 80)]:
        lon = lon0 + rng.uniform(-0.1, 0.1, 200)
        lat = lat0 + rng.uniform(-0.1, 0.1, 200)
        t = pyproj.Transformer.from_crs("EPSG:4326", f"+proj=laea +lat_0={lat0} +lon_0={lon0} +ellps=WGS84",
                                        always_xy=True)
        want = np.c_[t.transform(lon, lat)]
        got = np.c_[laea(lon, lat, np.full(200, lon0), np.full(200, lat0))]
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


SQUARE = np.array([[0, 0], [100, 0], [100, 80], [0, 80]], float)
OTHER = SQUARE * 0.9 + [35, 20]
PLACES = [(12.0, 0.0), (12.0, 60.0), (-70.0, -33.0), (179.9995, 20.0)]  # the last straddles ±180


def one(gt, pd, **kw) -> float:
    out = pm.pairwise_iou(gt, pd, **kw)["iou"].to_list()
    return out[0] if out else 0.0


@pytest.mark.parametrize("kind", ["polygon", "point", "line", "box"])
def test_same_shapes_in_metres_give_the_same_iou_everywhere(kind):
    values = []
    for lon0, lat0 in PLACES:
        a, b = to_lonlat(SQUARE, lon0, lat0), to_lonlat(OTHER, lon0, lat0)
        a[:, 0] = (a[:, 0] + 180) % 360 - 180
        b[:, 0] = (b[:, 0] + 180) % 360 - 180
        if kind == "polygon":
            col, gv, pv, dtype = "polygon", [a.tolist()], [b.tolist()], pm.POLYGON_DTYPE
        elif kind == "point":
            col, gv, pv, dtype = "point", a[0].tolist(), b[0].tolist(), pm.POINT_DTYPE
        elif kind == "line":
            col, gv, pv, dtype = "line", a[:3].tolist(), b[:3].tolist(), pm.LINE_DTYPE
        else:  # a lon/lat box from the metric square's corners
            if lon0 > 179:
                continue
            col, dtype = "bbox", pm.BBOX_DTYPE
            gv = [*a.min(axis=0), *a.max(axis=0)]
            pv = [*b.min(axis=0), *b.max(axis=0)]
        gt = pl.DataFrame({"data_row": ["tile"], "feature": ["f"], col: [gv]}, schema_overrides={col: dtype})
        pd = pl.DataFrame({"data_row": ["tile"], "feature": ["f"], col: [pv]}, schema_overrides={col: dtype})
        values.append(one(gt, pd, crs="EPSG:4326", buffer_radius=40.0))
    # a lon/lat box is bounded by meridians and parallels: its shape in metres changes with the
    # latitude at order (size / earth radius) * tan(latitude) ~ 1e-5, so boxes only agree to 1e-4
    assert max(values) - min(values) < (1e-4 if kind == "box" else 1e-6), values
    if kind == "polygon":
        sa, sb = shapely.Polygon(SQUARE), shapely.Polygon(OTHER)
        assert values[0] == pytest.approx(sa.intersection(sb).area / sa.union(sb).area, abs=1e-6)
    if kind == "point":
        sa, sb = shapely.Point(SQUARE[0]).buffer(40), shapely.Point(OTHER[0]).buffer(40)
        assert values[0] == pytest.approx(sa.intersection(sb).area / sa.union(sb).area, abs=1e-6)


def test_iou_in_degrees_would_be_wrong_at_high_latitude():
    a, b = to_lonlat(SQUARE, 12.0, 60.0), to_lonlat(SQUARE + [50, 0], 12.0, 60.0)
    gt = pl.DataFrame({"data_row": ["t"], "feature": ["f"], "polygon": [[a.tolist()]]},
                      schema_overrides={"polygon": pm.POLYGON_DTYPE})
    pd = pl.DataFrame({"data_row": ["t"], "feature": ["f"], "polygon": [[b.tolist()]]},
                      schema_overrides={"polygon": pm.POLYGON_DTYPE})
    assert one(gt, pd, crs="EPSG:4326") == pytest.approx(50 * 80 / (150 * 80), abs=1e-6)
    # the same lon/lat numbers read as a plane give the same IoU only by luck of the affine map;
    # a point buffer in degrees is a disaster: the radius would be 40 degrees
    gp = pl.DataFrame({"data_row": ["t"], "feature": ["f"], "point": [a[0].tolist()]},
                      schema_overrides={"point": pm.POINT_DTYPE})
    pp = pl.DataFrame({"data_row": ["t"], "feature": ["f"], "point": [b[0].tolist()]},
                      schema_overrides={"point": pm.POINT_DTYPE})
    assert one(gp, pp, buffer_radius=40.0) > 0.99
    assert one(gp, pp, buffer_radius=40.0, crs="EPSG:4326") < 0.4


def test_unsupported_crs_fails_clearly():
    gt = pl.DataFrame({"data_row": ["t"], "feature": ["f"], "bbox": [[0.0, 0, 1, 1]]},
                      schema_overrides={"bbox": pm.BBOX_DTYPE})
    with pytest.raises(pm.ProfileError, match="EPSG:4326"):
        pm.pairwise_iou(gt, gt, crs="EPSG:3857")
