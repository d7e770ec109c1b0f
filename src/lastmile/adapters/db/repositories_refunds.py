"""The SQL refund requests repository (``core.refunds``; table ``refund_requests``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from lastmile.adapters.db import tables_refunds as t
from lastmile.adapters.db.repositories import _Repo
from lastmile.adapters.db.writes import insert_or_skip
from lastmile.core.money import Money
from lastmile.core.refunds import (
    Decision,
    ItemLine,
    Outcome,
    Reason,
    RefundCase,
    RefundRequest,
    Status,
)

Row = dict[str, Any]


def case_row(c: RefundCase) -> Row:
    d = c.decision
    return {"id": c.id, "order_id": c.request.order_id, "consumer_id": c.consumer_id,
            "reason": c.request.reason.value,
            "items": [{"item_id": i.item_id, "quantity": i.quantity} for i in c.request.items],
            "photo_ref": c.request.photo_ref, "note": c.request.note, "status": c.status.value,
            "decision": {"outcome": d.outcome.value, "code": d.code, "reason": d.reason,
                         "as_credit": d.as_credit},
            "amount_minor": d.amount.amount_minor, "currency": d.amount.currency,
            "created_at": c.created_at, "decided_at": c.decided_at,
            "idempotency_key": c.idempotency_key}


def case_from(row: Row) -> RefundCase:
    d = row["decision"]
    request = RefundRequest(
        order_id=row["order_id"], reason=Reason(row["reason"]),
        items=tuple(ItemLine(item_id=i["item_id"], quantity=int(i["quantity"]))
                    for i in row["items"]),
        photo_ref=row["photo_ref"], note=row["note"])
    decision = Decision(outcome=Outcome(d["outcome"]), code=d["code"], reason=d["reason"],
                        as_credit=bool(d["as_credit"]),
                        amount=Money(amount_minor=int(row["amount_minor"]),
                                     currency=row["currency"]))
    return RefundCase(id=row["id"], consumer_id=row["consumer_id"], request=request,
                      status=Status(row["status"]), decision=decision,
                      created_at=row["created_at"], decided_at=row["decided_at"],
                      idempotency_key=row["idempotency_key"])


class SqlRefundRequests(_Repo):
    def add(self, case: RefundCase) -> bool:
        return insert_or_skip(self.conn, t.refund_requests, case_row(case))

    def get(self, case_id: str) -> RefundCase | None:
        row = self._one(sa.select(t.refund_requests).where(t.refund_requests.c.id == case_id))
        return None if row is None else case_from(row)

    def by_key(self, key: str) -> RefundCase | None:
        rr = t.refund_requests
        row = self._one(sa.select(rr).where(rr.c.idempotency_key == key))
        return None if row is None else case_from(row)

    def list(self, *, status: Status | None = None, limit: int = 100) -> list[RefundCase]:
        rr = t.refund_requests
        stmt = sa.select(rr).order_by(rr.c.created_at, rr.c.id).limit(limit)
        if status is not None:
            stmt = stmt.where(rr.c.status == status.value)
        return [case_from(dict(r)) for r in self.conn.execute(stmt).mappings()]

    def given_since(self, consumer_id: str, since: float, currency: str) -> int:
        rr = t.refund_requests
        stmt = sa.select(sa.func.coalesce(sa.func.sum(rr.c.amount_minor), 0)).where(
            rr.c.consumer_id == consumer_id, rr.c.created_at >= since,
            rr.c.status == Status.APPROVED.value, rr.c.currency == currency)
        return int(self.conn.execute(stmt).scalar_one())

    def decide(self, case: RefundCase, *, expected: Status) -> bool:
        rr = t.refund_requests
        row = case_row(case)
        done = self.conn.execute(
            rr.update().where(rr.c.id == case.id, rr.c.status == expected.value).values(
                status=row["status"], decision=row["decision"],
                amount_minor=row["amount_minor"], decided_at=row["decided_at"]))
        return done.rowcount == 1
