"""Reading the exchange's decimal strings inside operators, and rounding what we derive.

The decoder keeps prices as strings (validating every one with a pattern would cost
8x the decode), so an operator that parses one must expect garbage: ``None`` here means
"not a finite decimal", and the caller counts or reports it instead of crashing.

What the exchange sends, and sums and products of it, stay exact. A quotient we
derive (a spread in bps, a VWAP, a margin use) has no exact decimal form, so it is
rounded once, where it is computed, to a precision a reader can use
(docs/outputs.md): basis points to 2 decimals (``bps``), ratios and fractions to 6
(``ratio``), prices to the market's own price precision (its tick's decimals, read
from an exchange price of the same market: Backpack prints every price with them;
``price_like``).
"""

from __future__ import annotations

import decimal
from decimal import Decimal, InvalidOperation

__all__ = [
    "bps",
    "price_like",
    "price_quantum",
    "ratio",
    "ratio_of",
    "seen_decimal",
    "to_decimal",
    "to_quantum",
]

_TWO_PLACES = Decimal("0.01")
_SIX_PLACES = Decimal("0.000001")
# Wide enough that quantizing any finite value of the range policy (40 digits each
# side) cannot fail; rounding half to even, as Decimal does by default.
_ROUND = decimal.Context(prec=100, rounding=decimal.ROUND_HALF_EVEN)
_QUANTA: dict[int, Decimal] = {}  # decimal places -> their unit (a few, by exponent)


def to_decimal(text: str | None) -> Decimal | None:
    """The finite ``Decimal`` a string spells, else ``None``."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return value if value.is_finite() else None


def seen_decimal(text: str) -> Decimal | None:
    """``to_decimal``, kept for texts seen before: trades repeat prices and sizes.

    The same ``Decimal`` object for the same text (immutable: sharing it is safe).
    Shared by every market of the process; bounded: past ``_SEEN_KEPT`` texts it
    forgets them all and fills again with what recurs.
    """
    value = _SEEN.get(text, _UNSEEN)
    if value is _UNSEEN:
        value = to_decimal(text)
        if len(_SEEN) >= _SEEN_KEPT:
            _SEEN.clear()
        _SEEN[text] = value
    return value  # type: ignore[return-value]


_SEEN: dict[str, Decimal | None] = {}
_SEEN_KEPT = 4_096  # texts, ~200 bytes each
_UNSEEN = object()


def _quantize(value: Decimal, exponent: Decimal) -> Decimal:
    if not value.is_finite():
        return value
    try:
        return value.quantize(exponent, context=_ROUND)
    except InvalidOperation:
        return value


def bps(value: Decimal | None) -> Decimal | None:
    """Basis points, to 2 decimals."""
    return None if value is None else _quantize(value, _TWO_PLACES)


def ratio(value: Decimal | None) -> Decimal | None:
    """A ratio or fraction, to 6 decimals."""
    return None if value is None else _quantize(value, _SIX_PLACES)


def ratio_of(numerator: int, denominator: int) -> Decimal:
    """``ratio(Decimal(numerator) / Decimal(denominator))``, ``denominator`` not 0.

    One division and one rounding: a quotient of integers is finite, nothing to check
    (below 10**90 it also fits the rounding's 100 digits; an imbalance is at most 1).
    """
    return (Decimal(numerator) / denominator).quantize(_SIX_PLACES, context=_ROUND)


def price_like(value: Decimal | None, market_price: Decimal | None) -> Decimal | None:
    """A derived price, to ``market_price``'s decimals (the market's tick).

    Unrounded when no market price is known.
    """
    return to_quantum(value, price_quantum(market_price))


def price_quantum(market_price: Decimal | None) -> Decimal | None:
    """The unit of ``market_price``'s last decimal (1 for whole numbers).

    ``None`` when no finite price is known. (For callers that round many values
    alike: ``to_quantum``.)
    """
    if market_price is None or not market_price.is_finite():
        return None
    places = min(int(market_price.as_tuple().exponent), 0)
    quantum = _QUANTA.get(places)
    if quantum is None:
        quantum = Decimal(1).scaleb(places)
        if len(_QUANTA) < 64:  # bounded: a hostile price's exponent is not kept
            _QUANTA[places] = quantum
    return quantum


def to_quantum(value: Decimal | None, quantum: Decimal | None) -> Decimal | None:
    """``value`` rounded to ``quantum`` (from ``price_quantum``; ``None``: as is)."""
    if value is None or quantum is None:
        return value
    return _quantize(value, quantum)
