"""Trade-id continuity per symbol: duplicates dropped, a jump reported as a gap."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import msgspec

from ...connectors.backpack.wire import Trade
from ..numbers import seen_decimal

__all__ = ["IdState", "TradeGap", "check_ids"]


class TradeGap(msgspec.Struct, frozen=True):
    """Trade ids ``first_missing..last_missing`` of ``symbol`` never arrived (yet).

    ``count == 0`` marks a trade that arrived with a non-numeric price or quantity and
    was left out of every candle.
    """

    symbol: str
    first_missing: int
    last_missing: int
    count: int
    detected_us: int  # engine time of the trade that revealed the gap
    since_us: int = 0  # engine time of the last trade before the gap


@dataclass
class IdState:
    """The highest id seen and recent ids (to drop duplicates)."""

    max_id: int | None = None
    max_id_us: int = 0  # engine time of the trade with ``max_id``
    recent: set[int] = field(default_factory=set)
    order: deque[int] = field(default_factory=deque)
    duplicates: int = 0
    gaps: int = 0
    invalid: int = 0


def check_ids(
    state: IdState | None, trade: Trade, remember: int = 4096
) -> tuple[IdState, list[Trade | TradeGap]]:
    """Pass a trade on unless it is a duplicate; report a jump in ids as a gap."""
    state = state or IdState()
    if seen_decimal(trade.p) is None or seen_decimal(trade.q) is None:
        state.invalid += 1  # a price or quantity that is not a number: never folded
        return state, [TradeGap(trade.s, trade.t, trade.t, 0, trade.T, trade.T)]
    if trade.t in state.recent:
        state.duplicates += 1
        return state, []
    state.recent.add(trade.t)
    state.order.append(trade.t)
    if len(state.order) > remember:
        state.recent.discard(state.order.popleft())
    out: list[Trade | TradeGap] = []
    if state.max_id is not None and trade.t > state.max_id + 1:
        first, last = state.max_id + 1, trade.t - 1
        state.gaps += 1
        gap = TradeGap(trade.s, first, last, last - first + 1, trade.T, state.max_id_us)
        out.append(gap)
    if state.max_id is None or trade.t > state.max_id:
        state.max_id, state.max_id_us = trade.t, trade.T
    out.append(trade)
    return state, out
