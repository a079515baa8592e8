"""The range policy for values inside decoded events: one place, checked at the edge.

A frame can be valid JSON of the right shape and still carry values no operator can
use: a price of ``"1e999999999"`` (``Decimal`` parses it; the first sum overflows),
``"NaN"``, a trade stamped in year 9999 or past int64, a kline start that is not a
date. The decoder rejects such a frame as a ``BadFrame`` with reason
``out_of_range`` (counted like any dead letter), so operators only ever see values
inside these limits:

- decimal strings: plain notation (ASCII digits, at most one point, a sign only
  where a value can be negative; no exponent, no NaN/Infinity), at most
  ``MAX_DIGITS`` digits before and after the point;
- times (``E``, ``T``, microseconds): within ``[MIN_TIME_US, MAX_TIME_US)`` (the
  epoch to 2100), which any datetime arithmetic survives (year 9999, or past int64,
  does not);
- kline times: parse as the wire's dates or numbers.

Depth levels and bookTicker prices are the exceptions, for cost (together they are
nine frames in ten): a depth frame can carry hundreds of levels, so the book operator
applies the same limits to each level it parses and counts the levels it skips; a
bookTicker is only ever compared with our own book, and one whose numbers do not
parse (or are absurd) is reported by that check as unverifiable or as a mismatch.
Their times are checked here like every other event's.
"""

from __future__ import annotations

import re
from typing import Any

from .klines import parse_kline_time
from .wire import (
    BookTicker,
    Depth,
    Kline,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Ticker,
    Trade,
)

__all__ = [
    "MAX_DIGITS",
    "MAX_TIME_US",
    "MIN_TIME_US",
    "plain_decimal",
    "problem",
    "sane",
]

MAX_DIGITS = 40
MIN_TIME_US = 0  # the epoch: documented captures carry small engine times (T=567)
MAX_TIME_US = 4_102_444_800_000_000  # 2100-01-01T00:00:00Z

_UNSIGNED = rf"[0-9]{{1,{MAX_DIGITS}}}(?:\.[0-9]{{1,{MAX_DIGITS}}})?"
_DECIMAL = re.compile(rf"-?{_UNSIGNED}")
# The hot path tests a trade's two fields in one match: "p|q".
_TWO = re.compile(rf"{_UNSIGNED}\|{_UNSIGNED}").fullmatch


def _match(text: str) -> bool:
    return _DECIMAL.fullmatch(text) is not None


def plain_decimal(text: str) -> bool:
    """Whether ``text`` is a decimal string inside the policy (for REST-only fields)."""
    return _match(text)


def sane(event: Any) -> bool:
    """Whether ``event`` is inside the limits: the decoder's cheap test per frame.

    Depth and trades (most frames) are tested inline; other events take
    ``problem``. ``False`` only where ``problem`` names a reason.
    """
    kind = type(event)
    if kind is Depth:
        return bool(
            MIN_TIME_US <= event.T < MAX_TIME_US
            and MIN_TIME_US <= event.E < MAX_TIME_US
        )
    if kind is Trade or kind is Liquidation:
        return (
            MIN_TIME_US <= event.T < MAX_TIME_US
            and MIN_TIME_US <= event.E < MAX_TIME_US
            and _TWO(f"{event.p}|{event.q}") is not None
        ) or problem(event) is None
    if kind is BookTicker:
        return bool(
            MIN_TIME_US <= event.T < MAX_TIME_US
            and MIN_TIME_US <= event.E < MAX_TIME_US
        )
    return problem(event) is None


# The decimal-string fields of each event type (None allowed where typed optional).
_FIELDS: dict[type, tuple[str, ...]] = {
    Trade: ("p", "q"),
    Liquidation: ("p", "q"),
    MarkPrice: ("p", "i", "f"),
    OpenInterest: ("o",),
    BookTicker: (),  # times only: see the module docstring
    Ticker: ("o", "h", "l", "c", "v", "V"),
    Kline: ("o", "h", "l", "c", "v"),
    Depth: (),
}


def problem(event: Any) -> str | None:
    """Why ``event`` is outside the limits (``"... - at `$.data.p`"``), or ``None``."""
    t = getattr(event, "T", None)
    e = getattr(event, "E", None)
    for name, value in (("E", e), ("T", t)):
        if type(value) is int and not MIN_TIME_US <= value < MAX_TIME_US:
            return f"time {value} us is outside 1970..2100 - at `$.data.{name}`"
    # Records derived from an event (a seed, a trade fetched back) obey its limits.
    kind = next((k for k in type(event).__mro__ if k in _FIELDS), None)
    if kind is None:
        return None
    fields = _FIELDS[kind]
    for name in fields:
        value = getattr(event, name)
        if value is not None and not _match(value):
            shown = value if len(value) <= 40 else value[:40] + "..."
            where = f"$.data.{name}"
            return f"{shown!r} is not a plain decimal (<= 40 digits) - at `{where}`"
    if kind is Kline:
        for name in ("t", "T"):
            try:
                at = parse_kline_time(getattr(event, name))
            except (ValueError, TypeError, OverflowError):
                shown = repr(getattr(event, name))[:40]
                return f"{shown} is not a kline time - at `$.data.{name}`"
            if not MIN_TIME_US <= at < MAX_TIME_US:
                return f"kline time outside 1970..2100 - at `$.data.{name}`"
    return None
