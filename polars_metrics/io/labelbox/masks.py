"""Labelbox masks to ``mask`` values: PNG files / ``file://`` URLs (one colour of a composite
mask, or any non-zero pixel), base64 PNGs, and uncompressed RLE (behind ``allow_rle_masks``).
Masks are never fetched over the network."""
from __future__ import annotations

import base64
import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from polars_metrics.io.labelbox.records import RecordError, integer, text
from polars_metrics.kinds._rle import runs_from_dense


class MaskSource:
    """Turns mask references into RLE values without any network access.

    ``uri_map``: a mapping URL → local path, or a callable URL → local path (or None).
    ``mask_root``: a directory; a relative path resolves against it, and an http(s) URL maps
    to ``mask_root / <last path segment of the URL>``. Decoded composite PNGs are cached (one
    composite PNG is shared by every instance of a label).
    """

    def __init__(self, mask_root=None, uri_map=None, cache_size: int = 16):
        self.root = None if mask_root is None else Path(mask_root)
        self.uri_map = uri_map
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def local_path(self, uri: str, field: str) -> Path:
        mapped = None
        if self.uri_map is not None:
            mapped = self.uri_map(uri) if callable(self.uri_map) else self.uri_map.get(uri)
        if mapped is not None:
            path = Path(os.fspath(mapped))
        else:
            parsed = urlparse(uri)
            if parsed.scheme in ("http", "https"):
                if self.root is None:
                    raise RecordError(field, f"{uri!r} is a web address; masks are never fetched "
                                      "over the network. Download it and pass uri_map={url: "
                                      "local_path} or mask_root=<directory holding the files>.")
                name = unquote(Path(parsed.path).name)
                path = self.root / name
            elif parsed.scheme == "file":
                path = Path(unquote(parsed.path))
            elif parsed.scheme in ("", ) or (len(parsed.scheme) == 1 and os.name == "nt"):
                path = Path(uri)
                if not path.is_absolute() and self.root is not None:
                    path = self.root / path
            else:
                raise RecordError(field, f"unsupported mask address {uri!r}: give a local path, "
                                  "a file:// URL, or map it with uri_map=.")
        if not path.is_file():
            raise RecordError(field, f"mask file {str(path)!r} (for {uri!r}) does not exist.")
        return path

    def _rgb(self, path: Path) -> np.ndarray:
        key = str(path)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        from PIL import Image

        with Image.open(path) as img:
            img.load()
            arr = np.asarray(img.convert("RGB"))
        self._cache[key] = arr
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arr

    def from_uri(self, uri: Any, color: Any, field: str, any_color: bool) -> dict:
        uri = text(uri, f"{field}.instanceURI")
        path = self.local_path(uri, f"{field}.instanceURI")
        rgb = self._rgb(path)
        if color is None:
            if not any_color:
                raise RecordError(f"{field}.colorRGB", "missing: the instance is the pixels of that "
                                  "RGB colour. Add colorRGB, or pass mask_color='any' to take every "
                                  "non-zero pixel.")
            fg = (rgb != 0).any(axis=2)
        else:
            if (not isinstance(color, list | tuple) or len(color) != 3
                    or not all(isinstance(c, int) and not isinstance(c, bool) for c in color)):
                raise RecordError(f"{field}.colorRGB", f"expected [r, g, b] integers, got {color!r}")
            fg = (rgb == np.asarray(color, dtype=rgb.dtype)[None, None, :]).all(axis=2)
        return rle_from_dense(fg)


def png_mask(value: Any, field: str) -> dict:
    """A base64 PNG (0/1 single channel, as the SDK writes) → RLE. Non-zero = foreground."""
    import io

    from PIL import Image

    data = text(value, field)
    try:
        raw = base64.b64decode(data, validate=False)
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            arr = np.asarray(img)
    except Exception as exc:  # noqa: BLE001 - any decoding problem is a format error
        raise RecordError(field, f"not a base64-encoded PNG ({exc.__class__.__name__}: {exc})") from None
    fg = (arr[..., :3] != 0).any(axis=2) if arr.ndim == 3 else arr != 0
    return rle_from_dense(fg)


def rle_from_dense(fg: np.ndarray) -> dict:
    """A dense boolean array as a ``mask`` value (counts as a uint32 array)."""
    h, w = fg.shape
    return {"height": int(h), "width": int(w), "counts": runs_from_dense(fg)}


def rle_mask(value: Mapping, field: str) -> dict:
    """{size: [h, w], counts: [...]} (uncompressed COCO RLE), behind ``allow_rle_masks``."""
    size = value.get("size")
    counts = value.get("counts")
    if not isinstance(size, list) or len(size) != 2 or not isinstance(counts, list):
        raise RecordError(field, "an RLE mask is {\"size\": [height, width], \"counts\": [...]}")
    h, w = integer(size[0], f"{field}.size[0]"), integer(size[1], f"{field}.size[1]")
    c = np.asarray([integer(x, f"{field}.counts") for x in counts], dtype=np.int64)
    if (c < 0).any() or int(c.sum()) != h * w:
        raise RecordError(f"{field}.counts", f"run lengths must be >= 0 and sum to height × width "
                          f"= {h * w}, got sum {int(c.sum())}")
    return {"height": h, "width": w, "counts": c.astype(np.uint32)}
