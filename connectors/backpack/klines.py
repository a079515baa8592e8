"""Kline interval arithmetic and the exchange's kline time formats.

Intervals up to 3d are aligned to the Unix epoch, ``1w`` to Monday 00:00 UTC and
``1month`` to the calendar month. Kline ``t``/``T`` on the stream are naive ISO 8601 UTC
(``2025-08-06T22:00:00``); REST klines use ``2025-08-06 22:00:00``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .streams import KlineInterval

__all__ = [
    "FIXED_INTERVAL_US",
    "format_kline_time",
    "format_rest_time",
    "interval_end_us",
    "interval_start_us",
    "parse_kline_time",
]

_S = 1_000_000
FIXED_INTERVAL_US: dict[KlineInterval, int] = {
    KlineInterval.S1: _S,
    KlineInterval.M1: 60 * _S,
    KlineInterval.M3: 180 * _S,
    KlineInterval.M5: 300 * _S,
    KlineInterval.M15: 900 * _S,
    KlineInterval.M30: 1800 * _S,
    KlineInterval.H1: 3600 * _S,
    KlineInterval.H2: 7200 * _S,
    KlineInterval.H4: 4 * 3600 * _S,
    KlineInterval.H6: 6 * 3600 * _S,
    KlineInterval.H8: 8 * 3600 * _S,
    KlineInterval.H12: 12 * 3600 * _S,
    KlineInterval.D1: 86400 * _S,
    KlineInterval.D3: 3 * 86400 * _S,
    KlineInterval.W1: 7 * 86400 * _S,
}
_MONDAY_OFFSET_US = 4 * 86400 * _S  # 1970-01-01 was a Thursday; 1970-01-05 a Monday


def interval_start_us(interval: KlineInterval, t_us: int) -> int:
    """Start of the candle containing ``t_us`` (both microseconds since the epoch)."""
    if interval is KlineInterval.MONTH1:
        when = datetime.fromtimestamp(t_us // _S, UTC)
        return int(datetime(when.year, when.month, 1, tzinfo=UTC).timestamp()) * _S
    width = FIXED_INTERVAL_US[interval]
    if interval is KlineInterval.W1:
        return (t_us - _MONDAY_OFFSET_US) // width * width + _MONDAY_OFFSET_US
    return t_us // width * width


def interval_end_us(interval: KlineInterval, start_us: int) -> int:
    """End (exclusive) of the candle starting at ``start_us``."""
    if interval is KlineInterval.MONTH1:
        when = datetime.fromtimestamp(start_us // _S, UTC)
        year, month = (
            (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
        )
        return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * _S
    return start_us + FIXED_INTERVAL_US[interval]


def format_kline_time(t_us: int) -> str:
    """Microseconds to the stream's naive ISO 8601 UTC form."""
    return datetime.fromtimestamp(t_us // _S, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def format_rest_time(t_us: int) -> str:
    """Microseconds to the REST klines' ``YYYY-MM-DD HH:MM:SS`` UTC form."""
    return datetime.fromtimestamp(t_us // _S, UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_kline_time(value: str | int) -> int:
    """A kline ``t``/``T`` to microseconds since the epoch.

    Accepts naive ISO 8601 (taken as UTC), an optional ``Z``/offset and fraction, the
    REST space-separated form, and integer seconds (older docs).

    Raises:
        ValueError: the value is none of these.
    """
    if isinstance(value, int):
        return value * _S
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * _S + delta.microseconds
