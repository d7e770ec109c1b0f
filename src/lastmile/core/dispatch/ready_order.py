"""Orders in ready-time order: the order bundling and assignment updates take them in.

``by_ready_time`` is ``sorted(orders, key=lambda o: (o.ready_s, o.order_id))`` (with
``by_merchant``: ``(o.merchant_id, o.ready_s, o.order_id)``), the same list, computed
with a numpy sort on the numbers and a Python sort of order ids only where ready times
tie. A city round sorts some 20,000 orders twice a round; comparing Python tuples was
most of it.

Why it is the same list: Python compares the key tuples element by element, ``==`` to
skip equal elements and ``<`` on the first that differs; numpy's stable sort orders
floats by ``<`` as well and keeps equal ones (``-0.0`` and ``0.0`` included) in input
order, and the runs of equal keys are then sorted by order id with Python's own stable
sort. A NaN ready time (which Python's sort places by comparisons that are all false)
falls back to ``sorted`` itself.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

from lastmile.core.dispatch.model import OpenOrder

_BY_READY = operator.attrgetter("ready_s", "order_id")
_BY_MERCHANT = operator.attrgetter("merchant_id", "ready_s", "order_id")


def by_ready_time(orders: Sequence[OpenOrder], *, by_merchant: bool) -> list[OpenOrder]:
    """``orders`` sorted by (ready time, order id), by merchant id first when
    ``by_merchant``; equal keys keep their input order (see the module docstring)."""
    n = len(orders)
    ready = np.fromiter((o.ready_s for o in orders), np.float64, n)
    if np.isnan(ready).any():
        return sorted(orders, key=_BY_MERCHANT if by_merchant else _BY_READY)
    if by_merchant:
        ids = [o.merchant_id for o in orders]
        rank = {m: r for r, m in enumerate(sorted(set(ids)))}
        merchant = np.fromiter((rank[m] for m in ids), np.intp, n)
        order = np.lexsort((ready, merchant))
        same = (ready[order][1:] == ready[order][:-1]) & (
            merchant[order][1:] == merchant[order][:-1])
    else:
        order = np.argsort(ready, kind="stable")
        same = ready[order][1:] == ready[order][:-1]
    out = [orders[i] for i in order.tolist()]
    if same.any():
        # Runs of equal keys so far: [start, end) in ``out``, sorted by order id.
        edge = np.flatnonzero(np.diff(np.concatenate([[0], same.astype(np.int8), [0]])))
        for start, end in zip(edge[0::2].tolist(), (edge[1::2] + 1).tolist(), strict=True):
            out[start:end] = sorted(out[start:end], key=operator.attrgetter("order_id"))
    return out
