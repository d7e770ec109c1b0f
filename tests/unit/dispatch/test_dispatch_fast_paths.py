"""Fast paths of the round against the numpy calls they replace (bit-equal)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lastmile.core.dispatch.model import CourierState, Merchant
from lastmile.core.dispatch.preposition import _greedy


@given(st.lists(st.tuples(st.integers(0, 7), st.booleans()), max_size=60))
def test_reverse_write_is_minimum_at_for_ascending_values(rows: list[tuple[int, bool]]) -> None:
    # preposition._greedy: ``best[idx[::-1]] = alive[::-1]`` for ascending ``alive``.
    idx = np.array([i for i, _ in rows], np.intp)
    alive = np.flatnonzero(np.array([k for _, k in rows] or [False], bool))[: len(idx)]
    idx = idx[: len(alive)]
    expect = np.full(8, 99, np.intp)
    np.minimum.at(expect, idx, alive)
    got = np.full(8, 99, np.intp)
    got[idx[::-1]] = alive[::-1]
    assert np.array_equal(got, expect)


def _sorted_greedy(ci: np.ndarray, mj: np.ndarray, score: np.ndarray,
                   cids: list[str], mids: list[str]) -> list[int]:
    order = sorted(range(len(ci)), key=lambda e: (-score[e], cids[ci[e]], mids[mj[e]]))
    used_c: set[int] = set()
    used_m: set[int] = set()
    out = []
    for e in order:
        if ci[e] not in used_c and mj[e] not in used_m:
            used_c.add(int(ci[e]))
            used_m.add(int(mj[e]))
            out.append(e)
    return out


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 4)),
                max_size=40, unique_by=lambda t: (t[0], t[1])))
def test_preposition_greedy_equals_sorted_greedy(pairs: list[tuple[int, int, int]]) -> None:
    ci = np.array([p[0] for p in pairs], np.intp)
    mj = np.array([p[1] for p in pairs], np.intp)
    score = np.array([float(p[2]) for p in pairs], np.float64)
    movers = [CourierState(courier_id=f"c{5 - i}", x_m=0.0, y_m=0.0, free_s=0.0,
                           shift_start_s=0.0, shift_end_s=1.0)
              for i in range(6)]
    merchants = [Merchant(merchant_id=f"m{(5 * j) % 6}", x_m=0.0, y_m=0.0) for j in range(6)]
    got = _greedy(ci, mj, score, movers, merchants).tolist()
    assert got == _sorted_greedy(ci, mj, score, [c.courier_id for c in movers],
                                 [m.merchant_id for m in merchants])
