"""The simulator speaks the exchange's protocol: raw WebSocket and HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import msgspec
import pytest
import websockets

from bpx_flows.connectors.backpack import Credentials
from bpx_flows.connectors.backpack.wire import (
    DepthSnapshot,
    KlineRow,
    Market,
    MarkPriceRow,
    OpenInterestRow,
    TickerRow,
    TradeRow,
)
from bpx_flows.connectors.sim import SimServer, SimThread
from tests.conftest import start_sim

pytestmark = pytest.mark.e2e


async def frames_for(url: str, requests: list[dict], seconds: float) -> list[dict]:
    out = []
    async with websockets.connect(url) as ws:
        for request in requests:
            await ws.send(json.dumps(request))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
            except TimeoutError:
                break
    return out


def test_errors_are_frames_with_null_id_and_bad_symbols_are_silent(
    sim: SimServer,
) -> None:
    requests = [
        {"method": "SUBSCRIBE", "params": ["nope.SOL_USDC"], "id": 7},
        {"method": "SUBSCRIBE", "params": ["depth.100ms.SOL_USDC"]},
        {"method": "FOO", "params": []},
        {"method": "SUBSCRIBE", "params": ["trade.NOPE_USDC"]},
    ]
    got = asyncio.run(frames_for(sim.ws_url, requests, 1.0))
    errors = [f for f in got if "error" in f]
    assert [e["error"]["code"] for e in errors] == [4006, 4008, 4002]
    assert all(e["id"] is None for e in errors)
    assert [f for f in got if "stream" in f] == []  # unknown symbol: silence, no ack


def test_subscribe_has_no_ack_and_unsubscribe_stops_data(sim: SimServer) -> None:
    async def scenario() -> tuple[list[dict], list[dict]]:
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(
                json.dumps({"method": "SUBSCRIBE", "params": ["depth.SOL_USDC"]})
            )
            first = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(5)]
            await ws.send(
                json.dumps({"method": "UNSUBSCRIBE", "params": ["depth.SOL_USDC"]})
            )
            await asyncio.sleep(0.3)  # frames already in flight may still arrive
            late = []
            try:
                while True:
                    late.append(json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
            except TimeoutError:
                pass
            return first, late

    first, late = asyncio.run(scenario())
    assert all(f["stream"] == "depth.SOL_USDC" for f in first)
    assert len(late) < 20


def test_positions_snapshot_is_sent_on_subscribe_without_e(
    fresh_sim: SimThread, credentials: Credentials
) -> None:
    server = fresh_sim.server
    assert server.exchange is not None
    # Wait until the account holds a position, so the snapshot is not empty.
    deadline = time.monotonic() + 20
    while not fresh_sim.call(lambda: server.exchange.account.positions):  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no position opened"
        time.sleep(0.2)
    signature = credentials.sign_subscribe(time.time_ns() // 1_000_000)
    request = {
        "method": "SUBSCRIBE",
        "params": ["account.positionUpdate"],
        "signature": signature,
    }
    got = asyncio.run(frames_for(server.ws_url, [request], 0.5))
    assert got and "e" not in got[0]["data"]
    assert got[0]["stream"] == "account.positionUpdate"


def test_rest_endpoints_answer_in_the_documented_shapes(sim: SimServer) -> None:
    base = sim.rest_url
    now_s = int(time.time())
    checks = [
        ("/api/v1/markets", {}, list[Market]),
        ("/api/v1/depth", {"symbol": "SOL_USDC", "limit": "5"}, DepthSnapshot),
        (
            "/api/v1/klines",
            {"symbol": "SOL_USDC", "interval": "1m", "startTime": str(now_s - 3600)},
            list[KlineRow],
        ),
        ("/api/v1/trades", {"symbol": "SOL_USDC", "limit": "10"}, list[TradeRow]),
        ("/api/v1/markPrices", {}, list[MarkPriceRow]),
        ("/api/v1/openInterest", {"symbol": "SOL_USDC_PERP"}, list[OpenInterestRow]),
        ("/api/v1/ticker", {"symbol": "SOL_USDC"}, TickerRow),
    ]
    for path, params, kind in checks:
        response = httpx.get(base + path, params=params, timeout=5)
        assert response.status_code == 200, path
        msgspec.json.decode(response.content, type=kind, strict=False)
    depth = httpx.get(
        base + "/api/v1/depth", params={"symbol": "SOL_USDC", "limit": "5"}
    ).json()
    assert isinstance(depth["lastUpdateId"], int | str)
    bids = [float(p) for p, _ in depth["bids"]]
    assert bids == sorted(bids)  # ascending: the best bid is last
    assert (
        httpx.get(base + "/api/v1/depth", params={"symbol": "NOPE"}).status_code == 400
    )
    assert (
        httpx.get(
            base + "/api/v1/depth", params={"symbol": "SOL_USDC", "limit": "7"}
        ).status_code
        == 400
    )
    assert httpx.get(base + "/api/v1/nothing").status_code == 404


def test_server_pings_and_closes_with_1001_on_shutdown(
    credentials: Credentials,
) -> None:
    thread = start_sim(credentials, ping_interval_s=0.2, ping_timeout_s=1.0)

    async def scenario(server: SimServer) -> tuple[int | None, float]:
        async with websockets.connect(server.ws_url, ping_interval=None) as ws:
            await ws.send(
                json.dumps({"method": "SUBSCRIBE", "params": ["trade.SOL_USDC"]})
            )
            start = time.monotonic()
            await asyncio.sleep(1.5)  # several server pings, answered automatically
            alive = time.monotonic() - start
            await asyncio.to_thread(thread.__exit__, None, None, None)
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None, alive
        return None, 0.0

    with thread as server:
        code, alive = asyncio.run(scenario(server))
    assert alive >= 1.5
    assert code == 1001


def test_control_endpoints(fresh_sim: SimThread) -> None:
    base = fresh_sim.server.rest_url
    assert httpx.get(base + "/sim/pause").json()["paused"] is True
    book = httpx.get(base + "/sim/book", params={"symbol": "SOL_USDC"}).json()
    assert len(book["bids"]) > 5
    assert httpx.get(base + "/sim/resume").json()["paused"] is False
    assert (
        httpx.get(
            base + "/sim/fault", params={"kind": "drop", "after": "10"}
        ).status_code
        == 200
    )
    assert httpx.get(base + "/sim/fault", params={"kind": "explode"}).status_code == 400
