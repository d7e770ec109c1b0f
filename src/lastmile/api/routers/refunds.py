"""Refund requests: consumers ask about their own delivered orders, ops see the decisions
and decide the ones sent to a human (docs/refunds.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import Field

from lastmile.api.deps import Consumer, Ops, ServicesDep
from lastmile.api.links import feeds
from lastmile.api.schemas import Id, Line, Strict
from lastmile.app import refunds
from lastmile.core.refunds import ItemLine, Outcome, Reason, RefundCase, RefundRequest, Status

router = APIRouter(tags=["refunds"])


class ItemIn(Strict):
    item_id: Id
    quantity: int = Field(ge=1, le=99)


class RefundIn(Strict):
    reason: Reason = Field(strict=False)
    items: list[ItemIn] = Field(default_factory=list, max_length=50)
    photo_ref: Line | None = Field(default=None, min_length=1, max_length=200)
    note: Line = Field(default="", max_length=500)


class OpsDecisionIn(Strict):
    outcome: Outcome = Field(strict=False, description="refund, credit or reject")
    amount_minor: int = Field(default=0, ge=0, description="for refund and credit")
    reason: Line = Field(min_length=1, max_length=200, description="shown to the consumer")


def case_out(case: RefundCase) -> dict[str, Any]:
    d, r = case.decision, case.request
    return {"id": case.id, "order_id": r.order_id, "consumer_id": case.consumer_id,
            "reason": r.reason.value,
            "items": [{"item_id": i.item_id, "quantity": i.quantity} for i in r.items],
            "photo_ref": r.photo_ref, "note": r.note, "status": case.status.value,
            "decision": {"outcome": d.outcome.value, "code": d.code, "reason": d.reason,
                         "as_credit": d.as_credit, "amount_minor": d.amount.amount_minor,
                         "currency": d.amount.currency, "amount": str(d.amount)},
            "created_at": case.created_at, "decided_at": case.decided_at}


@router.post("/v1/consumer/orders/{order_id}/refund-requests", status_code=201,
             responses=feeds("refund_request_id", "id",
                             ("get", "/v1/consumer/refund-requests/{refund_request_id}"),
                             statuses=(201, 200)))
def request_refund(
    svc: ServicesDep, who: Consumer, order_id: Id, body: RefundIn, response: Response,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> dict[str, Any]:
    """Ask for a refund on one of your delivered orders; the rules decide at once (approved
    as a refund or store credit, partial, rejected) or send it to a person
    (``pending_review``). A replay with the same ``Idempotency-Key`` returns the first
    answer (200) and gives nothing twice."""
    request = RefundRequest(
        order_id=order_id, reason=body.reason, photo_ref=body.photo_ref, note=body.note,
        items=tuple(ItemLine(item_id=i.item_id, quantity=i.quantity) for i in body.items))
    done = refunds.request_refund(svc, who.subject_id, request,
                                  idempotency_key=idempotency_key)
    if done.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return case_out(done.case)


@router.get("/v1/consumer/refund-requests/{refund_request_id}")
def my_refund_request(svc: ServicesDep, who: Consumer, refund_request_id: Id) -> dict[str, Any]:
    """One of your refund requests and its decision."""
    return case_out(refunds.get_request(svc, refund_request_id, consumer_id=who.subject_id))


@router.get("/v1/ops/refund-requests")
def refund_requests(
    svc: ServicesDep, who: Ops,
    status: Annotated[Status | None, Query(description="pending_review: the queue")] = None,
    limit: Annotated[int, Query(ge=1, le=refunds.MAX_LIST)] = 100,
) -> dict[str, Any]:
    """The acting tenant's refund requests with their decisions, oldest first."""
    return {"refund_requests": [case_out(c) for c in
                                refunds.list_requests(svc, status=status, limit=limit)]}


@router.post("/v1/ops/refund-requests/{refund_request_id}/decide")
def decide_refund(svc: ServicesDep, who: Ops, refund_request_id: Id,
                  body: OpsDecisionIn) -> dict[str, Any]:
    """Decide a request the rules sent to a person (409 for one decided already): refund or
    credit ``amount_minor`` (at most what the order has left) or reject."""
    return case_out(refunds.decide_by_ops(svc, refund_request_id, outcome=body.outcome,
                                          amount_minor=body.amount_minor, reason=body.reason,
                                          ops_id=who.subject_id))
