"""Numeric columns of the report as one gzip-compressed binary block.

Every large array of the payload (cube, confusion, examples, gallery, histograms) is written as
a typed array into one buffer, gzip-compressed and base64-encoded into the page; the JSON keeps
a reference ``{"$": type, "o": offset, "n": length}`` in its place. The page inflates it with
the browser's own ``DecompressionStream`` (no library, no network) and reads every value back
as a float64: integers exactly, floats bit for bit (no decimal round trip), null as NaN.

Integers become uint8/16/32 (with the type's maximum as null when there are nulls); floats a dictionary (a float64
table of the distinct values, NaN last for null, and uint indices) when values repeat, else
raw float64.
"""
from __future__ import annotations

import base64
import gzip

import numpy as np

_UINTS = ((np.uint8, "u8"), (np.uint16, "u16"), (np.uint32, "u32"))


class Packer:
    """Collects typed arrays; :meth:`finish` returns the base64 text of the gzip'd buffer."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def _raw(self, arr: np.ndarray, code: str) -> dict:
        data = np.ascontiguousarray(arr).tobytes()
        ref = {"$": code, "o": self._size, "n": int(arr.size)}
        pad = (-len(data)) % 8
        self._parts.append(data + b"\0" * pad)
        self._size += len(data) + pad
        return ref

    def _uint(self, values: np.ndarray, null: np.ndarray | None) -> dict:
        top = int(values.max()) if values.size else 0
        for dtype, code in _UINTS:
            limit = int(np.iinfo(dtype).max)
            if top < limit:
                out = values.astype(dtype)
                if null is None:
                    return self._raw(out, code)
                out[null] = limit
                return {**self._raw(out, code), "z": limit}
        raise OverflowError("value beyond uint32")

    def column(self, values) -> dict:
        """A reference to ``values`` (a sequence or array; None / NaN = null) in the buffer."""
        arr = np.asarray(values, dtype=np.float64)
        null = np.isnan(arr)
        finite = arr[~null]
        if finite.size == 0 or (np.all(finite == np.round(finite)) and finite.min() >= 0
                                and finite.max() < 2**32 - 1):
            return self._uint(np.where(null, 0, arr), null if null.any() else None)
        table = np.unique(finite)
        if table.size * 4 < arr.size:
            index = np.searchsorted(table, np.where(null, table[0], arr))
            index[null] = table.size  # NaN appended to the table
            return {"$": "d", "v": self._raw(np.append(table, np.nan), "f64"),
                    "i": self._uint(index, None)}
        return self._raw(arr, "f64")

    def finish(self) -> str:
        return base64.b64encode(gzip.compress(b"".join(self._parts), 6, mtime=0)).decode()
