"""The simulator's REST answers, as the exchange gives them (shapes, units, errors)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from bpx_flows.connectors.backpack.streams import KlineInterval
from bpx_flows.connectors.sim import catalog
from bpx_flows.connectors.sim.exchange import Exchange

__all__ = ["DEPTH_LIMITS", "RestAnswer", "answer"]

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_encode = msgspec.json.Encoder().encode
_NEEDS_SYMBOL = {
    "/api/v1/depth",
    "/api/v1/ticker",
    "/api/v1/trades",
    "/api/v1/trades/history",
    "/api/v1/klines",
    "/api/v1/market",
    "/api/v1/fundingRates",
}
_PAGED = ("/api/v1/prediction", "/api/v1/fundingRates")


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


def answer(exchange: Exchange, path: str, query: Mapping[str, str]) -> RestAnswer:
    """Answer ``GET path?query`` from the exchange's current state."""
    symbol = query.get("symbol")
    known = exchange.engines
    if symbol is not None and symbol not in known:
        return _error(400, "INVALID_CLIENT_REQUEST", "Invalid market symbol")
    if path == "/api/v1/markets":
        return _json(exchange.markets())
    if path == "/api/v1/status":
        return _json({"status": "Ok", "message": None})
    if path == "/api/v1/time":
        return _json(exchange.now_us // 1000)
    if path == "/api/v1/markPrices":
        return _json(_as_wire(exchange.mark_prices(symbol), ()))
    if path == "/api/v1/openInterest":
        return _json(exchange.open_interest_rows(symbol))
    if path == "/api/v1/tickers":
        return _json(
            [_as_wire(exchange.ticker_row(name), ("trades",)) for name in known]
        )
    if path == "/api/v1/assets":
        return _json(catalog.assets(exchange.config.markets))
    if path == "/api/v1/securities":
        return _json(catalog.securities(exchange.config.markets))
    if path == "/api/v1/market-sessions":
        return _json(catalog.market_sessions())
    if path == "/api/v1/prediction/tags":
        return _json(catalog.prediction_tags())
    if path == "/api/v1/prediction":
        if _paging(query, 1000) is None:
            return _error(400, "INVALID_CLIENT_REQUEST", "Limit must be 1..1000")
        prices = {r.symbol: r.markPrice for r in exchange.mark_prices(None)}
        return _json(
            catalog.prediction_events(exchange.config.markets, prices, dict(query))
        )
    if path not in _NEEDS_SYMBOL:
        return _plain(404, "Not Found")
    if symbol is None:
        return _plain(400, "missing required parameter `symbol`")
    assert symbol is not None
    if path == "/api/v1/depth":
        try:
            limit = int(query.get("limit", "1000"))
        except ValueError:
            limit = -1
        if limit not in DEPTH_LIMITS:
            return _plain(400, "failed to parse parameter `limit`")
        return _json(
            _as_wire(exchange.depth_snapshot(symbol, limit), ("lastUpdateId",))
        )
    if path == "/api/v1/ticker":
        return _json(_as_wire(exchange.ticker_row(symbol), ("trades",)))
    if path == "/api/v1/market":
        (market,) = [m for m in exchange.markets() if m.symbol == symbol]
        return _json(_as_wire(market, ()))
    if path == "/api/v1/fundingRates":
        paging = _paging(query, 10_000)
        if paging is None:
            return _error(400, "INVALID_CLIENT_REQUEST", "Limit must be 1..10000")
        return _json(exchange.funding_rows(symbol, *paging))
    if path in ("/api/v1/trades", "/api/v1/trades/history"):
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return _plain(400, "failed to parse parameter `limit`")
        if not 1 <= limit <= 1000:
            return _error(400, "INVALID_CLIENT_REQUEST", "Limit must be 1..1000")
        offset = 0
        if path == "/api/v1/trades/history":
            try:
                offset = int(query.get("offset", "0"))
            except ValueError:
                return _plain(400, "failed to parse parameter `offset`")
            if offset < 0:
                return _error(400, "INVALID_CLIENT_REQUEST", "Offset must be >= 0")
        return _json(exchange.trade_rows(symbol, limit, offset))
    if path == "/api/v1/klines":
        try:
            interval = KlineInterval(query.get("interval", ""))
            start_s = int(query["startTime"])
            end_s = int(query["endTime"]) if "endTime" in query else None
        except (KeyError, ValueError):
            return _plain(400, "failed to parse parameters `interval`/`startTime`")
        return _json(
            _as_wire(exchange.klines(symbol, interval, start_s, end_s), ("trades",))
        )
    return _plain(404, "Not Found")
