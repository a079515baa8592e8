"""The one side vocabulary of every output: ``bid`` or ``ask``, lower case.

The exchange writes ``Bid``/``Ask`` on the wire (an order's side; a liquidation's is
the side of the order that closed the position: ``bid`` liquidates a short). Every
record we emit, every metric label and every console line says ``bid`` or ``ask``.
(Candles' ``buy_volume``/``sell_volume`` are a different thing: the taker's
direction, as OHLCV tools name it.)
"""

from __future__ import annotations

import enum

from ..connectors.backpack.wire import Side

__all__ = ["BookSide"]


class BookSide(enum.StrEnum):
    """The side of an order, a liquidation or a quote, as outputs write it."""

    BID = "bid"
    ASK = "ask"

    @classmethod
    def of(cls, side: Side) -> BookSide:
        """The output side of a wire ``Side``."""
        return cls.BID if side is Side.BID else cls.ASK
