"""Typed identifiers. Ids are strings with a readable prefix (``ord_…``)."""

from __future__ import annotations

from typing import NewType

RegionId = NewType("RegionId", str)
MerchantId = NewType("MerchantId", str)
ItemId = NewType("ItemId", str)
ConsumerId = NewType("ConsumerId", str)
CourierId = NewType("CourierId", str)
OrderId = NewType("OrderId", str)
OfferId = NewType("OfferId", str)
EventId = NewType("EventId", str)

PREFIXES = {
    "region": "reg",
    "merchant": "mer",
    "item": "itm",
    "consumer": "con",
    "courier": "cou",
    "order": "ord",
    "offer": "off",
    "event": "evt",
    "shift": "shf",
    "key": "key",
}
