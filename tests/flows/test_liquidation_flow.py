"""The liquidation flow's step, pure: an event on both stream names counts once."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from bpx_flows.connectors.backpack.wire import Frame, Liquidation, MarkPrice, Side
from bpx_flows.flows.liquidations import _detect, liquidation_streams
from bpx_flows.operators.bursts import BurstAlert, BurstConfig, BurstPhase

S = 1_000_000
T0 = 1_790_000_000_000_000
SYMBOL = "SOL_USDC_PERP"
CFG = BurstConfig(min_notional=D(1000), min_count=3)


def _liq(stream: str, at: int) -> Frame[Liquidation]:
    event = Liquidation(E=at, q="1", p="500", S=Side.BID, s=SYMBOL, T=at)
    return Frame(stream, event, at)


def _run(frames: list[Frame[Any]]) -> list[Any]:
    state, out = None, []
    for frame in frames:
        state, emitted = _detect(CFG, state, frame)
        out += emitted
    return out


def test_a_cascade_seen_on_both_stream_names_counts_once() -> None:
    # 200 events (more than any short memory), then all their copies, then a heartbeat.
    times = [T0 + k * 100_000 for k in range(200)]
    frames = [_liq("liquidation", t) for t in times]
    frames += [_liq(f"liquidation.{SYMBOL}", t) for t in times]
    frames.append(
        Frame(
            f"markPrice.{SYMBOL}",
            MarkPrice(E=T0 + 90 * S, s=SYMBOL, p="1", T=T0 + 90 * S),
            0,
        )
    )
    out = _run(frames)
    alerts = [a for a in out if isinstance(a, BurstAlert)]
    assert [a.phase for a in alerts] == [BurstPhase.STARTED, BurstPhase.ENDED]
    assert alerts[1].count == 200


def test_named_symbols_get_per_symbol_streams() -> None:
    assert liquidation_streams([SYMBOL]) == [
        f"liquidation.{SYMBOL}",
        f"markPrice.{SYMBOL}",
    ]
    assert liquidation_streams([]) == ["liquidation"]
