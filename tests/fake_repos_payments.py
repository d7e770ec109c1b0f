"""In-memory payments and built-in processor calls (the SQL contract, no tenant scope)."""

from __future__ import annotations

from fake_repos import Table
from lastmile.core.errors import Conflict
from lastmile.core.payments import Payment, ProcessorCall


class MemPayments:
    def __init__(self, db: Table[str, Payment]):
        self.t = db

    def add(self, p: Payment) -> None:
        if p.id in self.t or any(o.order_id == p.order_id or o.idempotency_key ==
                                 p.idempotency_key for o in self.t.rows()):
            raise Conflict("concurrent_update", f"payment {p.id} exists")
        self.t.put(p.id, p)

    def save(self, p: Payment) -> None:
        if p.id in self.t:
            self.t.put(p.id, p)

    def for_order(self, order_id: str) -> Payment | None:
        return next((p for p in self.t.rows() if p.order_id == order_id), None)

    def for_processor_ref(self, processor_ref: str) -> Payment | None:
        return next((p for p in self.t.rows() if p.processor_ref == processor_ref), None)


class MemProcessorCalls:
    def __init__(self, db: Table[str, ProcessorCall]):
        self.t = db

    def add(self, call: ProcessorCall) -> None:
        if call.key in self.t:
            raise Conflict("concurrent_update", f"key {call.key!r} taken")
        self.t.put(call.key, call)

    def get(self, key: str) -> ProcessorCall | None:
        return self.t.get(key)

    def for_ref(self, processor_ref: str) -> list[ProcessorCall]:
        return sorted((c for c in self.t.rows() if c.result.processor_ref == processor_ref),
                      key=lambda c: (c.created_at, c.key))
