"""Kline history at start: ``GET /api/v1/klines`` rows as frames of the kline stream.

A flow that starts knows nothing of the candles before it. With a backfill asked
for (``--backfill 1h``), each ``kline.<interval>.<symbol>`` stream is fetched once per
run over ``[start - backfill, start)``, in pages of at most ``PAGE`` intervals (the
exchange states no row limit; 1,000 is what its clients ask for), and each row that
closed before the run started becomes a ``HistoricalKline`` frame on that stream.
The window the run started in is not one of them: its klines are still open, and
the flow's own first candle (``partial``) covers it.

Pure: requests and bytes in, frames out. Recordings keep every answer with the run's
start, so a replay turns them into the same frames.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from .klines import (
    FIXED_INTERVAL_US,
    format_kline_time,
    interval_end_us,
    interval_start_us,
    parse_kline_time,
)
from .limits import plain_decimal, problem
from .streams import KlineInterval, StreamName
from .wire import Frame, Kline, KlineRow

__all__ = [
    "KLINES_PATH",
    "PAGE",
    "HistoricalKline",
    "historical_klines",
    "kline_pages",
]

KLINES_PATH = "/api/v1/klines"
PAGE = 1_000  # intervals asked for per request
_S = 1_000_000
_ROWS = msgspec.json.Decoder(list[msgspec.Raw])
_ROW = msgspec.json.Decoder(KlineRow, strict=False)  # ``trades`` is a string
_MONTH_US = 31 * 86_400 * _S  # the longest month: pages of months stay <= PAGE


class HistoricalKline(Kline, frozen=True, kw_only=True, tag="historicalKline"):
    """A closed kline from before the run, fetched from REST (``--backfill``).

    The stream's fields (``t``/``T`` in its ISO form, ``X`` true, ``E`` the close
    time), plus ``V``, the quote volume REST adds. A subclass, so steps that test
    ``type(data) is Kline`` (the kline cross-check) never take one for a live kline.
    """

    V: str | None = None  # quote volume


def kline_pages(
    symbol: str, interval: KlineInterval, start_us: int, before_us: int
) -> list[dict[str, str]]:
    """The query of each request covering ``[start_us, before_us)``, oldest first.

    ``startTime``/``endTime`` are whole seconds, as the exchange takes them.
    """
    width = FIXED_INTERVAL_US.get(interval, _MONTH_US)
    first = interval_start_us(interval, start_us)
    pages = []
    at = first
    while at < before_us:
        end = min(before_us, at + PAGE * width)
        pages.append(
            {
                "symbol": symbol,
                "interval": interval.value,
                "startTime": str(at // _S),
                "endTime": str(-(-end // _S)),
            }
        )
        at = end
    return pages


def _decode(body: bytes) -> list[KlineRow]:
    """The rows that decode: one bad row does not cost the others."""
    try:
        raws = _ROWS.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []
    rows = []
    for raw in raws:
        try:
            rows.append(_ROW.decode(raw))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return rows


def _page_span(page: Mapping[str, str]) -> tuple[int, int]:
    """``[startTime, endTime)`` of a page's query, microseconds (empty if absent)."""
    try:
        return int(page["startTime"]) * _S, int(page["endTime"]) * _S
    except (KeyError, ValueError):
        return 0, 0


def historical_klines(
    stream: StreamName,
    body: bytes,
    page: Mapping[str, str],
    before_us: int,
    recv_us: int,
) -> list[Frame[HistoricalKline]]:
    """The closed klines of ``body`` (the answer to ``page``) ending by ``before_us``.

    ``stream`` is a ``kline.<interval>.<symbol>`` stream (any other gives nothing).
    ``before_us`` is the run's start. Oldest first, each window once. Left out:
    rows starting outside the page's span (so pages never overlap, whatever the
    server sends), rows without prices (nothing traded), rows whose window is not
    one of ``interval`` (misaligned or of another width), rows still open at
    ``before_us``, and rows outside the range policy.
    """
    symbol, interval = stream.symbol, stream.interval
    if symbol is None or interval is None:
        return []
    since, until = _page_span(page)
    kept: dict[int, HistoricalKline] = {}
    for row in _decode(body):
        o, h, low, c = row.open, row.high, row.low, row.close
        if o is None or h is None or low is None or c is None or row.trades < 0:
            continue  # no prices: nothing traded
        try:
            start = parse_kline_time(row.start)
            end = parse_kline_time(row.end)
        except (ValueError, TypeError, OverflowError):
            continue
        if not since <= start < until or start in kept:
            continue
        if interval_start_us(interval, start) != start:
            continue
        if interval_end_us(interval, start) != end or end > before_us:
            continue
        kline = HistoricalKline(
            E=end,
            T=format_kline_time(end),
            X=True,
            c=c,
            h=h,
            l=low,
            n=row.trades,
            o=o,
            s=symbol,
            t=format_kline_time(start),
            v=row.volume,
            V=row.quoteVolume,
        )
        if problem(kline) is None and plain_decimal(row.quoteVolume):
            kept[start] = kline
    name = str(stream)
    return [Frame(name, kept[start], recv_us) for start in sorted(kept)]
