"""Money in integer minor units; rounding happens in exactly one place."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from lastmile.core.errors import InvalidInput

# ISO 4217 minor-unit exponents (the standard's "minor unit" column) of every currency
# whose exponent is not 2; every other code has 2.
_EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_exponent(currency: str) -> int:
    """Digits after the decimal point of ``currency``'s minor unit (JPY 0, USD 2, KWD 3)."""
    return _EXPONENTS.get(currency, 2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Money:
    """An amount in minor units (cents) of one ISO 4217 currency.

    Arithmetic, ``min``/``max`` and the ordering comparisons (``<``, ``<=``, ``>``,
    ``>=``) need both sides in the same currency and raise ``currency_mismatch``
    otherwise (10 USD is neither more nor less than 10 EUR); ``==`` is plain value
    equality, so amounts of two currencies are simply unequal.
    """

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise InvalidInput(
                "invalid_currency",
                f"currency must be a 3-letter ISO 4217 code (got {self.currency!r})",
                field="currency",
            )

    @staticmethod
    def zero(currency: str) -> Money:
        return Money(amount_minor=0, currency=currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidInput(
                "currency_mismatch",
                f"cannot combine {other.currency} with {self.currency}",
                field="currency",
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount_minor=self.amount_minor + other.amount_minor, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount_minor=self.amount_minor - other.amount_minor, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor <= other.amount_minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor > other.amount_minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount_minor >= other.amount_minor

    def __neg__(self) -> Money:
        return Money(amount_minor=-self.amount_minor, currency=self.currency)

    def times(self, factor: int | Decimal | str) -> Money:
        """Multiply by a factor, rounding half-to-even to the minor unit (the one rounding)."""
        value = (Decimal(self.amount_minor) * Decimal(factor)).quantize(
            Decimal(1), rounding=ROUND_HALF_EVEN
        )
        return Money(amount_minor=int(value), currency=self.currency)

    def basis_points(self, bp: int) -> Money:
        """``bp`` hundredths of a percent of this amount (1250 bp = 12.5 %)."""
        return self.times(Decimal(bp) / Decimal(10_000))

    def max(self, other: Money) -> Money:
        self._same(other)
        return self if self.amount_minor >= other.amount_minor else other

    def min(self, other: Money) -> Money:
        self._same(other)
        return self if self.amount_minor <= other.amount_minor else other

    def __str__(self) -> str:
        exp = minor_exponent(self.currency)
        value = Decimal(self.amount_minor).scaleb(-exp)
        return f"{value:.{exp}f} {self.currency}"


def total(amounts: list[Money] | tuple[Money, ...], currency: str) -> Money:
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
