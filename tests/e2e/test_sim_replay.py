"""The simulator's replay mode over real WebSockets: hold, delayed start, catalog."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import pytest
import websockets

from bpx_flows.connectors.sim.replay import RecordingFeed
from bpx_flows.connectors.sim.server import ServerConfig, SimServer

pytestmark = pytest.mark.e2e

SESSION = (
    Path(__file__).resolve().parents[2] / "data" / "sessions" / "sim-session.jsonl.gz"
)


async def _read(
    server: SimServer, streams: list[list[str]], gap_s: float, quiet_s: float
) -> tuple[dict[str, int], bool]:
    """Frames per stream, subscribing each list ``gap_s`` apart, until ``quiet_s``
    without a frame; and whether the server closed the connection."""
    counts: dict[str, int] = {}
    async with websockets.connect(server.ws_url, max_size=None) as ws:

        async def receive() -> bool:
            try:
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), quiet_s))
                    counts[frame["stream"]] = counts.get(frame["stream"], 0) + 1
            except TimeoutError:
                return False
            except websockets.ConnectionClosed:
                return True

        reader = asyncio.create_task(receive())
        for group in streams:
            if reader.done():
                break
            with contextlib.suppress(websockets.ConnectionClosed):  # replay ended
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": group}))
            await asyncio.sleep(gap_s)
        closed = await reader
    return counts, closed


def _recorded(feed: RecordingFeed, streams: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for frame in feed.frames:
        if frame.stream in streams:
            counts[frame.stream] = counts.get(frame.stream, 0) + 1
    return counts


@pytest.mark.parametrize(("hold", "delay_s"), [(False, 0.0), (True, 0.6)])
def test_every_frame_once_then_close_or_hold(hold: bool, delay_s: float) -> None:
    feed = RecordingFeed.load(SESSION)
    first, later = ["trade.SOL_USDC"], ["depth.SOL_USDC"]
    config = ServerConfig(
        speed=0.0, close_after_replay=not hold, replay_delay_s=delay_s
    )

    async def main() -> tuple[dict[str, int], bool]:
        server = SimServer(config=config, replay=feed)
        await server.start()
        try:
            # The second SUBSCRIBE comes 0.3 s after the first: with a delayed
            # start it still gets its stream's first frames.
            return await _read(server, [first, later], 0.3, 1.5)
        finally:
            await server.stop()

    counts, closed = asyncio.run(main())
    recorded = _recorded(feed, first + later)
    assert counts["trade.SOL_USDC"] == recorded["trade.SOL_USDC"]
    assert closed is not hold
    if delay_s:
        assert counts["depth.SOL_USDC"] == recorded["depth.SOL_USDC"]
    else:  # the replay ran ahead of the late subscription
        assert counts.get("depth.SOL_USDC", 0) < recorded["depth.SOL_USDC"]


def test_replay_lists_assets_and_securities_of_the_recorded_markets() -> None:
    feed = RecordingFeed.load(SESSION)

    async def main() -> tuple[list[dict[str, object]], list[object]]:
        server = SimServer(replay=feed)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.rest_url) as client:
                assets = (await client.get("/api/v1/assets")).json()
                securities = (await client.get("/api/v1/securities")).json()
                return assets, securities
        finally:
            await server.stop()

    assets, securities = asyncio.run(main())
    bases = {s.split("_")[0] for s in feed.symbols()}
    assert bases | {"USDC"} == {a["symbol"] for a in assets}
    assert securities == []  # no tokenized stock was recorded
