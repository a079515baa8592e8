"""An exact L2 order book: levels keyed by ``Decimal`` value, quantities absolute.

``"86700"`` and ``"86700.0"`` are the same level (the REST snapshot and the stream
format prices differently), and ``"0.00000"`` removes a level. Sides are sorted maps,
so the best price is O(1) and a price band is a range scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from sortedcontainers import SortedDict

__all__ = ["L2Book"]


class L2Book:
    """Bids and asks of one market.

    Attributes:
        bids: price -> quantity, ascending (best bid last).
        asks: price -> quantity, ascending (best ask first).
        update_id: the last update id applied.
        invalid_levels: levels skipped because price or quantity was not a valid
            non-negative decimal.
    """

    __slots__ = ("asks", "bids", "invalid_levels", "update_id")

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.update_id = 0
        self.invalid_levels = 0

    def reset(
        self,
        bids: Iterable[tuple[str, str]],
        asks: Iterable[tuple[str, str]],
        update_id: int,
    ) -> None:
        """Replace the whole book with a snapshot."""
        self.bids.clear()
        self.asks.clear()
        self.apply(bids, asks, update_id)

    def apply(
        self,
        bids: Iterable[tuple[str, str]],
        asks: Iterable[tuple[str, str]],
        update_id: int,
    ) -> None:
        """Set absolute quantities; a zero quantity removes the level."""
        self._apply_side(self.bids, bids)
        self._apply_side(self.asks, asks)
        self.update_id = update_id

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        """``(price, quantity)`` of the best bid, or ``None`` if there are no bids."""
        return self.bids.peekitem(-1) if self.bids else None

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        """``(price, quantity)`` of the best ask, or ``None`` if there are no asks."""
        return self.asks.peekitem(0) if self.asks else None

    def levels(
        self,
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """All levels, ``(bids, asks)``, each ascending by price."""
        return list(self.bids.items()), list(self.asks.items())

    def _apply_side(self, side: SortedDict, levels: Iterable[tuple[str, str]]) -> None:
        for price_text, qty_text in levels:
            try:
                price, qty = Decimal(price_text), Decimal(qty_text)
            except (InvalidOperation, TypeError):
                self.invalid_levels += 1
                continue
            if not price.is_finite() or not qty.is_finite() or qty < 0 or price <= 0:
                self.invalid_levels += 1
                continue
            if qty:
                side[price] = qty
            else:
                side.pop(price, None)
