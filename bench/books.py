"""Book benchmarks: the operator alone and the flow from replay, per symbol count."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

OUT = Path("out")
TOTAL_EVENTS_PER_S = 2_000.0  # engine events per simulated second, over all symbols
SECONDS = 60.0


def session_for(symbols: int) -> Path:
    from bpx_flows.connectors.sim import SimConfig
    from bpx_flows.connectors.sim.engine import MarketSpec
    from bpx_flows.connectors.sim.session import write_session

    path = OUT / f"book-{symbols}.jsonl.gz"
    if path.exists():
        return path
    rate = TOTAL_EVENTS_PER_S / symbols
    markets = tuple(
        MarketSpec(
            f"S{i:03d}_USDC",
            f"S{i:03d}",
            "USDC",
            "SPOT",
            "0.01",
            "0.01",
            "100.00",
            rate,
        )
        for i in range(symbols)
    )
    config = SimConfig(seed=5, markets=markets, account_every_s=None)
    streams = [
        name
        for m in markets
        for name in (f"depth.{m.symbol}", f"bookTicker.{m.symbol}")
    ]
    write_session(path, SECONDS, config, streams)
    return path


def load_records(path: Path) -> tuple[list[Any], list[bytes]]:
    from bpx_flows.connectors.backpack.replayer import Replayer
    from bpx_flows.connectors.recording import is_frame_line, iter_lines, unsplice

    replayer = Replayer()
    records: list[Any] = []
    raw: list[bytes] = []
    for line in iter_lines(path):
        records.extend(replayer.feed(line))
        if is_frame_line(line):
            raw.append(unsplice(line))
    return records, raw


def time_operator(records: list[Any], emit_every_us: int) -> float:
    """Depth updates per second through ``step`` (keyed by symbol, as in the flow)."""
    from bpx_flows.connectors.backpack.wire import Depth, Frame
    from bpx_flows.flows.book import book_records
    from bpx_flows.operators.book_state import BookConfig, step

    config = BookConfig(emit_every_us=emit_every_us)
    keyed = book_records(str, records)
    keys = [key for key, _ in keyed]
    book_records = [record for _, record in keyed]
    depth = sum(
        1 for r in book_records if isinstance(r, Frame) and type(r.data) is Depth
    )
    states: dict[str, Any] = {}
    start = time.perf_counter()
    for key, record in zip(keys, book_records, strict=True):
        states[key], _ = step(states.get(key), record, config)
    return depth / (time.perf_counter() - start)


def time_decode(raw: list[bytes]) -> float:
    from bpx_flows.connectors.backpack.decode import FrameDecoder

    decode = FrameDecoder().decode
    start = time.perf_counter()
    for frame in raw:
        decode(frame)
    return len(raw) / (time.perf_counter() - start)


def derivatives_session() -> Path:
    """100 perps, 600 simulated seconds: mark prices, open interest, liquidations."""
    from bpx_flows.connectors.sim import SimConfig
    from bpx_flows.connectors.sim.engine import MarketSpec
    from bpx_flows.connectors.sim.session import write_session

    path = OUT / "derivatives-100.jsonl.gz"
    if path.exists():
        return path
    markets = tuple(
        MarketSpec(
            f"P{i:03d}_USDC_PERP",
            f"P{i:03d}",
            "USDC",
            "PERP",
            "0.01",
            "0.01",
            "100.00",
            2.0,
        )
        for i in range(100)
    )
    config = SimConfig(
        seed=9,
        markets=markets,
        account_every_s=None,
        liquidation_every_s=0.5,
        cascade_every_s=30.0,
    )
    streams = ["liquidation"]
    streams += [
        n
        for m in markets
        for n in (f"markPrice.{m.symbol}", f"openInterest.{m.symbol}")
    ]
    write_session(path, 600.0, config, streams)
    return path


def trades_session() -> Path:
    """Every market's trades at 40x the default rates for 240 simulated seconds."""
    from bpx_flows.connectors.sim import SimConfig
    from bpx_flows.connectors.sim.session import write_session

    path = OUT / "trades.jsonl.gz"
    if path.exists():
        return path
    config = SimConfig(seed=13, rate_scale=40.0, account_every_s=None)
    symbols = [m.symbol for m in config.markets]
    write_session(path, 240.0, config, [f"trade.{s}" for s in symbols])
    return path
