"""Thumbnails for the report: local images, downscaled, annotations drawn, embedded as data URIs.

``media=`` maps data rows to image files: a dict (data-row key → path), a column of the
ground-truth table, a directory (``<dir>/<key>.<png|jpg|jpeg|webp>``) or a pattern such as
``"images/{data_row}.jpg"`` formatted with the key columns. Ground truth and predictions given
to the report are drawn over the image (boxes, polygons, points, lines, mask outlines from the
RLE), coloured by their outcome at the report's initial cell. Thumbnails stop once the total
reaches ``max_bytes``.

Text (NER spans): the data rows' text — ``text=`` a dict {data-row key: text} or a column of
the ground-truth table, by default its ``text`` column when there is one — is embedded for the
data rows that have examples, with the gold and predicted spans (``start``/``end``) by id, so
the examples show the text with both spans highlighted.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl

from polars_metrics import schema as s
from polars_metrics._lazy import lazy
from polars_metrics.result import outcomes as oc
from polars_metrics.views._payload import cell_outcomes, key_labels

Image = lazy("PIL.Image")
ImageDraw = lazy("PIL.ImageDraw")

COLORS = {oc.TP: (34, 160, 70), oc.FP: (220, 40, 40), oc.FN: (240, 150, 0),
          oc.MISCLASSIFIED: (150, 60, 200)}
EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def resolve(media, rows: pl.DataFrame, keys: list[str], ground_truth=None) -> dict[int, Path]:
    """{data-row index: image path} for the rows whose file exists."""
    out: dict[int, Path] = {}
    labels = dict(zip(rows["_key"].to_list(), rows["_row"].to_list(), strict=True))
    if isinstance(media, Mapping):
        pairs = [(str(k), v) for k, v in media.items()]
    elif isinstance(media, str) and ground_truth is not None and media in ground_truth.columns:
        frame = ground_truth.select(*keys, media).unique(subset=keys)
        pairs = list(zip(key_labels(frame, keys).to_list(), frame[media].to_list(), strict=True))
    elif isinstance(media, str) and "{" in media:
        pairs = [(r["_key"], media.format(**{k: r[k] for k in keys}))
                 for r in rows.iter_rows(named=True)]
    else:
        folder = Path(media)
        pairs = []
        for key in labels:
            hits = [folder / f"{key}{ext}" for ext in EXTENSIONS if (folder / f"{key}{ext}").exists()]
            pairs.append((key, hits[0] if hits else None))
    for key, path in pairs:
        if key in labels and path is not None and Path(path).exists():
            out[labels[key]] = Path(path)
    return out


def _geometry(table: pl.DataFrame | None, keys: list[str], side: str) -> pl.DataFrame | None:
    if table is None:
        return None
    geo = [c for c in (s.BBOX, s.POLYGON, s.POINT, s.LINE, s.MASK) if c in table.columns]
    if not geo or s.ID not in table.columns:
        return None
    return table.select(*keys, s.ID, *geo).with_columns(pl.lit(side).alias(oc.SIDE))


def _draw(draw, row: dict, scale: float, color) -> None:
    def pts(seq):
        return [(float(x) * scale, float(y) * scale) for x, y in seq]

    if row.get(s.BBOX) is not None:
        x0, y0, x1, y1 = (float(v) * scale for v in row[s.BBOX])
        draw.rectangle([x0, y0, x1, y1], outline=color, width=2)
    if row.get(s.POLYGON) is not None:
        polys = row[s.POLYGON]
        if polys and polys[0] and not isinstance(polys[0][0][0], float | int):
            polys = [ring for poly in polys for ring in poly]  # multipolygon
        for ring in polys:
            if len(ring) >= 2:
                draw.line(pts(ring) + pts(ring[:1]), fill=color, width=2)
    if row.get(s.LINE) is not None and len(row[s.LINE]) >= 2:
        draw.line(pts(row[s.LINE]), fill=color, width=2)
    if row.get(s.POINT) is not None:
        (x, y), = pts([row[s.POINT]])
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=color, width=2)


def mask_outline(mask: dict, scale: float, shape: tuple[int, int], width: int = 1) -> np.ndarray:
    """The outline (boundary pixels, ``width`` deep) of a COCO uncompressed RLE mask, sampled
    onto a thumbnail of ``shape`` (rows, columns) at ``scale``.

    Examples
    --------
    >>> m = {"height": 4, "width": 4, "counts": [5, 3, 1, 3, 4]}  # a 3 x 2 block, column-major
    >>> mask_outline(m, 1.0, (4, 4)).astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 0]]
    """
    h, w, counts = int(mask["height"]), int(mask["width"]), np.asarray(mask["counts"], np.int64)
    full = np.repeat(np.arange(counts.size) % 2 == 1, counts)[: h * w]
    full = np.pad(full, (0, h * w - full.size)).reshape(w, h).T
    ys = np.minimum((np.arange(shape[0]) / scale).astype(int), h - 1)
    xs = np.minimum((np.arange(shape[1]) / scale).astype(int), w - 1)
    small = full[np.ix_(ys, xs)]
    inner = small
    for _ in range(width):
        inner = _erode(inner)
    return small & ~inner


def _erode(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    return inner


def _paint_masks(thumb, rows, scale: float):
    outlines = [(mask_outline(r[s.MASK], scale, (thumb.height, thumb.width), 2),
                 COLORS.get(r[oc.OUTCOME], (80, 80, 80)))
                for r in rows if r.get(s.MASK) is not None]
    if not outlines:
        return thumb
    arr = np.array(thumb)
    for outline, color in outlines:
        arr[outline] = color
    return Image.fromarray(arr)


def texts(text, rows: pl.DataFrame, keys: list[str], wanted: set[int], ground_truth=None,
          predictions=None, max_chars: int = 2_000_000) -> dict | None:
    """{"rows": {row: text}, "g": {"row:id": [start, end]}, "p": {...}} for the data rows in
    ``wanted`` (those with examples), or None without text."""
    if text is None and ground_truth is not None and "text" in ground_truth.columns:
        text = "text"
    if text is None:
        return None
    index = dict(zip(rows["_key"].to_list(), rows["_row"].to_list(), strict=True))
    if isinstance(text, Mapping):
        by_row = {index[str(k)]: v for k, v in text.items() if str(k) in index}
    elif ground_truth is not None and isinstance(text, str) and text in ground_truth.columns:
        frame = ground_truth.select(*keys, text).unique(subset=keys, keep="first")
        by_row = {index[k]: v for k, v in zip(key_labels(frame, keys).to_list(),
                                              frame[text].to_list(), strict=True) if k in index}
    else:
        raise ValueError(f"text={text!r}: give a dict {{data-row key: text}} or a column of "
                         "ground_truth holding each data row's text.")
    out: dict = {"rows": {}, "g": {}, "p": {}}
    total = 0
    for row in sorted(wanted):
        value = by_row.get(row)
        if value is None or total + len(value) > max_chars:
            continue
        total += len(value)
        out["rows"][str(row)] = value
    for name, table in (("g", ground_truth), ("p", predictions)):
        if table is None or not {s.START, s.END, s.ID} <= set(table.columns):
            continue
        spans = table.select(*keys, s.ID, s.START, s.END).join(
            rows.select(*keys, "_row"), on=keys).filter(
            pl.col("_row").cast(pl.String).is_in(list(out["rows"])))
        for r, i, a, b in spans.select("_row", s.ID, s.START, s.END).iter_rows():
            out[name][f"{r}:{i}"] = [a, b]
    return out


def thumbnails(ev, rows: pl.DataFrame, paths: dict[int, Path], *, ground_truth=None,
               predictions=None, confidence: float = 0.5, iou: float = 0.5, size: int = 192,
               max_bytes: int = 3_000_000) -> tuple[dict[int, str], dict]:
    """({data-row index: data URI}, a note on what was embedded)."""
    keys = list(ev.keys)
    parts = [g for g in (_geometry(ground_truth, keys, oc.GT_SIDE),
                         _geometry(predictions, keys, oc.PD_SIDE)) if g is not None]
    shapes = None
    if parts:
        o = cell_outcomes(ev, keys, confidence, iou)
        geo = pl.concat(parts, how="diagonal_relaxed")
        if geo.schema[s.ID] != o.schema[s.ID]:
            geo, o = geo.with_columns(pl.col(s.ID).cast(pl.String)), o.with_columns(
                pl.col(s.ID).cast(pl.String))
        shapes = geo.join(o, on=[oc.SIDE, *keys, s.ID], how="inner").join(
            rows.select(*keys, "_row"), on=keys)
        shapes = shapes.partition_by("_row", as_dict=True)
    out: dict[int, str] = {}
    total = 0
    for row_index, path in sorted(paths.items()):
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = size / max(im.size)
            thumb = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))))
        draw = ImageDraw.Draw(thumb)
        if shapes is not None and (row_index,) in shapes:
            drawn = list(shapes[(row_index,)].iter_rows(named=True))
            for r in drawn:
                _draw(draw, r, scale, COLORS.get(r[oc.OUTCOME], (80, 80, 80)))
            thumb = _paint_masks(thumb, drawn, scale)
        buf = io.BytesIO()
        thumb.save(buf, format="JPEG", quality=72)
        uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
        if total + len(uri) > max_bytes:
            break
        total += len(uri)
        out[row_index] = uri
    note = {"embedded": len(out), "available": len(paths), "bytes": total, "cap": max_bytes,
            "confidence": confidence, "iou": iou, "drawn": bool(parts)}
    return out, note
