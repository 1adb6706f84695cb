"""A typed single-pass scanner for COCO results files (a JSON array of detection objects).

The scanner reads the file's bytes and writes ``image_id`` / ``category_id`` / ``bbox`` /
``score`` and the segmentation's ``size`` and ``counts`` span straight into preallocated
columns: no Python object per value, no intermediate table. It validates the JSON grammar of
everything it reads or skips (unknown keys with nested values, strings with escapes), and gives
up — status code != 0, the caller then reads the file with the generic JSON path — on anything
it does not fully understand: a key written with escapes, a repeated key, ``null`` or a value of
another type in a known field, a float where an id is expected, ids beyond 18 digits, a
non-finite or out-of-range number, a ``NaN`` / ``Infinity`` token, a missing required field,
malformed JSON of any kind. So it never mis-reads: whatever it returns is what
``json.loads`` gives.

Numbers are converted exactly as Python's ``float()`` does (correctly rounded, ties to even):

* Clinger's fast path — a decimal mantissa ``w <= 2**53`` and a power of ten ``|q| <= 22`` —
  is one correctly rounded multiplication or division of two exactly representable doubles;
* every other mantissa of up to 19 significant digits goes through the Eisel–Lemire algorithm
  (D. Lemire, "Number Parsing at a Gigabyte per Second", 2021; the algorithm of Rust's
  ``core::num::dec2flt`` and Go's ``strconv``): ``w * 5**q`` approximated with a 128-bit
  truncated power of five, which either determines the correctly rounded double or reports
  that it cannot (then the scanner gives up);
* more than 19 significant digits: the first 19 are ``w``; when ``w`` and ``w + 1`` round to
  the same double that is the answer, else the scanner gives up.

Chunks: a file is split into ranges at guessed object starts; each range is scanned on its own
thread (the kernel takes a ``(lo, hi)`` range of chunks, see ``_parallel.run_ranges``). A chunk
ends at the first object that starts at or after the next chunk's start; the caller checks that
this object start *is* the next chunk's guessed start (which proves the guess was a real object
boundary: chunk 0 starts at the real first object) and otherwise scans the file as one chunk.

No reference counting: every kernel here is compiled with ``_nrt=False``, so it allocates
nothing (the caller passes its scratch, :func:`scratch`) and numba emits no reference counts.
With them, each inlined helper taking arrays added an atomic increment and decrement per array
and call — 77% of the scan's CPU time, measured with ``perf`` (1.7 s against 0.38 s for a
206 MB file on one thread).
"""
from __future__ import annotations

import numpy as np

from polars_metrics._kernels._jit import njit

# --- status codes (0 = fully understood) ---------------------------------------------------------
OK = 0
GIVE_UP = 1       # valid or not, something the scanner does not take: use the generic reader
BAD_CHUNK = 2     # the chunk's guessed start did not lead to a clean parse (retry as one chunk)
NO_ROOM = 3       # more objects than the chunk's capacity (cannot happen with counted braces)

# per-row ``seg`` columns
SEG_PRESENT, SEG_SIZE_LEN, SEG_H, SEG_W, SEG_LO, SEG_HI, SEG_LEN, SEG_ESC = range(8)
SEG_COLS = 8
# ``box_state`` values
BOX_ABSENT, BOX_EMPTY, BOX_FOUR = 0, 1, 2

_K_IMAGE_ID = np.frombuffer(b"image_id", np.uint8).copy()
_K_CATEGORY_ID = np.frombuffer(b"category_id", np.uint8).copy()
_K_BBOX = np.frombuffer(b"bbox", np.uint8).copy()
_K_SCORE = np.frombuffer(b"score", np.uint8).copy()
_K_SEGMENTATION = np.frombuffer(b"segmentation", np.uint8).copy()
_K_SIZE = np.frombuffer(b"size", np.uint8).copy()
_K_COUNTS = np.frombuffer(b"counts", np.uint8).copy()


def _pow5_table() -> tuple[np.ndarray, np.ndarray]:
    """128-bit truncated powers of five 5**q, q in [-342, 308], as (high, low) 64-bit words
    (the table of Lemire's fast_float / Rust's dec2flt, computed here with exact integers)."""
    values = []  # shifts, not loops of halving / doubling: this runs at every import
    for q in range(-342, 0):
        power5 = 5 ** -q
        z = power5.bit_length() - (1 if power5 & (power5 - 1) == 0 else 0)  # ceil(log2)
        if q >= -27:
            c = (1 << (z + 127)) // power5 + 1
        else:
            c = (1 << (2 * z + 128)) // power5 + 1
            c >>= max(c.bit_length() - 128, 0)  # the largest c // 2**k below 2**128
        values.append(c)
    for q in range(0, 309):
        power5 = 5 ** q
        shift = 128 - power5.bit_length()  # into [2**127, 2**128)
        values.append(power5 << shift if shift >= 0 else power5 >> -shift)
    hi = np.array([v >> 64 for v in values], np.uint64)
    lo = np.array([v & 0xFFFFFFFFFFFFFFFF for v in values], np.uint64)
    return hi, lo


_POW5_HI, _POW5_LO = _pow5_table()
_POW10 = np.array([10.0 ** k for k in range(23)], np.float64)  # exact doubles

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U10 = np.uint64(10)
_U32 = np.uint64(32)
_U52 = np.uint64(52)
_U63 = np.uint64(63)
_M32 = np.uint64(0xFFFFFFFF)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_TWO53 = np.uint64(1 << 53)
_HIDDEN = np.uint64(1 << 52)
_OVER = np.uint64(2 << 52)


# --- numbers --------------------------------------------------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def _mul128(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    """Full 64 x 64 -> 128-bit product as (low, high) words."""
    a0 = a & _M32
    a1 = a >> _U32
    b0 = b & _M32
    b1 = b >> _U32
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    p11 = a1 * b1
    mid = (p00 >> _U32) + (p01 & _M32) + (p10 & _M32)
    lo = (p00 & _M32) | (mid << _U32)
    hi = p11 + (p01 >> _U32) + (p10 >> _U32) + (mid >> _U32)
    return lo, hi


@njit(cache=True, _nrt=False)
def _eisel_lemire(q: int, w: np.uint64) -> np.int64:
    """Bits of the correctly rounded double nearest to ``w * 10**q`` (w > 0), or -1 when the
    algorithm cannot decide (or the value overflows)."""
    if q < -342:
        return np.int64(0)
    if q > 308:
        return np.int64(-1)
    lz = 0
    if (w >> _U32) == _U0:
        w = w << _U32
        lz += 32
    if (w >> np.uint64(48)) == _U0:
        w = w << np.uint64(16)
        lz += 16
    if (w >> np.uint64(56)) == _U0:
        w = w << np.uint64(8)
        lz += 8
    if (w >> np.uint64(60)) == _U0:
        w = w << np.uint64(4)
        lz += 4
    if (w >> np.uint64(62)) == _U0:
        w = w << np.uint64(2)
        lz += 2
    if (w >> _U63) == _U0:
        w = w << _U1
        lz += 1
    idx = q + 342
    lo, hi = _mul128(w, _POW5_HI[idx])
    mask = _ALL >> np.uint64(55)
    if (hi & mask) == mask:
        _, second_hi = _mul128(w, _POW5_LO[idx])
        lo = lo + second_hi
        if second_hi > lo:
            hi = hi + _U1
    if lo == _ALL and (q < -27 or q > 55):
        return np.int64(-1)
    upperbit = np.int64(hi >> _U63)
    shift = np.uint64(upperbit + 64 - 52 - 3)
    mantissa = hi >> shift
    power2 = ((q * (152170 + 65536)) >> 16) + 63 + upperbit - lz + 1023
    if power2 <= 0:
        if -power2 + 1 >= 64:
            return np.int64(0)
        mantissa = mantissa >> np.uint64(-power2 + 1)
        mantissa = mantissa + (mantissa & _U1)
        mantissa = mantissa >> _U1
        # a subnormal, or the smallest normal when rounding carried into the hidden bit
        return np.int64(mantissa)
    if (lo <= _U1 and q >= -4 and q <= 23 and (mantissa & np.uint64(3)) == _U1
            and (mantissa << shift) == hi):
        mantissa = mantissa & ~_U1
    mantissa = mantissa + (mantissa & _U1)
    mantissa = mantissa >> _U1
    if mantissa >= _OVER:
        mantissa = _HIDDEN
        power2 += 1
    mantissa = mantissa & ~_HIDDEN
    if power2 >= 0x7FF:
        return np.int64(-1)
    return np.int64(mantissa | (np.uint64(power2) << _U52))


@njit(cache=True, inline="always", _nrt=False)
def _digit(buf: np.ndarray, p: int, n: int) -> int:
    """The digit at ``p`` (0..9) or -1."""
    if p >= n:
        return -1
    d = np.int64(buf[p]) - 48
    return d if 0 <= d <= 9 else -1


@njit(cache=True, inline="always", _nrt=False)
def _number(buf: np.ndarray, p: int, n: int, bits: np.ndarray, fbits: np.ndarray
            ) -> tuple[int, float, int, bool, bool]:
    """Parse the JSON number at ``p``: (end, value, int value, whether the token is an integer
    of at most 18 digits, ok). ``bits`` / ``fbits``: a 1-element uint64 array and its
    float64 view (bit casts)."""
    neg = False
    if p < n and buf[p] == 45:  # '-'
        neg = True
        p += 1
    w = _U0
    nd = 0  # significant digits in w
    exp10 = 0
    trunc = False
    int_digits = 0
    d = _digit(buf, p, n)
    if d < 0:
        return p, 0.0, 0, False, False
    if d == 0:
        p += 1
        int_digits = 1
        if _digit(buf, p, n) >= 0:
            return p, 0.0, 0, False, False  # a leading zero: not JSON
    else:
        while d >= 0:
            if nd < 19:
                w = w * _U10 + np.uint64(d)
                nd += 1
            else:
                exp10 += 1
                if d != 0:
                    trunc = True
            int_digits += 1
            p += 1
            d = _digit(buf, p, n)
    is_float = False
    if p < n and buf[p] == 46:  # '.'
        is_float = True
        p += 1
        d = _digit(buf, p, n)
        if d < 0:
            return p, 0.0, 0, False, False
        while d >= 0:
            if w == _U0 and d == 0:
                exp10 -= 1
            elif nd < 19:
                w = w * _U10 + np.uint64(d)
                nd += 1
                exp10 -= 1
            elif d != 0:
                trunc = True
            p += 1
            d = _digit(buf, p, n)
    if p < n and (buf[p] == 101 or buf[p] == 69):  # 'e' 'E'
        is_float = True
        p += 1
        eneg = False
        if p < n and (buf[p] == 43 or buf[p] == 45):
            eneg = buf[p] == 45
            p += 1
        d = _digit(buf, p, n)
        if d < 0:
            return p, 0.0, 0, False, False
        ev = 0
        while d >= 0:
            if ev < 100000:
                ev = ev * 10 + d
            p += 1
            d = _digit(buf, p, n)
        exp10 += -ev if eneg else ev
    ival = 0
    is_int = not is_float and int_digits <= 18
    if is_int:
        ival = np.int64(w)
        if neg:
            ival = -ival
    if w == _U0:
        return p, (-0.0 if (neg and is_float) else 0.0), 0, is_int, True
    if not trunc and w <= _TWO53 and -22 <= exp10 <= 22:
        v = np.float64(w)
        v = v / _POW10[-exp10] if exp10 < 0 else v * _POW10[exp10]
        return p, (-v if neg else v), ival, is_int, True
    b = _eisel_lemire(exp10, w)
    if b < 0:
        return p, 0.0, 0, False, False
    if trunc and _eisel_lemire(exp10, w + _U1) != b:
        return p, 0.0, 0, False, False
    bits[0] = np.uint64(b)
    v = fbits[0]
    return p, (-v if neg else v), ival, is_int, True


def scratch(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scratch for ``n`` scans at once (the kernels allocate nothing, see the module notes):
    a nesting stack of 256 levels each, and one uint64 each with its float64 view for bit
    casts."""
    bits = np.zeros(n, np.uint64)
    return np.empty((n, 256), np.uint8), bits, bits.view(np.float64)


# --- strings and skipped values -------------------------------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def _ws(buf: np.ndarray, p: int, n: int) -> int:
    while p < n:
        c = buf[p]
        if c != 32 and c != 10 and c != 13 and c != 9:
            break
        p += 1
    return p


@njit(cache=True, inline="always", _nrt=False)
def _hex(c: int) -> int:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


@njit(cache=True, inline="always", _nrt=False)
def _string(buf: np.ndarray, p: int, n: int) -> tuple[int, int, bool, bool, bool]:
    """Validate the string starting with the quote at ``p``: (end after the closing quote,
    unescaped length in bytes, has escapes, only ASCII, ok)."""
    if p >= n or buf[p] != 34:
        return p, 0, False, True, False
    p += 1
    length = 0
    esc = False
    ascii_only = True
    while p < n:
        c = buf[p]
        if c == 34:
            return p + 1, length, esc, ascii_only, True
        if c < 32:
            return p, 0, esc, ascii_only, False
        if c == 92:  # backslash
            esc = True
            if p + 1 >= n:
                return p, 0, esc, ascii_only, False
            e = buf[p + 1]
            if e == 117:  # \uXXXX
                if p + 5 >= n:
                    return p, 0, esc, ascii_only, False
                code = 0
                for k in range(4):
                    h = _hex(np.int64(buf[p + 2 + k]))
                    if h < 0:
                        return p, 0, esc, ascii_only, False
                    code = code * 16 + h
                if code >= 128:
                    ascii_only = False
                length += 1
                p += 6
                continue
            if not (e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110
                    or e == 114 or e == 116):
                return p, 0, esc, ascii_only, False
            length += 1
            p += 2
            continue
        if c >= 128:
            ascii_only = False
        length += 1
        p += 1
    return p, 0, esc, ascii_only, False


@njit(cache=True, inline="always", _nrt=False)
def _literal(buf: np.ndarray, p: int, n: int) -> int:
    """End of ``true`` / ``false`` / ``null`` at ``p``, or -1."""
    c = buf[p]
    if c == 116 and p + 4 <= n and buf[p + 1] == 114 and buf[p + 2] == 117 and buf[p + 3] == 101:
        return p + 4
    if (c == 102 and p + 5 <= n and buf[p + 1] == 97 and buf[p + 2] == 108 and buf[p + 3] == 115
            and buf[p + 4] == 101):
        return p + 5
    if c == 110 and p + 4 <= n and buf[p + 1] == 117 and buf[p + 2] == 108 and buf[p + 3] == 108:
        return p + 4
    return -1


@njit(cache=True, inline="always", _nrt=False)
def _key_colon(buf: np.ndarray, p: int, n: int) -> int:
    """After ``"key" :`` (validated), or -1."""
    p, _, _, _, ok = _string(buf, p, n)
    if not ok:
        return -1
    p = _ws(buf, p, n)
    if p >= n or buf[p] != 58:  # ':'
        return -1
    return _ws(buf, p + 1, n)


@njit(cache=True, inline="always", _nrt=False)
def _plain_key(buf: np.ndarray, p: int, n: int) -> tuple[int, int, int]:
    """An object key without escapes at ``p``: its bytes ``[ks, ke)`` and the position after
    ``"key" :``; that position is -1 for anything else (an escaped key is handed over)."""
    if p >= n or buf[p] != 34:  # '"'
        return 0, 0, -1
    end, _, esc, _, ok = _string(buf, p, n)
    if not ok or esc:
        return 0, 0, -1
    q = _ws(buf, end, n)
    if q >= n or buf[q] != 58:  # ':'
        return 0, 0, -1
    return p + 1, end - 1, _ws(buf, q + 1, n)


@njit(cache=True, _nrt=False)
def _skip_value(buf: np.ndarray, p: int, n: int, stack: np.ndarray, bits: np.ndarray,
                fbits: np.ndarray) -> int:
    """End of the (validated) JSON value at ``p``, or -1. Nesting deeper than ``stack`` gives up."""
    depth = 0
    while True:
        p = _ws(buf, p, n)
        if p >= n:
            return -1
        c = buf[p]
        if c == 123 or c == 91:  # '{' '['
            q = _ws(buf, p + 1, n)
            if q < n and buf[q] == c + 2:  # '}' or ']': empty
                p = q + 1
            else:
                if depth >= stack.size:
                    return -1
                stack[depth] = c
                depth += 1
                p = _key_colon(buf, q, n) if c == 123 else q
                if p < 0:
                    return -1
                continue
        elif c == 34:
            p, _, _, _, ok = _string(buf, p, n)
            if not ok:
                return -1
        elif c == 45 or 48 <= c <= 57:
            p, _, _, _, ok = _number(buf, p, n, bits, fbits)
            if not ok:
                return -1
        else:
            p = _literal(buf, p, n)
            if p < 0:
                return -1
        # a value ended: close containers / move to the next element
        while True:
            if depth == 0:
                return p
            p = _ws(buf, p, n)
            if p >= n:
                return -1
            c = buf[p]
            top = stack[depth - 1]
            if c == 44:  # ','
                p = _ws(buf, p + 1, n)
                if top == 123:
                    p = _key_colon(buf, p, n)
                    if p < 0:
                        return -1
                break
            if c == top + 2:
                depth -= 1
                p += 1
                continue
            return -1


@njit(cache=True, inline="always", _nrt=False)
def _key_is(buf: np.ndarray, lo: int, hi: int, key: np.ndarray) -> bool:
    if hi - lo != key.size:
        return False
    for k in range(key.size):
        if buf[lo + k] != key[k]:
            return False
    return True


# --- the results objects --------------------------------------------------------------------------
@njit(cache=True, inline="always", _nrt=False)
def _size(buf: np.ndarray, p: int, n: int, seg: np.ndarray, row: int, bits: np.ndarray,
          fbits: np.ndarray) -> int:
    """The RLE ``size`` array of integers at ``p``: its length and first two values."""
    if p >= n or buf[p] != 91:
        return -1
    p = _ws(buf, p + 1, n)
    count = 0
    if p < n and buf[p] == 93:
        seg[row, SEG_SIZE_LEN] = 0
        return p + 1
    while True:
        if p >= n or not (buf[p] == 45 or 48 <= buf[p] <= 57):
            return -1
        p, _, iv, is_int, ok = _number(buf, p, n, bits, fbits)
        if not (ok and is_int):
            return -1
        if count < 2:
            seg[row, SEG_H + count] = iv
        count += 1
        p = _ws(buf, p, n)
        if p < n and buf[p] == 44:
            p = _ws(buf, p + 1, n)
            continue
        if p < n and buf[p] == 93:
            seg[row, SEG_SIZE_LEN] = count
            return p + 1
        return -1


@njit(cache=True, _nrt=False)
def _segmentation(buf: np.ndarray, p: int, n: int, seg: np.ndarray, row: int, stack: np.ndarray,
                  bits: np.ndarray, fbits: np.ndarray) -> int:
    """A compressed RLE ``{"size": [h, w], "counts": "..."}`` (other keys skipped); anything
    else (polygons, uncompressed counts, null) gives up."""
    if seg.shape[0] == 0 or p >= n or buf[p] != 123:
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
            p = _size(buf, p, n, seg, row, bits, fbits)
        elif _key_is(buf, ks, ke, _K_COUNTS):
            if seen & 2 or p >= n or buf[p] != 34:
                return -1
            seen |= 2
            end, length, esc, ascii_only, ok = _string(buf, p, n)
            if not (ok and ascii_only):
                return -1
            seg[row, SEG_LO] = p + 1
            seg[row, SEG_HI] = end - 1
            seg[row, SEG_LEN] = length
            seg[row, SEG_ESC] = 1 if esc else 0
            p = end
        else:
            p = _skip_value(buf, p, n, stack, bits, fbits)
        if p < 0:
            return -1
        p = _ws(buf, p, n)
        if p < n and buf[p] == 44:
            p = _ws(buf, p + 1, n)
            continue
        if p < n and buf[p] == 125 and seen == 3:
            seg[row, SEG_PRESENT] = 1
            return p + 1
        return -1


@njit(cache=True, inline="always", _nrt=False)
def _bbox(buf: np.ndarray, p: int, n: int, box: np.ndarray, box_state: np.ndarray, row: int,
          bits: np.ndarray, fbits: np.ndarray) -> int:
    """``[]`` or four numbers."""
    if p >= n or buf[p] != 91:
        return -1
    p = _ws(buf, p + 1, n)
    if p < n and buf[p] == 93:
        box_state[row] = BOX_EMPTY
        return p + 1
    for k in range(4):
        if p >= n or not (buf[p] == 45 or 48 <= buf[p] <= 57):
            return -1
        p, v, _, _, ok = _number(buf, p, n, bits, fbits)
        if not ok:
            return -1
        box[row, k] = v
        p = _ws(buf, p, n)
        if p >= n or buf[p] != (93 if k == 3 else 44):
            return -1
        p = _ws(buf, p + 1, n) if k < 3 else p + 1
    box_state[row] = BOX_FOUR
    return p


@njit(cache=True, inline="always", _nrt=False)
def _object(buf: np.ndarray, p: int, n: int, row: int, img: np.ndarray, cat: np.ndarray,
            score: np.ndarray, box: np.ndarray, box_state: np.ndarray, seg: np.ndarray,
            stack: np.ndarray, bits: np.ndarray, fbits: np.ndarray) -> int:
    """One result object at ``p`` into row ``row``; its end, or -1 (give up)."""
    if p >= n or buf[p] != 123:
        return -1
    box_state[row] = BOX_ABSENT
    for k in range(4):
        box[row, k] = np.nan
    if seg.shape[0] > 0:
        seg[row, SEG_PRESENT] = 0
    p = _ws(buf, p + 1, n)
    seen = 0
    while True:
        ks, ke, p = _plain_key(buf, p, n)
        if p < 0:
            return -1
        if p >= n:
            return -1
        c = buf[p]
        is_num = c == 45 or 48 <= c <= 57
        if _key_is(buf, ks, ke, _K_IMAGE_ID) or _key_is(buf, ks, ke, _K_CATEGORY_ID):
            bit = 1 if ke - ks == 8 else 2
            if seen & bit or not is_num:
                return -1
            seen |= bit
            p, _, iv, is_int, ok = _number(buf, p, n, bits, fbits)
            if not (ok and is_int):
                return -1
            if bit == 1:
                img[row] = iv
            else:
                cat[row] = iv
        elif _key_is(buf, ks, ke, _K_SCORE):
            if seen & 4 or not is_num:
                return -1
            seen |= 4
            p, v, _, _, ok = _number(buf, p, n, bits, fbits)
            if not ok:
                return -1
            score[row] = v
        elif _key_is(buf, ks, ke, _K_BBOX):
            if seen & 8:
                return -1
            seen |= 8
            p = _bbox(buf, p, n, box, box_state, row, bits, fbits)
        elif _key_is(buf, ks, ke, _K_SEGMENTATION):
            if seen & 16:
                return -1
            seen |= 16
            p = _segmentation(buf, p, n, seg, row, stack, bits, fbits)
        else:
            p = _skip_value(buf, p, n, stack, bits, fbits)
        if p < 0:
            return -1
        p = _ws(buf, p, n)
        if p < n and buf[p] == 44:
            p = _ws(buf, p + 1, n)
            continue
        if p < n and buf[p] == 125 and (seen & 7) == 7:
            return p + 1
        return -1


@njit(cache=True, nogil=True, _nrt=False)
def scan_results(buf: np.ndarray, starts: np.ndarray, base: np.ndarray, cap: np.ndarray,
                 img: np.ndarray, cat: np.ndarray, score: np.ndarray, box: np.ndarray,
                 box_state: np.ndarray, seg: np.ndarray, status: np.ndarray, stacks: np.ndarray,
                 bits: np.ndarray, fbits: np.ndarray, lo: int, hi: int) -> None:
    """Scan chunks ``lo <= k < hi``: chunk ``k`` reads the objects that start in
    ``[starts[k], starts[k + 1])`` (its first one at ``starts[k]``) into rows
    ``base[k] ..`` (at most ``cap[k]``). ``status[k]`` = (rows, where its scan stopped, code):
    a chunk before the last stops at the first object start at or after ``starts[k + 1]``;
    the last chunk reads up to the closing ``]`` and checks that only whitespace follows.
    ``seg`` has ``SEG_COLS`` columns per row, or no rows when the file has no segmentation.
    Scratch of chunk ``k`` (see :func:`scratch`): ``stacks[k]``, ``bits[k]`` and ``fbits[k]``
    (``bits`` viewed as float64)."""
    n = buf.size
    last = starts.size - 2
    for k in range(lo, hi):
        stack, kbits, kfbits = stacks[k], bits[k:k + 1], fbits[k:k + 1]
        p = starts[k]
        end = starts[k + 1]
        row = base[k]
        limit = base[k] + cap[k]
        code = np.int64(OK)
        while True:
            if row >= limit:
                code = np.int64(NO_ROOM)
                break
            p = _object(buf, p, n, row, img, cat, score, box, box_state, seg, stack, kbits,
                        kfbits)
            if p < 0:
                code = np.int64(GIVE_UP)
                break
            row += 1
            p = _ws(buf, p, n)
            if p < n and buf[p] == 44:
                p = _ws(buf, p + 1, n)
                if k < last and p >= end:
                    break
                continue
            if p < n and buf[p] == 93:
                p = _ws(buf, p + 1, n)
                if p != n:
                    code = np.int64(GIVE_UP)
                elif k < last:
                    code = np.int64(BAD_CHUNK)
                break
            code = np.int64(GIVE_UP)
            break
        status[k, 0] = row - base[k]
        status[k, 1] = p
        status[k, 2] = code


@njit(cache=True, nogil=True, _nrt=False)
def copy_strings(buf: np.ndarray, src_lo: np.ndarray, src_hi: np.ndarray, out_ptr: np.ndarray,
                 out: np.ndarray, lo: int, hi: int) -> None:
    """Unescape the (validated) JSON string bodies ``buf[src_lo[i]:src_hi[i]]`` into
    ``out[out_ptr[i]:out_ptr[i + 1]]`` for ``lo <= i < hi`` (``\\uXXXX`` below 128 only, as the
    scanner accepts); never reads or writes outside the given slices."""
    for i in range(lo, hi):
        p = src_lo[i]
        e = src_hi[i]
        o = out_ptr[i]
        end_o = out_ptr[i + 1]
        while p < e and o < end_o:
            c = buf[p]
            if c == 92 and p + 1 < e:
                x = buf[p + 1]
                if x == 117 and p + 5 < e:
                    code = 0
                    for k in range(4):
                        code = code * 16 + max(_hex(np.int64(buf[p + 2 + k])), 0)
                    out[o] = np.uint8(code & 0x7F)
                    p += 6
                else:
                    if x == 98:
                        c = 8
                    elif x == 102:
                        c = 12
                    elif x == 110:
                        c = 10
                    elif x == 114:
                        c = 13
                    elif x == 116:
                        c = 9
                    else:
                        c = x
                    out[o] = c
                    p += 2
            else:
                out[o] = c
                p += 1
            o += 1
