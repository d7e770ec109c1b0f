"""Decoding an order shares Money instances per amount and currency: still equal values,
and a bad currency still refused on every decode (a refusal is never cached)."""

import json

import pytest

from fakes import an_order
from lastmile.adapters.db import mapping as m
from lastmile.core.errors import InvalidInput


def _stored(order):  # noqa: ANN001, ANN202 - the row as the database hands it back
    return json.loads(json.dumps(m.order_row(order)))


def test_an_order_decodes_to_itself_twice_over():
    order = an_order()
    first, second = m.order_from(_stored(order)), m.order_from(_stored(order))
    assert first == order == second
    assert first.prices.subtotal is second.prices.subtotal  # one shared value


def test_a_bad_currency_is_refused_on_every_decode():
    row = _stored(an_order())
    row["doc"]["currency"] = "usd"
    for _ in range(2):
        with pytest.raises(InvalidInput, match="currency"):
            m.order_from(row)


def test_an_int_and_a_float_amount_stay_distinct():
    assert type(m._shared_money(5, "USD").amount_minor) is int  # noqa: SLF001
    assert type(m._shared_money(5.0, "USD").amount_minor) is float  # type: ignore[arg-type]  # noqa: SLF001
