"""The simulator's REST answers, as the exchange gives them (shapes, units, errors)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

from ..backpack.streams import KlineInterval
from .catalog import (
    assets,
    market_sessions,
    prediction_events,
    prediction_tags,
    securities,
)
from .exchange import Exchange

__all__ = ["DEPTH_LIMITS", "RestAnswer", "answer"]

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class RestAnswer:
    """Status, content type and body of one REST response."""

    status: int
    body: bytes
    content_type: str = "application/json"
    retry_after_s: int | None = None


def _error(status: int, code: str, message: str) -> RestAnswer:
    return RestAnswer(status, _encode({"code": code, "message": message}))


def _plain(status: int, text: str) -> RestAnswer:
    return RestAnswer(status, text.encode(), "text/plain; charset=utf-8")


def _json(value: object) -> RestAnswer:
    return RestAnswer(200, _encode(value))


def _as_wire(value: object, strings: tuple[str, ...]) -> object:
    """``value`` as the exchange writes it.

    The integer fields ``strings`` as numeric strings (depth ``lastUpdateId``, kline
    and ticker ``trades``), and fields without a value left out (a prediction
    market's mark has no funding).
    """
    data = msgspec.to_builtins(value)
    rows = data if isinstance(data, list) else [data]
    for row in rows:
        if isinstance(row, dict):
            for key in [k for k, v in row.items() if v is None]:
                del row[key]
            for key in strings:
                if isinstance(row.get(key), int):
                    row[key] = str(row[key])
    return data


def _paging(query: Mapping[str, str], most: int) -> tuple[int, int] | None:
    try:
        limit = int(query.get("limit", "100"))
        offset = int(query.get("offset", "0"))
    except ValueError:
        return None
    if not 1 <= limit <= most or offset < 0:
        return None
    return limit, offset


# Paths of every market: (exchange, query) -> answer.
_Venue = Callable[[Exchange, Mapping[str, str]], RestAnswer]
# Paths of one market, whose ``symbol`` is required: (exchange, symbol, query).
_Market = Callable[[Exchange, str, Mapping[str, str]], RestAnswer]


def answer(exchange: Exchange, path: str, query: Mapping[str, str]) -> RestAnswer:
    """Answer ``GET path?query`` from the exchange's current state."""
    symbol = query.get("symbol")
    if symbol is not None and symbol not in exchange.engines:
        return _error(400, "INVALID_CLIENT_REQUEST", "Invalid market symbol")
    venue = _VENUE.get(path)
    if venue is not None:
        return venue(exchange, query)
    market = _MARKET.get(path)
    if market is None:
        return _plain(404, "Not Found")
    if symbol is None:
        return _plain(400, "missing required parameter `symbol`")
    return market(exchange, symbol, query)


def _prediction(exchange: Exchange, query: Mapping[str, str]) -> RestAnswer:
    if _paging(query, 1000) is None:
        return _error(400, "INVALID_CLIENT_REQUEST", "Limit must be 1..1000")
    prices = {r.symbol: r.markPrice for r in exchange.mark_prices(None)}
    return _json(prediction_events(exchange.config.markets, prices, dict(query)))


_VENUE: dict[str, _Venue] = {
    "/api/v1/markets": lambda x, q: _json(x.markets()),
    "/api/v1/status": lambda x, q: _json({"status": "Ok", "message": None}),
    "/api/v1/time": lambda x, q: _json(x.now_us // 1000),
    "/api/v1/markPrices": lambda x, q: _json(
        _as_wire(x.mark_prices(q.get("symbol")), ())
    ),
    "/api/v1/openInterest": lambda x, q: _json(x.open_interest_rows(q.get("symbol"))),
    "/api/v1/tickers": lambda x, q: _json(
        [_as_wire(x.ticker_row(name), ("trades",)) for name in x.engines]
    ),
    "/api/v1/assets": lambda x, q: _json(assets(x.config.markets)),
    "/api/v1/securities": lambda x, q: _json(securities(x.config.markets)),
    "/api/v1/market-sessions": lambda x, q: _json(market_sessions()),
    "/api/v1/prediction/tags": lambda x, q: _json(prediction_tags()),
    "/api/v1/prediction": _prediction,
}


def _depth(exchange: Exchange, symbol: str, query: Mapping[str, str]) -> RestAnswer:
    try:
        limit = int(query.get("limit", "1000"))
    except ValueError:
        limit = -1
    if limit not in DEPTH_LIMITS:
        return _plain(400, "failed to parse parameter `limit`")
    return _json(_as_wire(exchange.depth_snapshot(symbol, limit), ("lastUpdateId",)))


def _market(exchange: Exchange, symbol: str, query: Mapping[str, str]) -> RestAnswer:
    (market,) = [m for m in exchange.markets() if m.symbol == symbol]
    return _json(_as_wire(market, ()))


def _funding(exchange: Exchange, symbol: str, query: Mapping[str, str]) -> RestAnswer:
    paging = _paging(query, 10_000)
    if paging is None:
        return _error(400, "INVALID_CLIENT_REQUEST", "Limit must be 1..10000")
    return _json(exchange.funding_rows(symbol, *paging))


def _trades(history: bool) -> _Market:
    """Recent trades, or (``history``) trades paged back by ``offset``."""

    def trades(exchange: Exchange, symbol: str, query: Mapping[str, str]) -> RestAnswer:
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return _plain(400, "failed to parse parameter `limit`")
        if not 1 <= limit <= 1000:
            return _error(400, "INVALID_CLIENT_REQUEST", "Limit must be 1..1000")
        offset = 0
        if history:
            try:
                offset = int(query.get("offset", "0"))
            except ValueError:
                return _plain(400, "failed to parse parameter `offset`")
            if offset < 0:
                return _error(400, "INVALID_CLIENT_REQUEST", "Offset must be >= 0")
        return _json(exchange.trade_rows(symbol, limit, offset))

    return trades


def _klines(exchange: Exchange, symbol: str, query: Mapping[str, str]) -> RestAnswer:
    try:
        interval = KlineInterval(query.get("interval", ""))
        start_s = int(query["startTime"])
        end_s = int(query["endTime"]) if "endTime" in query else None
    except (KeyError, ValueError):
        return _plain(400, "failed to parse parameters `interval`/`startTime`")
    rows = exchange.klines(symbol, interval, start_s, end_s)
    return _json(_as_wire(rows, ("trades",)))


_MARKET: dict[str, _Market] = {
    "/api/v1/depth": _depth,
    "/api/v1/ticker": lambda x, s, q: _json(_as_wire(x.ticker_row(s), ("trades",))),
    "/api/v1/market": _market,
    "/api/v1/fundingRates": _funding,
    "/api/v1/trades": _trades(history=False),
    "/api/v1/trades/history": _trades(history=True),
    "/api/v1/klines": _klines,
}
