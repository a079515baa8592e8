"""Recordings written by hand for tests: cases that a simulator run does not pin."""

from __future__ import annotations

import json
from pathlib import Path

from bpx_flows.connectors.recording import Recorder

PERPS = ["SOL_USDC_PERP", "BTC_USDC_PERP", "ETH_USDC_PERP"]
S = 1_000_000
T0 = 1_790_000_000_000_000


def _frame(stream: str, data: dict[str, object]) -> str:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":"))


def write_scenario(path: Path) -> Path:
    """Heartbeats for 120 s; a cascade at 70 s and nothing after; a position whose
    margin use crosses 0.8 and 0.9, falls back and crosses 0.9 again; an RFQ that
    expires with no further RFQ event, beside one that fills."""
    lines: list[tuple[int, str]] = []

    def add(at_us: int, stream: str, data: dict[str, object]) -> None:
        lines.append((at_us + 350, _frame(stream, data)))

    # Long 1 SOL_USDC_PERP at 100: margin use 0.0125 M / (M - 98). SOL and BTC
    # marks come every 20 ms, ETH's every second: the worker that owns ETH reads its
    # share of the file far faster than the one reading the cascade's other lines.
    sol_marks = [(65, "100"), (60, "99.3"), (50, "99.6"), (40, "99.3"), (30, "99.5")]
    for tick in range(120 * 50 + 1):
        at = T0 + tick * 20_000
        second = tick // 50
        for n, symbol in enumerate(PERPS):
            if symbol == "ETH_USDC_PERP" and tick % 50:
                continue
            price = str(50_000 + 1_000 * n)
            if symbol == "SOL_USDC_PERP":
                price = next((p for t, p in sol_marks if second >= t), "100")
            mark = {"e": "markPrice", "E": at, "s": symbol, "p": price, "T": at}
            add(at, f"markPrice.{symbol}", mark)
    for symbol in PERPS:
        for k in range(10):
            at = T0 + 70 * S + k * 100_000
            price = "100" if symbol == "SOL_USDC_PERP" else "50000"
            quantity = "100" if symbol == "SOL_USDC_PERP" else "0.2"  # 10,000 each
            event = {"e": "liquidation", "E": at, "q": quantity, "p": price}
            event |= {"S": "Bid", "s": symbol, "T": at}
            add(at, "liquidation", event)  # the all-markets stream only
    opened = T0 + 5 * S
    position = {
        "e": "positionOpened", "E": opened, "s": "SOL_USDC_PERP", "b": "100",
        "B": "100", "f": "0.02", "M": "100", "m": "0.0125", "q": "1", "Q": "1",
        "n": "100", "i": 42, "p": "0", "P": "0", "T": opened,
    }  # fmt: skip
    add(opened, "account.positionUpdate", position)
    add(opened + 30, "account.positionUpdate.SOL_USDC_PERP", position)
    asked, expiry_ms = T0 + 10 * S, (T0 + 20 * S) // 1000
    for rfq_id, events in (
        (7, [("rfqActive", 0, "New")]),  # never hears of it again: expires
        (8, [("rfqActive", 0, "New"), ("rfqFilled", 2 * S, "Filled")]),
    ):
        for kind, after, status in events:
            at = asked + after
            rfq = {"e": kind, "E": at, "R": rfq_id, "s": "SOL_USDC_RFQ", "S": "Bid"}
            rfq |= {"T": at, "q": "5", "X": status, "W": expiry_ms}
            if kind == "rfqFilled":
                rfq |= {"p": "100", "u": 3}
            add(at, "account.rfqUpdate", rfq)
    streams = ["liquidation", "account.positionUpdate", "account.rfqUpdate"]
    streams += [f"markPrice.{s}" for s in PERPS]
    streams += ["account.positionUpdate.SOL_USDC_PERP"]
    with Recorder(path, streams, flush_every_s=3600) as recorder:
        for recv_us, raw in sorted(lines, key=lambda line: line[0]):
            recorder.frame(raw, recv_us, True)
    return path
