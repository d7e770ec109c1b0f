"""Double-entry values: accounts, postings and transactions in integer minor units.

A posting moves ``amount_minor`` of one currency on one account: positive is a debit,
negative a credit. A transaction is a set of postings in ONE currency that sums to zero
(double entry); mixing currencies in one transaction is refused (there are no FX lines).
Transactions are append-only: a mistake is corrected by a new transaction (``reversal``).

Accounts are named ``kind`` or ``kind:party`` (``merchant_payable:mer_123``):

- ``consumer:<consumer>``: what the consumer owes (+) or is owed (-); a paid order nets 0;
- ``merchant_payable:<merchant>``, ``courier_payable:<courier>``: what the platform owes
  them (a credit balance, negative), reduced by payouts;
- ``platform_revenue``: commission and fees (credit), less courier pay (debit);
- ``processor_clearing``: money held at the payment processor (debit) until paid out;
- ``tax_payable``: tax collected for the authorities (credit);
- ``refunds``: what the platform gave back (refunds and credits, a debit: an expense);
- ``credits:<consumer>``: store credit the platform owes a consumer (credit);
- ``holds:<consumer>`` and ``processor_holds``: memo accounts of authorisation holds. A hold
  moves no money, so it never touches the accounts above: it is a pair of memo postings
  that the order's capture or cancellation releases (nets to zero once the order ends).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from lastmile.core.errors import InvalidInput
from lastmile.core.money import Money


class AccountKind(StrEnum):
    CONSUMER = "consumer"
    MERCHANT_PAYABLE = "merchant_payable"
    COURIER_PAYABLE = "courier_payable"
    PLATFORM_REVENUE = "platform_revenue"
    PROCESSOR_CLEARING = "processor_clearing"
    TAX_PAYABLE = "tax_payable"
    REFUNDS = "refunds"
    CREDITS = "credits"
    HOLDS = "holds"
    PROCESSOR_HOLDS = "processor_holds"


# Kinds that name a party (``kind:id``); the others are the platform's, one per currency.
PARTY_KINDS = frozenset({AccountKind.CONSUMER, AccountKind.MERCHANT_PAYABLE,
                         AccountKind.COURIER_PAYABLE, AccountKind.CREDITS, AccountKind.HOLDS})
MEMO_KINDS = frozenset({AccountKind.HOLDS, AccountKind.PROCESSOR_HOLDS})
PAYABLE_KINDS = frozenset({AccountKind.MERCHANT_PAYABLE, AccountKind.COURIER_PAYABLE})
_PARTY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class TxnKind(StrEnum):
    AUTHORISATION = "authorisation"  # memo: a hold on the consumer's card
    HOLD_RELEASE = "hold_release"  # memo: the hold ends (captured, voided, cancelled)
    CAPTURE = "capture"  # the consumer is charged on delivery
    CANCELLATION_CHARGE = "cancellation_charge"  # what a cancellation still charges
    COURIER_PAY = "courier_pay"
    REFUND = "refund"
    CREDIT = "credit"
    PAYOUT = "payout"
    REVERSAL = "reversal"  # a correction: the opposite of an earlier transaction


def parse_account(raw: str, *, field: str = "account") -> str:
    """``raw`` when it names an account (``platform_revenue``, ``courier_payable:cou_1``),
    else InvalidInput naming the rule."""
    kind, sep, party = raw.partition(":") if isinstance(raw, str) else ("", "", "")
    known = {k.value for k in AccountKind}
    if kind not in known:
        raise InvalidInput("invalid_account", f"{field} must start with one of "
                           f"{', '.join(sorted(known))} (got {raw!r:.80})", field=field)
    needs_party = AccountKind(kind) in PARTY_KINDS
    if needs_party and not (sep and _PARTY.match(party)):
        raise InvalidInput("invalid_account", f"{field} {kind} names a party: {kind}:<id> with "
                           f"1-64 letters, digits, '_', '-' or '.' (got {raw!r:.80})",
                           field=field)
    if not needs_party and sep:
        raise InvalidInput("invalid_account", f"{field} {kind} is the platform's and takes no "
                           f"party (got {raw!r:.80})", field=field)
    return raw


def account(kind: AccountKind, party: str | None = None) -> str:
    return parse_account(kind.value if party is None else f"{kind.value}:{party}")


def kind_of(account_name: str) -> AccountKind:
    return AccountKind(account_name.partition(":")[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class Posting:
    account: str
    amount_minor: int  # debit > 0, credit < 0
    currency: str

    def __post_init__(self) -> None:
        parse_account(self.account)
        Money.zero(self.currency)  # the one currency rule


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """Postings that balance in one currency, posted once per ``key`` (per tenant).

    ``key`` is the idempotency key (``ord_1:capture``): a redelivered event or a retried
    call builds the same key and posts nothing the second time.
    """

    key: str
    kind: TxnKind
    currency: str
    postings: tuple[Posting, ...]
    order_id: str | None = None
    memo: str = ""

    def __post_init__(self) -> None:
        Money.zero(self.currency)
        if not 0 < len(self.key) <= 200:
            raise InvalidInput("invalid_key", f"a transaction key needs 1-200 characters "
                               f"(got {len(self.key)})", field="key")
        if len(self.postings) < 2:
            raise InvalidInput("unbalanced", f"transaction {self.key} needs at least two "
                               f"postings (got {len(self.postings)})", field="postings")
        for p in self.postings:
            if p.currency != self.currency:
                raise InvalidInput("currency_mismatch", f"transaction {self.key} is in "
                                   f"{self.currency}; a posting to {p.account} is in "
                                   f"{p.currency} (one currency per transaction)",
                                   field="postings")
            if p.amount_minor == 0:
                raise InvalidInput("zero_posting", f"transaction {self.key} posts 0 to "
                                   f"{p.account}", field="postings")
        net = sum(p.amount_minor for p in self.postings)
        if net != 0:
            raise InvalidInput("unbalanced", f"transaction {self.key} does not balance: "
                               f"postings sum to {net} {self.currency} (expected 0)",
                               field="postings")

    def net(self, account_name: str) -> int:
        return sum(p.amount_minor for p in self.postings if p.account == account_name)

    def net_of_kind(self, kind: AccountKind) -> int:
        return sum(p.amount_minor for p in self.postings if kind_of(p.account) is kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Posted:
    """A transaction as stored: its id and when it was posted (epoch s)."""

    id: str
    transaction: Transaction
    created_at: float


def transaction(*, key: str, kind: TxnKind, currency: str,
                lines: list[tuple[str, Money]] | tuple[tuple[str, Money], ...],
                order_id: str | None = None, memo: str = "") -> Transaction | None:
    """A transaction from ``(account, amount)`` lines, zero lines dropped; None when every
    line is zero (nothing moved). A line in another currency is refused."""
    postings = []
    for name, amount in lines:
        if amount.currency != currency:
            raise InvalidInput("currency_mismatch", f"transaction {key} is in {currency}; the "
                               f"line for {name} is in {amount.currency}", field="postings")
        if amount.amount_minor:
            postings.append(Posting(account=name, amount_minor=amount.amount_minor,
                                    currency=currency))
    if not postings:
        return None
    return Transaction(key=key, kind=kind, currency=currency, postings=tuple(postings),
                       order_id=order_id, memo=memo)


def reversal(posted: Posted, *, key: str, memo: str = "") -> Transaction:
    """The correction of ``posted``: the same postings with opposite signs, as a new
    transaction (history is never rewritten)."""
    t = posted.transaction
    return Transaction(key=key, kind=TxnKind.REVERSAL, currency=t.currency,
                       order_id=t.order_id, memo=memo or f"reverses {posted.id} ({t.key})",
                       postings=tuple(Posting(account=p.account, amount_minor=-p.amount_minor,
                                              currency=p.currency) for p in t.postings))


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementLine:
    """One posting of an account with its transaction, as a statement lists it."""

    transaction_id: str
    key: str
    kind: TxnKind
    order_id: str | None
    account: str
    currency: str
    amount_minor: int
    created_at: float
    memo: str = ""
