"""SQL repositories for payments and the built-in processor's answered calls."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from lastmile.adapters.db import tables_payments as t
from lastmile.adapters.db.prepared import insert_into
from lastmile.adapters.db.repositories import _Repo
from lastmile.core.money import Money
from lastmile.core.payments import (
    Payment,
    PaymentOp,
    PaymentStatus,
    ProcessorCall,
    ProcessorResult,
)

Row = dict[str, Any]


def payment_row(p: Payment) -> Row:
    return {"id": p.id, "order_id": p.order_id, "status": p.status.value,
            "amount_minor": p.amount.amount_minor, "currency": p.amount.currency,
            "processor": p.processor, "processor_ref": p.processor_ref,
            "idempotency_key": p.idempotency_key, "captured_minor": p.captured_minor,
            "refunded_minor": p.refunded_minor, "created_at": p.created_at,
            "updated_at": p.updated_at}


def payment_from(row: Row) -> Payment:
    return Payment(id=row["id"], order_id=row["order_id"], status=PaymentStatus(row["status"]),
                   amount=Money(amount_minor=row["amount_minor"], currency=row["currency"]),
                   processor=row["processor"], processor_ref=row["processor_ref"],
                   idempotency_key=row["idempotency_key"],
                   captured_minor=row["captured_minor"], refunded_minor=row["refunded_minor"],
                   created_at=row["created_at"], updated_at=row["updated_at"])


class SqlPayments(_Repo):
    def add(self, p: Payment) -> None:
        self.conn.execute(insert_into(t.payments), payment_row(p))

    def save(self, p: Payment) -> None:
        c = t.payments.c
        values = {k: v for k, v in payment_row(p).items() if k not in ("id", "created_at")}
        self.conn.execute(t.payments.update().where(c.id == p.id).values(**values))

    def for_order(self, order_id: str) -> Payment | None:
        row = self._one(sa.select(t.payments).where(t.payments.c.order_id == order_id))
        return None if row is None else payment_from(row)

    def for_processor_ref(self, processor_ref: str) -> Payment | None:
        c = t.payments.c
        row = self._one(sa.select(t.payments).where(c.processor_ref == processor_ref))
        return None if row is None else payment_from(row)


def call_row(call: ProcessorCall) -> Row:
    r = call.result
    return {"idempotency_key": call.key, "reference": call.reference,
            "processor_ref": r.processor_ref, "operation": r.operation.value,
            "status": r.status.value, "amount_minor": r.amount.amount_minor,
            "currency": r.amount.currency, "created_at": call.created_at}


def call_from(row: Row) -> ProcessorCall:
    result = ProcessorResult(processor="builtin", processor_ref=row["processor_ref"],
                             operation=PaymentOp(row["operation"]),
                             status=PaymentStatus(row["status"]),
                             amount=Money(amount_minor=row["amount_minor"],
                                          currency=row["currency"]))
    return ProcessorCall(key=row["idempotency_key"], reference=row["reference"], result=result,
                         created_at=row["created_at"])


class SqlProcessorCalls(_Repo):
    def add(self, call: ProcessorCall) -> None:
        self.conn.execute(insert_into(t.processor_calls), call_row(call))

    def get(self, key: str) -> ProcessorCall | None:
        row = self._by(t.processor_calls, idempotency_key=key)
        return None if row is None else call_from(row)

    def for_ref(self, processor_ref: str) -> list[ProcessorCall]:
        c = t.processor_calls.c
        stmt = (sa.select(t.processor_calls).where(c.processor_ref == processor_ref)
                .order_by(c.created_at, c.idempotency_key))
        return [call_from(dict(r)) for r in self.conn.execute(stmt).mappings()]
