"""Reading corrected candles as a consumer would: each window's highest revision."""

from __future__ import annotations

import msgspec

from bpx_flows.connectors.backpack.streams import KlineInterval
from bpx_flows.operators.candles import Candle


def latest(
    candles: list[Candle], *, ignore_partial: bool = False
) -> dict[tuple[KlineInterval, int], Candle]:
    """Each window's highest revision, its revision number (and, if asked, its
    partial flag) set aside, so values compare across runs."""
    best: dict[tuple[KlineInterval, int], Candle] = {}
    for c in candles:
        key = (c.interval, c.start_us)
        if key not in best or c.revision > best[key].revision:
            best[key] = c
    return {
        k: msgspec.structs.replace(
            c, revision=0, partial=False if ignore_partial else c.partial
        )
        for k, c in best.items()
    }
