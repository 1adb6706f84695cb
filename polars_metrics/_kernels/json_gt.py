"""A typed single-pass scanner for COCO ground-truth files (a JSON object with ``images``,
``categories`` and ``annotations``).

The kernel reads the file's bytes once and writes every field the ``gt`` frame needs straight
into preallocated columns: images (``id``, ``height``, ``width``), categories (``id`` and the
span of ``name``), annotations (``id``, ``image_id``, ``category_id``, ``bbox``, ``area``,
``iscrowd``, ``ignore``, ``segmentation`` as polygons, uncompressed RLE counts or the span of a
compressed RLE string). Numbers go through the exact converter of ``json_scan`` (Clinger's fast
path, then Eisel–Lemire: the double Python's ``float()`` gives); every other key and value
(``file_name``, ``info``, ``licenses``, ``supercategory`` ...) is skipped after validating its
JSON grammar.

It reads only what it fully understands and gives up (``status[ST_CODE] == GIVE_UP``: the
caller reads the file with the generic JSON path, which gives the same frames and the existing
errors and rejects) on anything else: a value of an unexpected type in a known field (a float
or a string id, a ``bbox`` that is not ``[]`` or four numbers, a boolean ``area``, a
segmentation that is neither polygons nor an RLE with a ``[h, w]`` size of non-negative
integers and string or non-negative integer counts), a repeated known key, a key written with
escapes, ids beyond 18 digits, a non-finite or out-of-range number, malformed JSON of any
kind, a non-ASCII RLE string. ``null`` and a missing field are read as the generic reader reads
``dict.get``: a missing value. So whatever it returns is what ``json.loads`` gives.

Capacities: the caller sizes the columns from the file's length; a file with more rows than
a column holds stops with ``NO_ROOM`` and ``status[ST_ROOM]`` naming the column, and the caller
scans again with room for every row the bytes can hold.
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit
from polars_metrics._kernels.json_scan import (
    _key_is,
    _literal,
    _number,
    _plain_key,
    _skip_value,
    _string,
    _ws,
)

# --- status (one int64 array) -----------------------------------------------------------------
ST_CODE, ST_IMAGES, ST_CATS, ST_ANNS, ST_POLYS, ST_COORDS, ST_COUNTS, ST_TOP, ST_ROOM = range(9)
ST_SIZE = 9
OK, GIVE_UP, NO_ROOM = 0, 1, 3
# ``status[ST_TOP]`` bits: which top-level lists the file has
TOP_IMAGES, TOP_CATEGORIES, TOP_ANNOTATIONS = 1, 2, 4
# ``status[ST_ROOM]``: the column that ran out of rows
ROOM_IMAGES, ROOM_CATS, ROOM_ANNS, ROOM_POLYS, ROOM_COORDS, ROOM_COUNTS = 1, 2, 3, 4, 5, 6
_NO_ROOM = -2  # what the value parsers return when a column is full (-1: give up)

# --- columns ---------------------------------------------------------------------------------------
IM_ID, IM_H, IM_W, IM_BITS = range(4)  # IM_BITS: 1 id, 2 height, 4 width given (not null)
IM_COLS = 4
CA_ID, CA_BITS, CA_LO, CA_HI, CA_ESC = range(5)  # CA_BITS: 1 id, 2 name given
CA_COLS = 5
(AN_ID, AN_IMG, AN_CAT, AN_BITS, AN_BOX, AN_AREA, AN_CROWD, AN_IGNORE, AN_SEG, AN_SA, AN_SB,
 AN_SH, AN_SW, AN_SLEN, AN_SESC) = range(15)
AN_COLS = 15
# AN_BITS: 1 id, 2 image_id, 4 category_id given; AN_AREA: 1 area given
# AN_BOX: the bbox as read
BOX_ABSENT, BOX_EMPTY, BOX_FOUR = 0, 1, 2
# AN_SEG: the segmentation as read, with
#   polygons:     AN_SA first polygon (row of ``polys``), AN_SB polygon count
#   uncompressed: AN_SA first count (in ``counts``), AN_SB count of counts, AN_SH / AN_SW size
#   compressed:   AN_SA / AN_SB the string's bytes, AN_SLEN its unescaped length, AN_SESC
#                 escapes, AN_SH / AN_SW size
SEG_NONE, SEG_POLYGONS, SEG_UNCOMPRESSED, SEG_COMPRESSED = 0, 1, 2, 3
AF_X, AF_Y, AF_W, AF_H, AF_AREA = range(5)
AF_COLS = 5
PO_LO, PO_LEN = range(2)  # ``polys`` columns: first coordinate in ``coords``, coordinate count
PO_COLS = 2

_K_IMAGES = np.frombuffer(b"images", np.uint8).copy()
_K_CATEGORIES = np.frombuffer(b"categories", np.uint8).copy()
_K_ANNOTATIONS = np.frombuffer(b"annotations", np.uint8).copy()
_K_ID = np.frombuffer(b"id", np.uint8).copy()
_K_HEIGHT = np.frombuffer(b"height", np.uint8).copy()
_K_WIDTH = np.frombuffer(b"width", np.uint8).copy()
_K_NAME = np.frombuffer(b"name", np.uint8).copy()
_K_IMAGE_ID = np.frombuffer(b"image_id", np.uint8).copy()
_K_CATEGORY_ID = np.frombuffer(b"category_id", np.uint8).copy()
_K_BBOX = np.frombuffer(b"bbox", np.uint8).copy()
_K_AREA = np.frombuffer(b"area", np.uint8).copy()
_K_ISCROWD = np.frombuffer(b"iscrowd", np.uint8).copy()
_K_IGNORE = np.frombuffer(b"ignore", np.uint8).copy()
_K_SEGMENTATION = np.frombuffer(b"segmentation", np.uint8).copy()
_K_SIZE = np.frombuffer(b"size", np.uint8).copy()
_K_COUNTS = np.frombuffer(b"counts", np.uint8).copy()

_MAX_U32 = 0xFFFFFFFF


# --- values ---------------------------------------------------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def _is_num(buf: np.ndarray, p: int, n: int) -> bool:
    return p < n and (buf[p] == 45 or 48 <= buf[p] <= 57)


@njit(cache=True, inline="always", _nrt=False)
def _null(buf: np.ndarray, p: int, n: int) -> int:
    """End of ``null`` at ``p``, or -1."""
    if p < n and buf[p] == 110:
        return _literal(buf, p, n)
    return -1


@njit(cache=True, inline="always", _nrt=False)
def _opt_int(buf: np.ndarray, p: int, n: int, bits: np.ndarray, fbits: np.ndarray
             ) -> tuple[int, int, bool]:
    """An integer (at most 18 digits) or ``null`` at ``p``: (end or -1, value, given)."""
    if _is_num(buf, p, n):
        p, _, iv, is_int, ok = _number(buf, p, n, bits, fbits)
        if not (ok and is_int):
            return -1, 0, False
        return p, iv, True
    return _null(buf, p, n), 0, False


@njit(cache=True, inline="always", _nrt=False)
def _truthy(buf: np.ndarray, p: int, n: int, bits: np.ndarray, fbits: np.ndarray
            ) -> tuple[int, int]:
    """``bool(value)`` of a number, ``true`` / ``false`` or ``null`` at ``p``: (end or -1, 0/1)."""
    if _is_num(buf, p, n):
        p, v, _, _, ok = _number(buf, p, n, bits, fbits)
        if not ok:
            return -1, 0
        return p, 1 if v != 0.0 else 0
    if p < n and (buf[p] == 116 or buf[p] == 102 or buf[p] == 110):
        end = _literal(buf, p, n)
        return end, 1 if buf[p] == 116 else 0
    return -1, 0


@njit(cache=True, inline="always", _nrt=False)
def _next(buf: np.ndarray, p: int, n: int, close: int) -> tuple[int, bool]:
    """After a value inside a container: (position after ``,`` and whitespace, True), (position
    after ``close``, False), or (-1, False)."""
    p = _ws(buf, p, n)
    if p < n and buf[p] == 44:
        return _ws(buf, p + 1, n), True
    if p < n and buf[p] == close:
        return p + 1, False
    return -1, False


# --- images and categories ------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def _image(buf: np.ndarray, p: int, n: int, ims: np.ndarray, row: int, stack: np.ndarray,
           bits: np.ndarray, fbits: np.ndarray) -> int:
    """One image object into ``ims[row]``; its end, or -1."""
    if p >= n or buf[p] != 123:
        return -1
    for c in range(IM_COLS):
        ims[row, c] = 0
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 125:
        return p + 1
    seen = 0
    while True:
        ks, ke, p = _plain_key(buf, p, n)
        if p < 0:
            return -1
        col, bit = -1, 0
        if _key_is(buf, ks, ke, _K_ID):
            col, bit = IM_ID, 1
        elif _key_is(buf, ks, ke, _K_HEIGHT):
            col, bit = IM_H, 2
        elif _key_is(buf, ks, ke, _K_WIDTH):
            col, bit = IM_W, 4
        if col >= 0:
            if seen & bit:
                return -1
            seen |= bit
            p, iv, given = _opt_int(buf, p, n, bits, fbits)
            if given:
                ims[row, col] = iv
                ims[row, IM_BITS] |= bit
        else:
            p = _skip_value(buf, p, n, stack, bits, fbits)
        if p < 0:
            return -1
        p, more = _next(buf, p, n, 125)
        if not more:
            return p


@njit(cache=True, _nrt=False)
def _category(buf: np.ndarray, p: int, n: int, cats: np.ndarray, row: int, stack: np.ndarray,
              bits: np.ndarray, fbits: np.ndarray) -> int:
    """One category object into ``cats[row]`` (the name as a span); its end, or -1."""
    if p >= n or buf[p] != 123:
        return -1
    for c in range(CA_COLS):
        cats[row, c] = 0
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 125:
        return p + 1
    seen = 0
    while True:
        ks, ke, p = _plain_key(buf, p, n)
        if p < 0:
            return -1
        if _key_is(buf, ks, ke, _K_ID):
            if seen & 1:
                return -1
            seen |= 1
            p, iv, given = _opt_int(buf, p, n, bits, fbits)
            if given:
                cats[row, CA_ID] = iv
                cats[row, CA_BITS] |= 1
        elif _key_is(buf, ks, ke, _K_NAME):
            if seen & 2:
                return -1
            seen |= 2
            if p < n and buf[p] == 34:
                end, _, esc, _, ok = _string(buf, p, n)
                if not ok:
                    return -1
                cats[row, CA_LO] = p + 1
                cats[row, CA_HI] = end - 1
                cats[row, CA_ESC] = 1 if esc else 0
                cats[row, CA_BITS] |= 2
                p = end
            else:
                p = _null(buf, p, n)
        else:
            p = _skip_value(buf, p, n, stack, bits, fbits)
        if p < 0:
            return -1
        p, more = _next(buf, p, n, 125)
        if not more:
            return p


# --- annotation values ----------------------------------------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def _bbox(buf: np.ndarray, p: int, n: int, anns: np.ndarray, annf: np.ndarray, row: int,
          bits: np.ndarray, fbits: np.ndarray) -> int:
    """``null``, ``[]`` or four numbers."""
    if p < n and buf[p] == 110:
        return _null(buf, p, n)
    if p >= n or buf[p] != 91:
        return -1
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 93:
        anns[row, AN_BOX] = BOX_EMPTY
        return p + 1
    for k in range(4):
        if not _is_num(buf, p, n):
            return -1
        p, v, _, _, ok = _number(buf, p, n, bits, fbits)
        if not ok:
            return -1
        annf[row, AF_X + k] = v
        p = _ws(buf, p, n)
        if p >= n or buf[p] != (93 if k == 3 else 44):
            return -1
        p = _ws(buf, p + 1, n) if k < 3 else p + 1
    anns[row, AN_BOX] = BOX_FOUR
    return p


@njit(cache=True, _nrt=False)
def _polygons(buf: np.ndarray, p: int, n: int, anns: np.ndarray, row: int, polys: np.ndarray,
              coords: np.ndarray, status: np.ndarray, bits: np.ndarray, fbits: np.ndarray) -> int:
    """A list of polygons (lists of numbers) at ``p`` (the ``[``); ``[]`` is no segmentation."""
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 93:
        return p + 1
    first = status[ST_POLYS]
    while True:
        if p >= n or buf[p] != 91:
            return -1
        k = status[ST_POLYS]
        if k >= polys.shape[0]:
            status[ST_ROOM] = ROOM_POLYS
            return _NO_ROOM
        start = status[ST_COORDS]
        m = start
        p = _ws(buf, p + 1, n)
        if p < n and buf[p] == 93:
            p += 1
        else:
            while True:
                if not _is_num(buf, p, n):
                    return -1
                p, v, _, _, ok = _number(buf, p, n, bits, fbits)
                if not ok:
                    return -1
                if m >= coords.size:
                    status[ST_ROOM] = ROOM_COORDS
                    return _NO_ROOM
                coords[m] = v
                m += 1
                p, more = _next(buf, p, n, 93)
                if p < 0:
                    return -1
                if not more:
                    break
        polys[k, PO_LO] = start
        polys[k, PO_LEN] = m - start
        status[ST_POLYS] = k + 1
        status[ST_COORDS] = m
        p, more = _next(buf, p, n, 93)
        if p < 0:
            return -1
        if not more:
            break
    anns[row, AN_SEG] = SEG_POLYGONS
    anns[row, AN_SA] = first
    anns[row, AN_SB] = status[ST_POLYS] - first
    return p


@njit(cache=True, _nrt=False)
def _rle_size(buf: np.ndarray, p: int, n: int, anns: np.ndarray, row: int, bits: np.ndarray,
              fbits: np.ndarray) -> int:
    """``[height, width]``, two non-negative integers."""
    if p >= n or buf[p] != 91:
        return -1
    p = _ws(buf, p + 1, n)
    for k in range(2):
        if not _is_num(buf, p, n):
            return -1
        p, _, iv, is_int, ok = _number(buf, p, n, bits, fbits)
        if not (ok and is_int) or iv < 0:
            return -1
        anns[row, AN_SH + k] = iv
        p = _ws(buf, p, n)
        if p >= n or buf[p] != (93 if k == 1 else 44):
            return -1
        p = _ws(buf, p + 1, n) if k == 0 else p + 1
    return p


@njit(cache=True, _nrt=False)
def _rle_counts(buf: np.ndarray, p: int, n: int, anns: np.ndarray, row: int, counts: np.ndarray,
                status: np.ndarray, bits: np.ndarray, fbits: np.ndarray) -> int:
    """Counts: a string (compressed, ASCII) or a list of integers in ``[0, 2**32)``."""
    if p < n and buf[p] == 34:
        end, length, esc, ascii_only, ok = _string(buf, p, n)
        if not (ok and ascii_only):
            return -1
        anns[row, AN_SEG] = SEG_COMPRESSED
        anns[row, AN_SA] = p + 1
        anns[row, AN_SB] = end - 1
        anns[row, AN_SLEN] = length
        anns[row, AN_SESC] = 1 if esc else 0
        return end
    if p >= n or buf[p] != 91:
        return -1
    start = status[ST_COUNTS]
    m = start
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 93:
        p += 1
    else:
        while True:
            if not _is_num(buf, p, n):
                return -1
            p, _, iv, is_int, ok = _number(buf, p, n, bits, fbits)
            if not (ok and is_int) or iv < 0 or iv > _MAX_U32:
                return -1
            if m >= counts.size:
                status[ST_ROOM] = ROOM_COUNTS
                return _NO_ROOM
            counts[m] = iv
            m += 1
            p, more = _next(buf, p, n, 93)
            if p < 0:
                return -1
            if not more:
                break
    status[ST_COUNTS] = m
    anns[row, AN_SEG] = SEG_UNCOMPRESSED
    anns[row, AN_SA] = start
    anns[row, AN_SB] = m - start
    return p


@njit(cache=True, _nrt=False)
def _segmentation(buf: np.ndarray, p: int, n: int, anns: np.ndarray, row: int,
                  polys: np.ndarray, coords: np.ndarray, counts: np.ndarray, status: np.ndarray,
                  stack: np.ndarray, bits: np.ndarray, fbits: np.ndarray) -> int:
    """``null``, polygons, or an RLE ``{"size": [h, w], "counts": ...}`` (other keys skipped)."""
    if p < n and buf[p] == 110:
        return _null(buf, p, n)
    if p < n and buf[p] == 91:
        return _polygons(buf, p, n, anns, row, polys, coords, status, bits, fbits)
    if p >= n or buf[p] != 123:
        return -1
    p = _ws(buf, p + 1, n)
    seen = 0
    while True:
        ks, ke, p = _plain_key(buf, p, n)
        if p < 0:
            return -1
        if _key_is(buf, ks, ke, _K_SIZE):
            if seen & 1:
                return -1
            seen |= 1
            p = _rle_size(buf, p, n, anns, row, bits, fbits)
        elif _key_is(buf, ks, ke, _K_COUNTS):
            if seen & 2:
                return -1
            seen |= 2
            p = _rle_counts(buf, p, n, anns, row, counts, status, bits, fbits)
        else:
            p = _skip_value(buf, p, n, stack, bits, fbits)
        if p < 0:
            return p
        p, more = _next(buf, p, n, 125)
        if p < 0:
            return -1
        if not more:
            return p if seen == 3 else -1


@njit(cache=True, _nrt=False)
def _annotation(buf: np.ndarray, p: int, n: int, anns: np.ndarray, annf: np.ndarray, row: int,
                polys: np.ndarray, coords: np.ndarray, counts: np.ndarray, status: np.ndarray,
                stack: np.ndarray, bits: np.ndarray, fbits: np.ndarray) -> int:
    """One annotation object into row ``row``; its end, -1 (give up) or ``_NO_ROOM``."""
    if p >= n or buf[p] != 123:
        return -1
    for c in range(AN_COLS):
        anns[row, c] = 0
    for c in range(AF_COLS):
        annf[row, c] = np.nan
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 125:
        return p + 1
    seen = 0
    while True:
        ks, ke, p = _plain_key(buf, p, n)
        if p < 0:
            return -1
        col, bit = -1, 0
        if _key_is(buf, ks, ke, _K_ID):
            col, bit = AN_ID, 1
        elif _key_is(buf, ks, ke, _K_IMAGE_ID):
            col, bit = AN_IMG, 2
        elif _key_is(buf, ks, ke, _K_CATEGORY_ID):
            col, bit = AN_CAT, 4
        elif _key_is(buf, ks, ke, _K_BBOX):
            bit = 8
        elif _key_is(buf, ks, ke, _K_AREA):
            bit = 16
        elif _key_is(buf, ks, ke, _K_ISCROWD):
            col, bit = AN_CROWD, 32
        elif _key_is(buf, ks, ke, _K_IGNORE):
            col, bit = AN_IGNORE, 64
        elif _key_is(buf, ks, ke, _K_SEGMENTATION):
            bit = 128
        if bit == 0:
            p = _skip_value(buf, p, n, stack, bits, fbits)
        elif seen & bit:
            return -1
        elif bit <= 4:
            seen |= bit
            p, iv, given = _opt_int(buf, p, n, bits, fbits)
            if given:
                anns[row, col] = iv
                anns[row, AN_BITS] |= bit
        elif bit == 8:
            seen |= bit
            p = _bbox(buf, p, n, anns, annf, row, bits, fbits)
        elif bit == 16:
            seen |= bit
            if _is_num(buf, p, n):
                p, v, _, _, ok = _number(buf, p, n, bits, fbits)
                if not ok:
                    return -1
                annf[row, AF_AREA] = v
                anns[row, AN_AREA] = 1
            else:
                p = _null(buf, p, n)
        elif bit <= 64:
            seen |= bit
            p, truth = _truthy(buf, p, n, bits, fbits)
            anns[row, col] = truth
        else:
            seen |= bit
            p = _segmentation(buf, p, n, anns, row, polys, coords, counts, status, stack, bits,
                              fbits)
        if p < 0:
            return p
        p, more = _next(buf, p, n, 125)
        if not more:
            return p


# --- the document ---------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def _array(buf: np.ndarray, p: int, n: int, which: int, ims: np.ndarray, cats: np.ndarray,
           anns: np.ndarray, annf: np.ndarray, polys: np.ndarray, coords: np.ndarray,
           counts: np.ndarray, status: np.ndarray, stack: np.ndarray, bits: np.ndarray,
           fbits: np.ndarray) -> int:
    """The list of images (``which`` = 1), categories (2) or annotations (3) at ``p``."""
    if p >= n or buf[p] != 91:
        return -1
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 93:
        return p + 1
    slot = ST_IMAGES if which == 1 else ST_CATS if which == 2 else ST_ANNS
    room = ims.shape[0] if which == 1 else cats.shape[0] if which == 2 else anns.shape[0]
    while True:
        row = status[slot]
        if row >= room:
            status[ST_ROOM] = which
            return _NO_ROOM
        if which == 1:
            p = _image(buf, p, n, ims, row, stack, bits, fbits)
        elif which == 2:
            p = _category(buf, p, n, cats, row, stack, bits, fbits)
        else:
            p = _annotation(buf, p, n, anns, annf, row, polys, coords, counts, status, stack,
                            bits, fbits)
        if p < 0:
            return p
        status[slot] = row + 1
        p, more = _next(buf, p, n, 93)
        if not more:
            return p


@njit(cache=True, nogil=True, _nrt=False)
def scan_gt(buf: np.ndarray, ims: np.ndarray, cats: np.ndarray, anns: np.ndarray,
            annf: np.ndarray, polys: np.ndarray, coords: np.ndarray, counts: np.ndarray,
            status: np.ndarray, stacks: np.ndarray, bits: np.ndarray, fbits: np.ndarray) -> None:
    """Scan a whole ground-truth document; ``status`` (``ST_SIZE`` int64) gets the code, the
    row counts of every column and which top-level lists were present."""
    n = buf.size
    stack = stacks[0]  # scratch as json_scan.scratch(1) makes it
    for k in range(ST_SIZE):
        status[k] = 0
    status[ST_CODE] = GIVE_UP
    p = _ws(buf, 0, n)
    if p >= n or buf[p] != 123:
        return
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 125:
        return  # no images / categories: the generic reader says so
    while True:
        ks, ke, p = _plain_key(buf, p, n)
        if p < 0:
            return
        which = 0
        if _key_is(buf, ks, ke, _K_IMAGES):
            which = 1
        elif _key_is(buf, ks, ke, _K_CATEGORIES):
            which = 2
        elif _key_is(buf, ks, ke, _K_ANNOTATIONS):
            which = 3
        if which == 0:
            p = _skip_value(buf, p, n, stack, bits, fbits)
        else:
            bit = 1 << (which - 1)
            if status[ST_TOP] & bit:
                return
            status[ST_TOP] |= bit
            p = _array(buf, p, n, which, ims, cats, anns, annf, polys, coords, counts, status,
                       stack, bits, fbits)
        if p == _NO_ROOM:
            status[ST_CODE] = NO_ROOM
            return
        if p < 0:
            return
        p, more = _next(buf, p, n, 125)
        if p < 0:
            return
        if not more:
            break
    if _ws(buf, p, n) != n or (status[ST_TOP] & 3) != 3:
        return
    status[ST_CODE] = OK
