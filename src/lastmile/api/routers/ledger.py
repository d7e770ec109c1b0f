"""The ledger for ops: an account's balance in the acting tenant's books (docs/ledger.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from lastmile.api.deps import Ops, ServicesDep
from lastmile.app import ledger
from lastmile.core.errors import NotFound
from lastmile.core.money import Money

router = APIRouter(prefix="/v1/ops/ledger", tags=["ops"])


@router.get("/accounts/{account}/balance")
def account_balance(
    svc: ServicesDep, who: Ops,
    account: Annotated[str, Path(max_length=140, description=(
        "kind or kind:party, e.g. merchant_payable:mer_123, platform_revenue"))],
    currency: Annotated[str | None, Query(min_length=3, max_length=3, description=(
        "only this ISO 4217 currency"))] = None,
) -> dict[str, Any]:
    """The account's balance per currency in minor units and as text (debit > 0, credit <
    0: what the platform owes a merchant or courier is negative). 404 when the acting
    tenant's ledger has no posting on it (in that currency)."""
    found = ledger.balance(svc, account, currency=currency)
    if not found:
        raise NotFound("account_not_found", f"account {account} has no postings"
                       + (f" in {currency}" if currency else ""))
    return {"account": account, "balances": [
        {"currency": cur, "amount_minor": minor,
         "amount": str(Money(amount_minor=minor, currency=cur))}
        for cur, minor in found.items()]}
