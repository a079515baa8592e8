"""The console line of one exchange event (the part after the stream name)."""

from __future__ import annotations

from typing import Any

from bpx_flows.connectors.backpack.wire import (
    BookTicker,
    Depth,
    Kline,
    Liquidation,
    MarkPrice,
    OpenInterest,
    OrderUpdate,
    PositionUpdate,
    RfqUpdate,
    Ticker,
    Trade,
)

__all__ = ["describe_event"]


def describe_event(data: Any) -> str:
    """What one event says, in a fixed-width column layout."""
    match data:
        case Trade():
            side = "ask" if data.m else "bid"  # the taker's order: m = buyer made
            return f"trade     {side} {data.q} @ {data.p} (t={data.t})"
        case Depth():
            return (
                f"depth     U={data.U} u={data.u} {len(data.b)} bids {len(data.a)} asks"
            )
        case BookTicker():
            return f"top       {data.b} x {data.B} | {data.a} x {data.A} (u={data.u})"
        case Kline():
            state = "closed" if data.X else "open  "
            prices = f"o={data.o} h={data.h} l={data.l} c={data.c}"
            return f"kline     {state} {data.t} {prices}"
        case Ticker():
            return f"ticker    last={data.c} 24h vol={data.v} trades={data.n}"
        case MarkPrice():
            return f"mark      {data.p} index={data.i} funding={data.f}"
        case OpenInterest():
            return f"open int  {data.o}"
        case Liquidation():
            return f"LIQUIDATE {data.S.value.lower()} {data.q} @ {data.p}"
        case OrderUpdate():
            what = f"{data.S.value.lower()} {data.q} @ {data.p}"
            return f"order     {data.e.value} {what} [{data.X}]"
        case PositionUpdate():
            kind = data.e.value if data.e else "snapshot"
            return f"position  {kind} q={data.q} entry={data.B} uPnL={data.P}"
        case RfqUpdate():
            what = f"R={data.R} {data.S.value.lower()} q={data.q} p={data.p}"
            return f"rfq       {data.e.value} {what}"
    return type(data).__name__
