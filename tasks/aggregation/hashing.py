"""Factorising integer arrays with an open-addressing hash table written in numpy.

``pandas.factorize`` does this in C, but importing pandas costs about 0.4 s, more than the whole
factorisation of a 2.5-million-answer file; ``numpy.unique`` sorts, which is several times slower.
Here every round hashes the remaining values into a power-of-two table (``table[h] = value``, the
last write to a slot wins); the values that read their own value back own that slot and get its
code, and the few that lost their slot to a different value go to the next round with another hash
multiplier.  After a handful of rounds whatever is left (only on adversarial input) is finished
with ``numpy.unique``.  Everything is vectorised: no Python loop over values.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tasks.aggregation.base import IntArray

UIntArray = npt.NDArray[np.uint64]

_MULTIPLIERS = (
    0x9E3779B97F4A7C15,
    0xBF58476D1CE4E5B9,
    0x94D049BB133111EB,
    0xD6E8FEB86659FD93,
    0xFF51AFD7ED558CCD,
    0xC4CEB9FE1A85EC53,
)
_MAX_TABLE_BITS = 22


def factorise_ints(values: UIntArray | IntArray, *, max_rounds: int = len(_MULTIPLIERS)) -> tuple[IntArray, int]:
    """Dense codes ``0 .. n_unique - 1`` of a 64-bit integer array (equal values, equal codes) and
    ``n_unique``.  The numbering of the codes is arbitrary; see :func:`first_appearance_order`."""
    v: UIntArray = np.ascontiguousarray(values).astype(np.uint64, copy=False)  # two's complement bits
    codes = np.empty(v.size, dtype=np.int64)
    pending: IntArray | None = None  # positions still without a code (None: all of them)
    offset = 0
    for multiplier in _MULTIPLIERS[:max_rounds]:
        if v.size == 0:
            return codes, offset
        bits = min(max(int(v.size - 1).bit_length(), 4), _MAX_TABLE_BITS)
        slot_of = v ^ (v >> np.uint64(29))
        slot_of *= np.uint64(multiplier)
        slot_of >>= np.uint64(64 - bits)
        slot = slot_of.view(np.intp)  # below 2**22: the same bits as a signed index
        table = np.empty(1 << bits, dtype=np.uint64)
        table[slot] = v
        owns = table[slot] == v
        everyone = bool(owns.all())
        owned_slot = slot if everyone else slot[owns]
        occupied = np.zeros(1 << bits, dtype=bool)
        occupied[owned_slot] = True
        used = np.flatnonzero(occupied)
        rank = table.view(np.int64)  # the table is no longer needed: reuse it for the slot codes
        rank[used] = np.arange(offset, offset + used.size)
        offset += used.size
        if everyone:
            if pending is None:
                return np.asarray(rank[slot], dtype=np.int64), offset
            codes[pending] = rank[slot]
            return codes, offset
        if pending is None:
            codes[owns] = rank[owned_slot]
            pending = np.flatnonzero(~owns)
        else:
            codes[pending[owns]] = rank[owned_slot]
            pending = pending[~owns]
        v = v[~owns]
    if v.size:
        assert pending is not None
        uniques, inverse = np.unique(v, return_inverse=True)
        codes[pending] = inverse.reshape(-1) + offset
        offset += uniques.size
    return codes, offset


def first_appearance_order(codes: IntArray, n_codes: int) -> tuple[IntArray, IntArray]:
    """Renumber ``codes`` so that code ``i`` is the ``i``-th distinct value met in array order.

    Returns the new codes and, for every new code, the position of its first appearance."""
    n = codes.size
    first = np.empty(n_codes, dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)  # the last write (earliest position) wins
    is_first = np.zeros(n, dtype=bool)
    is_first[first] = True
    positions = np.flatnonzero(is_first)  # first appearances in array order, without a sort
    renumber = np.empty(n_codes, dtype=np.int64)
    renumber[codes[positions]] = np.arange(n_codes)
    return renumber[codes], positions
