"""Refund requests: a consumer asks, the rules decide (``core.refunds``), an approval gives
money back on the ledger in the same unit of work; ops decide what the rules sent to a human
(docs/refunds.md).

Events (subject: the order, so they show in its history): ``refund.requested`` and, once
decided, ``refund.decided`` with the outcome, its code and reason and the amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from lastmile.app import ledger
from lastmile.app.context import Services, new_event, record
from lastmile.app.events import Event
from lastmile.app.ports import UnitOfWork
from lastmile.core.errors import Conflict, InvalidInput, NotFound
from lastmile.core.orders import Order
from lastmile.core.refunds import (
    DEFAULT_POLICY,
    Check,
    Outcome,
    RefundCase,
    RefundHistory,
    RefundPolicy,
    RefundRequest,
    Status,
    by_ops,
    decide,
)

MAX_LIST = 500
# Fraud checks the rules consult (a later issue fills it); empty: the rules alone decide.
CHECKS: tuple[Check, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Requested:
    case: RefundCase
    replayed: bool  # the same Idempotency-Key was used before: nothing new happened


def request_refund(services: Services, consumer_id: str, request: RefundRequest, *,
                   idempotency_key: str, policy: RefundPolicy = DEFAULT_POLICY,
                   checks: Sequence[Check] = CHECKS) -> Requested:
    """Store the consumer's request with the rules' decision and, when approved, post the
    refund or credit (key ``refund_request:<id>``) in the same unit of work. Another
    consumer's or tenant's order is 404. A retry with the same key returns the first answer
    and posts nothing; the key on another order is 409."""
    if not 1 <= len(idempotency_key) <= 200:
        raise InvalidInput("invalid_idempotency_key", f"Idempotency-Key must be 1..200 "
                           f"characters (got {len(idempotency_key)})", field="Idempotency-Key")
    key = f"{consumer_id}:{idempotency_key}"
    with services.uow() as uow:
        before = _replay(uow, key, request)
        if before is not None:
            return before
        order = _own_order(uow, request.order_id, consumer_id)
        now = services.clock.now()
        history = RefundHistory(
            now=now, refundable=ledger.refundable(uow, order),
            consumer_given_minor=uow.refund_requests.given_since(
                consumer_id, now - policy.cap_window_s, order.currency))
        decision = decide(request, order, history, policy, checks=checks)
        case = RefundCase(id=services.ids.new("rfr"), consumer_id=consumer_id,
                          request=request, status=decision.status, decision=decision,
                          created_at=now, idempotency_key=key,
                          decided_at=None if decision.status is Status.PENDING_REVIEW
                          else now)
        if not uow.refund_requests.add(case):
            uow.rollback()  # a concurrent retry stored it first: answer as it did
            won = _replay(uow, key, request)
            if won is None:
                raise Conflict("concurrent_update", "the request changed meanwhile; retry")
            return won
        record(uow, services, _event(services, "refund.requested", order, case, consumer_id))
        if case.status is not Status.PENDING_REVIEW:
            _settle(uow, services, order, case, actor=("consumer", consumer_id))
        uow.commit()
        return Requested(case=case, replayed=False)


def _replay(uow: UnitOfWork, key: str, request: RefundRequest) -> Requested | None:
    found = uow.refund_requests.by_key(key)
    if found is None:
        return None
    if found.request.order_id != request.order_id:
        raise Conflict("idempotency_key_reused", f"Idempotency-Key was used for order "
                       f"{found.request.order_id}, not {request.order_id}",
                       field="Idempotency-Key")
    return Requested(case=found, replayed=True)


def _own_order(uow: UnitOfWork, order_id: str, consumer_id: str) -> Order:
    order = uow.orders.get(order_id)
    if order is None or order.consumer_id != consumer_id:
        # 404, not 403: another consumer's order ids must not be probeable.
        raise NotFound("order_not_found", f"no order {order_id}", field="order_id")
    return order


def _settle(uow: UnitOfWork, services: Services, order: Order, case: RefundCase, *,
            actor: tuple[str, str]) -> None:
    """Post the approved amount (once per request) and record ``refund.decided``."""
    d = case.decision
    if d.gives_money:
        # Claim the order (compare-and-set on its version): of two requests giving money on
        # one order at once, the second is a 409 instead of both reading the same
        # refundable amount and together giving back more than was captured.
        uow.orders.save(replace(order, version=order.version + 1),
                        expected_version=order.version)
        ledger.give_back_in(uow, services, order, d.amount.amount_minor, key=case.ledger_key,
                            as_credit=d.as_credit, memo=f"refund request {case.id}: {d.code}")
    record(uow, services, _event(services, "refund.decided", order, case, actor[1],
                                 actor_kind=actor[0]))


def _event(services: Services, type: str, order: Order, case: RefundCase, actor_id: str,
           *, actor_kind: str = "consumer") -> Event:
    d = case.decision
    data: dict[str, object] = {"refund_request_id": case.id, "reason": case.request.reason.value,
                               "status": case.status.value}
    if type == "refund.decided":
        data |= {"outcome": d.outcome.value, "code": d.code, "decision_reason": d.reason,
                 "amount_minor": d.amount.amount_minor, "currency": d.amount.currency,
                 "as_credit": d.as_credit}
    return new_event(services, type=type, region_id=order.region_id, subject_id=order.id,
                     actor_kind=actor_kind, actor_id=actor_id, data=data)


def get_request(services: Services, case_id: str, *, consumer_id: str | None) -> RefundCase:
    """One request; a consumer sees only their own (another's is 404); None: ops."""
    with services.uow(read_only=True) as uow:
        case = uow.refund_requests.get(case_id)
    if case is None or (consumer_id is not None and case.consumer_id != consumer_id):
        raise NotFound("refund_request_not_found", f"no refund request {case_id}",
                       field="refund_request_id")
    return case


def list_requests(services: Services, *, status: Status | None = None,
                  limit: int = 100) -> list[RefundCase]:
    """The acting tenant's requests, oldest first (ops: ``pending_review`` is the queue)."""
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput("invalid_limit", f"limit must be in [1, {MAX_LIST}] (got {limit})",
                           field="limit")
    with services.uow(read_only=True) as uow:
        return uow.refund_requests.list(status=status, limit=limit)


def decide_by_ops(services: Services, case_id: str, *, outcome: Outcome, amount_minor: int,
                  reason: str, ops_id: str) -> RefundCase:
    """A person's decision on a request the rules sent to a human (409 for any other):
    refund or credit (at most what the order has left) or reject."""
    with services.uow() as uow:
        case = uow.refund_requests.get(case_id)
        if case is None:
            raise NotFound("refund_request_not_found", f"no refund request {case_id}",
                           field="refund_request_id")
        if case.status is not Status.PENDING_REVIEW:
            raise Conflict("refund_already_decided", f"refund request {case_id} is "
                           f"{case.status.value}, not pending_review", current_state=case.status.value)
        order = uow.orders.get(case.request.order_id)
        if order is None:
            raise NotFound("order_not_found", f"no order {case.request.order_id}")
        decision = by_ops(order, outcome=outcome, amount_minor=amount_minor,
                          refundable=ledger.refundable(uow, order), reason=reason)
        done = replace(case, status=decision.status, decision=decision,
                       decided_at=services.clock.now())
        if not uow.refund_requests.decide(done, expected=Status.PENDING_REVIEW):
            raise Conflict("refund_already_decided", f"refund request {case_id} was decided "
                           f"meanwhile")
        _settle(uow, services, order, done, actor=("ops", ops_id))
        uow.commit()
        return done
