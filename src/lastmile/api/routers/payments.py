"""Payments: an order's payment and refunds (ops), and Stripe's signed webhooks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from lastmile.api.deps import Ops, ServicesDep
from lastmile.api.schemas import Id, Strict, iso
from lastmile.app import payments, queries
from lastmile.core.errors import NotFound
from lastmile.core.payments import Payment

router = APIRouter(tags=["payments"])


class RefundIn(Strict):
    amount_minor: int = Field(ge=1, le=100_000_000)


def payment_out(p: Payment) -> dict[str, Any]:
    return {"id": p.id, "order_id": p.order_id, "status": p.status.value,
            "amount_minor": p.amount.amount_minor, "currency": p.amount.currency,
            "captured_minor": p.captured_minor, "refunded_minor": p.refunded_minor,
            "processor": p.processor, "processor_ref": p.processor_ref,
            "created_at": iso(p.created_at), "updated_at": iso(p.updated_at)}


def _payment(svc: Any, order_id: str) -> Payment:
    found = payments.payment_of(svc, order_id)
    if found is None:
        raise NotFound("payment_not_found", f"order {order_id} has no payment")
    return found


@router.get("/v1/ops/orders/{order_id}/payment")
def get_payment(svc: ServicesDep, who: Ops, order_id: Id) -> dict[str, Any]:
    """The order's payment: held, captured, voided or refunded, and the processor's id."""
    queries.get_order(svc, order_id, who=who)
    return payment_out(_payment(svc, order_id))


@router.post("/v1/ops/orders/{order_id}/refund")
def refund(svc: ServicesDep, who: Ops, order_id: Id, body: RefundIn, response: Response,
           idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
           ) -> dict[str, Any]:
    """Give back ``amount_minor`` of the captured payment. A replay with the same
    ``Idempotency-Key`` answers the first refund and gives nothing back twice."""
    queries.get_order(svc, order_id, who=who)
    _payment(svc, order_id)
    moved = payments.refund_order(svc, order_id=order_id, amount_minor=body.amount_minor,
                                  idempotency_key=f"refund:{order_id}:{idempotency_key}")
    assert moved is not None  # the payment exists (checked above)
    if moved.result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return {"payment": payment_out(moved.payment),
            "refund": {"amount_minor": moved.result.amount.amount_minor,
                       "replayed": moved.result.replayed}}


@router.post("/v1/payments/stripe/webhook")
async def stripe_webhook(request: Request, svc: ServicesDep,
                         stripe_signature: Annotated[str | None, Header()] = None,
                         ) -> dict[str, Any]:
    """Stripe's events, verified with the endpoint's signing secret
    (LASTMILE_STRIPE_WEBHOOK_SECRET): a bad signature is a 401. A payment captured,
    cancelled or refunded outside the platform (Stripe's dashboard) is brought up to date;
    the answer says whether anything changed."""
    if svc.payment_notices is None:
        raise NotFound("stripe_webhooks_off", "Stripe webhooks are not configured here "
                       "(set LASTMILE_STRIPE_WEBHOOK_SECRET)")
    notice = svc.payment_notices.parse(await request.body(), stripe_signature)  # CPU only
    updated = await run_in_threadpool(payments.apply_notice, svc, notice)  # the database
    return {"received": True, "event_id": notice.event_id, "type": notice.type,
            "updated": updated is not None}
