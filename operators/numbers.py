"""Reading the exchange's decimal strings inside operators, without trusting them.

The decoder keeps prices as strings (validating every one with a pattern would cost
8x the decode), so an operator that parses one must expect garbage: ``None`` here means
"not a finite decimal", and the caller counts or reports it instead of crashing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

__all__ = ["to_decimal"]


def to_decimal(text: str | None) -> Decimal | None:
    """The finite ``Decimal`` a string spells, else ``None``."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return value if value.is_finite() else None
