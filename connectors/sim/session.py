"""Write a synthetic session straight from the exchange model, in the recording format.

No network: frames are encoded as the server would send them and stamped with a
receive time shortly after their event time. Each depth stream starts with the REST
snapshot a client would fetch, so a replay syncs its books at once. Deterministic for
a seed, which makes it the input of the benchmarks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from ..backpack.streams import Channel, parse_streams
from ..recording import Recorder
from .encode import Dialect, FrameEncoder
from .exchange import Exchange, SimConfig

__all__ = ["all_public_streams", "write_session"]

log = logging.getLogger("bpx_flows.sim")
_LATENCY_US = 350  # event time E -> our receive time, as over a fast link


def all_public_streams(exchange: Exchange, depth_window: str = "") -> list[str]:
    """Trades, book, ticker and (for perps) derivatives streams of every market."""
    names = ["liquidation"]
    for symbol, engine in exchange.engines.items():
        names += [
            f"depth.{depth_window}{symbol}",
            f"bookTicker.{symbol}",
            f"trade.{symbol}",
            f"ticker.{symbol}",
            f"kline.1m.{symbol}",
        ]
        if engine.spec.is_perp:
            names += [f"markPrice.{symbol}", f"openInterest.{symbol}"]
    return names


def write_session(
    path: str | Path,
    seconds: float,
    config: SimConfig,
    streams: Sequence[str] | None = None,
    start_us: int = 1_790_000_000_000_000,
) -> int:
    """Simulate ``seconds`` and write every frame of ``streams``; returns the count.

    Args:
        path: output file (``.gz`` for gzip).
        seconds: simulated seconds.
        config: the exchange (seed, markets, rates).
        streams: stream names; ``None`` is every public stream of every market.
        start_us: simulated start time, microseconds since the epoch.
    """
    exchange = Exchange(config, start_us)
    names = list(streams) if streams is not None else all_public_streams(exchange)
    exchange.wanted = set(names)
    encoder = FrameEncoder(Dialect.WIRE)
    written = 0
    # A client fetches a book's snapshot once its first diff is buffered; so do we.
    pending_snapshot = {
        str(n): n.symbol
        for n in parse_streams(names)
        if n.channel is Channel.DEPTH and n.symbol is not None
    }
    with Recorder(path, names, flush_every_s=3600) as recorder:
        step_us = 1_000_000
        now = start_us
        end = start_us + int(seconds * 1_000_000)
        while now < end:
            now = min(end, now + step_us)
            for stream, record in exchange.advance_to(now):
                recv_us = getattr(record, "E", now) + _LATENCY_US
                recorder.frame(encoder.encode(stream, record), recv_us, True)
                written += 1
                symbol = pending_snapshot.pop(stream, None)
                if symbol is not None:
                    body = encoder.encode_data(exchange.depth_snapshot(symbol))
                    params = {"symbol": symbol, "limit": "1000"}
                    recorder.rest(stream, "/api/v1/depth", params, body, recv_us + 1)
    log.info("wrote %d frames to %s", written, path)
    return written
