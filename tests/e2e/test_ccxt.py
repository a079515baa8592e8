"""ccxt pro's ``backpack`` class, unchanged but for its URLs, against the simulator.

What a trader testing a ccxt bot offline does (docs/simulator.md): point ccxt at
``bpx-flows sim`` and use it as the exchange. Every call below goes over loopback
to the simulator's REST and WebSocket endpoints and must return what the simulated
markets hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bpx_flows.connectors.backpack import Credentials
from bpx_flows.connectors.sim import ServerConfig, SimConfig, SimServer, SimThread
from tests.conftest import TEST_SECRET

pro = pytest.importorskip("ccxt.pro")
pytestmark = pytest.mark.e2e


def _exchange(server: SimServer, **keys: str) -> Any:
    exchange = pro.backpack(keys)
    exchange.urls["api"] = {
        "public": server.rest_url,
        "private": server.rest_url,
        "ws": {"public": server.ws_url, "private": server.ws_url},
    }
    return exchange


async def _until(call: Callable[[], Awaitable[Any]], ok: Callable[[Any], bool]) -> Any:
    """Call again (a watch returns each update) until the answer is what we want."""
    for _ in range(200):
        answer = await asyncio.wait_for(call(), 20)
        if ok(answer):
            return answer
    pytest.fail(f"no satisfying answer from {call}")


async def _paused(call: Awaitable[Any]) -> Any:
    """``call`` after a quarter second (for an answer the wall clock decides)."""
    await asyncio.sleep(0.25)
    return await call


async def _public(server: SimServer) -> None:
    exchange = _exchange(server)
    try:
        markets = await exchange.load_markets()
        assert {"SOL/USDC", "BTC/USDC", "SOL/USDC:USDC", "BTC/USDC:USDC"} <= set(
            markets
        )
        sol = markets["SOL/USDC"]
        assert (sol["precision"]["price"], sol["precision"]["amount"]) == (0.01, 0.01)
        assert markets["AAPL.US/USDC:USDC"]["stock"]  # from /api/v1/securities
        book = await exchange.fetch_order_book("SOL/USDC")
        assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
        trades = await _until(lambda: exchange.fetch_trades("SOL/USDC"), bool)
        assert all(t["symbol"] == "SOL/USDC" and t["price"] > 0 for t in trades)
        # ccxt asks for klines up to its wall clock, and this simulator's clock runs 5x
        # ahead: bars that opened after the wall clock's minute are not asked for yet
        # (the first trades can all lie in one). Ask until the wall clock is there.
        bars = await _until(
            lambda: _paused(exchange.fetch_ohlcv("SOL/USDC", "1m")), bool
        )
        assert all(len(bar) == 6 for bar in bars)
        ticker = await exchange.fetch_ticker("SOL/USDC")
        assert ticker["last"] > 0
        rate = await exchange.fetch_funding_rate("SOL/USDC:USDC")
        assert rate["markPrice"] > 0
        watched = await exchange.watch_order_book("SOL/USDC")
        assert watched["bids"][0][0] < watched["asks"][0][0]
        live = await _until(lambda: exchange.watch_trades("SOL/USDC"), bool)
        assert live[-1]["price"] > 0
        candles = await exchange.watch_ohlcv("SOL/USDC", "1m")
        assert candles and candles[-1][4] > 0
        assert (await exchange.watch_ticker("SOL/USDC"))["last"] > 0
        tops = await exchange.watch_bids_asks(["SOL/USDC"])
        assert tops["SOL/USDC"]["bid"] < tops["SOL/USDC"]["ask"]
    finally:
        await exchange.close()


async def _private(server: SimServer, creds: Credentials) -> None:
    exchange = _exchange(server, apiKey=creds.public_key, secret=TEST_SECRET)
    try:
        await exchange.load_markets()
        orders = await _until(exchange.watch_orders, bool)
        assert all(o["id"] and o["side"] in ("buy", "sell") for o in orders)
        positions = await _until(exchange.watch_positions, bool)
        assert all(p["symbol"] in exchange.markets for p in positions)
    finally:
        await exchange.close()


def test_ccxt_pro_reads_markets_books_trades_candles_and_tickers() -> None:
    server = SimServer(SimConfig(seed=1), ServerConfig(speed=5.0))
    with SimThread(server):
        asyncio.run(asyncio.wait_for(_public(server), 120))


def test_ccxt_pro_watches_orders_and_positions_with_the_simulators_key() -> None:
    creds = Credentials.from_secret(TEST_SECRET)
    config = ServerConfig(speed=5.0, account_key=creds.public_key)
    server = SimServer(SimConfig(seed=1, account_every_s=0.2), config)
    with SimThread(server):
        asyncio.run(asyncio.wait_for(_private(server, creds), 120))
