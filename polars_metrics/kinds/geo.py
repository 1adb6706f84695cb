"""Geospatial annotations (SPEC §3): lon/lat in, planar IoU on a local equal-area plane out.

With ``crs="EPSG:4326"`` every data row's geometries — both sides — are projected with the
Lambert azimuthal equal-area projection on the WGS 84 ellipsoid (Snyder, *Map Projections: A
Working Manual*, 1987, pp. 187–190), centred on the row's centroid. The projection preserves
areas, and over an annotation-sized extent it is as close to a similarity as makes no
difference to an IoU, so IoU is computed in metres: never in degrees. Buffers of points and
lines (the radius) are in metres too. Pure numpy, no pyproj.
"""
from __future__ import annotations

import numpy as np

from polars_metrics.errors import ProfileError

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
GEOGRAPHIC = ("EPSG:4326", "OGC:CRS84", "CRS84", "WGS84")
_E2 = WGS84_F * (2.0 - WGS84_F)
_E = np.sqrt(_E2)
_MAX_LAT = 89.999999  # the polar aspect is the limit of the oblique one; stay just off it


def is_geographic(crs: str | None) -> bool:
    """True for lon/lat on WGS 84, False for planar coordinates (``crs=None``).

    >>> is_geographic("epsg:4326"), is_geographic(None)
    (True, False)
    """
    if crs is None:
        return False
    if isinstance(crs, str) and crs.strip().upper() in GEOGRAPHIC:
        return True
    raise ProfileError(
        f"crs={crs!r} is not supported; use crs='EPSG:4326' for (lon, lat) coordinates on WGS 84, "
        "or crs=None for planar coordinates (pixels, metres)."
    )


def _q(sin_phi: np.ndarray) -> np.ndarray:
    es = _E * sin_phi
    return (1.0 - _E2) * (sin_phi / (1.0 - es * es) - np.log((1.0 - es) / (1.0 + es)) / (2.0 * _E))


_QP = float(_q(np.array(1.0)))
_RQ = WGS84_A * np.sqrt(_QP / 2.0)


def laea(lon: np.ndarray, lat: np.ndarray, lon0: np.ndarray, lat0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lambert azimuthal equal-area (ellipsoidal, oblique) x, y in metres of (lon, lat) degrees
    around (lon0, lat0); all four arguments broadcast.

    >>> x, y = laea(np.array([0.0, 0.001]), np.array([0.0, 0.0]), 0.0, 0.0)
    >>> x.round(2).tolist(), y.round(2).tolist()
    ([0.0, 111.32], [0.0, 0.0])
    """
    phi = np.radians(lat)
    phi1 = np.radians(np.clip(lat0, -_MAX_LAT, _MAX_LAT))
    dlam = np.radians(lon - lon0)
    sin_b = np.clip(_q(np.sin(phi)) / _QP, -1.0, 1.0)
    cos_b = np.sqrt(1.0 - sin_b * sin_b)
    sin_b1 = np.clip(_q(np.sin(phi1)) / _QP, -1.0, 1.0)
    cos_b1 = np.sqrt(1.0 - sin_b1 * sin_b1)
    m1 = np.cos(phi1) / np.sqrt(1.0 - _E2 * np.sin(phi1) ** 2)
    d = WGS84_A * m1 / (_RQ * cos_b1)
    cos_dl = np.cos(dlam)
    b = _RQ * np.sqrt(2.0 / (1.0 + sin_b1 * sin_b + cos_b1 * cos_b * cos_dl))
    x = b * d * cos_b * np.sin(dlam)
    y = (b / d) * (cos_b1 * sin_b - sin_b1 * cos_b * cos_dl)
    return x, y


def row_centres(lon: np.ndarray, lat: np.ndarray, row: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per data row: the circular mean of longitudes (safe across the antimeridian) and the mean
    latitude of the given vertices (rows without vertices get (0, 0)).

    >>> lon0, lat0 = row_centres(np.array([179.0, -179.0]), np.array([10.0, 20.0]),
    ...                          np.array([0, 0]), 2)
    >>> np.abs(lon0).round(6).tolist(), lat0.tolist()
    ([180.0, 0.0], [15.0, 0.0])
    """
    ok = np.isfinite(lon) & np.isfinite(lat)
    lon, lat, row = lon[ok], lat[ok], row[ok]
    lam = np.radians(lon)
    n = np.bincount(row, minlength=n_rows).astype(np.float64)
    s = np.bincount(row, weights=np.sin(lam), minlength=n_rows)
    c = np.bincount(row, weights=np.cos(lam), minlength=n_rows)
    lon0 = np.degrees(np.arctan2(s, c))
    with np.errstate(invalid="ignore", divide="ignore"):
        lat0 = np.where(n > 0, np.bincount(row, weights=lat, minlength=n_rows) / n, 0.0)
    return lon0, lat0


def project_sides(xy_a: np.ndarray, row_a: np.ndarray, xy_b: np.ndarray, row_b: np.ndarray,
                  n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Project the (lon, lat) vertices of both sides of every data row around the row's centre.

    ``row_a`` / ``row_b`` give each vertex's data row; both sides of a row share one plane.

    >>> a, b = project_sides(np.array([[0.0, 0.0]]), np.array([0]), np.array([[0.001, 0.0]]),
    ...                      np.array([0]), 1)
    >>> round(float(b[0, 0] - a[0, 0]), 2)
    111.32
    """
    lon0, lat0 = row_centres(np.concatenate([xy_a[:, 0], xy_b[:, 0]]),
                             np.concatenate([xy_a[:, 1], xy_b[:, 1]]),
                             np.concatenate([row_a, row_b]), n_rows)
    out = []
    for xy, row in ((xy_a, row_a), (xy_b, row_b)):
        x, y = laea(xy[:, 0], xy[:, 1], lon0[row], lat0[row])
        out.append(np.ascontiguousarray(np.stack([x, y], axis=1)))
    return out[0], out[1]
