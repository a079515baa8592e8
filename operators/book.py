"""An exact L2 order book: levels keyed by ``Decimal`` value, quantities absolute.

``"86700"`` and ``"86700.0"`` are the same level (the REST snapshot and the stream
format prices differently), and ``"0.00000"`` removes a level. Sides are sorted maps
(chosen by measurement over a dict with a lazily kept best price: the bands need
ordered range scans), so the best price is O(1), an update O(log n), and depth within
a price band scans only the levels inside the band.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from operator import mul

from sortedcontainers import SortedDict

__all__ = ["L2Book", "Level"]

Level = tuple[Decimal, Decimal]  # (price, quantity)
_ZERO = Decimal(0)
_BPS = Decimal(10_000)
_EXP = 40  # decimal exponent bound of a level's price and quantity


class L2Book:
    """Bids and asks of one market.

    Args:
        max_levels: levels kept per side; beyond it the levels farthest from the touch
            are trimmed (and counted). ``None`` keeps everything.

    Attributes:
        bids: price -> quantity, ascending (best bid last).
        asks: price -> quantity, ascending (best ask first).
        update_id: the last update id applied.
        invalid_levels: levels skipped: price or quantity not a finite decimal, a
            negative quantity or a non-positive price.
        trimmed_levels: levels dropped to keep ``max_levels`` per side.
    """

    __slots__ = (
        "_best_ask",
        "_best_bid",
        "asks",
        "bids",
        "invalid_levels",
        "max_levels",
        "trimmed_levels",
        "update_id",
    )

    def __init__(self, max_levels: int | None = None) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.update_id = 0
        self.invalid_levels = 0
        self.trimmed_levels = 0
        self.max_levels = max_levels
        # The best prices, kept lazily: None means "look it up" (after the best
        # level was removed); most updates then cost no sorted-list access at all.
        self._best_bid: Decimal | None = None
        self._best_ask: Decimal | None = None

    # Changing the book.

    def reset(
        self,
        bids: Iterable[tuple[str, str]],
        asks: Iterable[tuple[str, str]],
        update_id: int,
    ) -> None:
        """Replace the whole book with a snapshot."""
        self.clear()
        self.apply(bids, asks, update_id)

    def apply(
        self,
        bids: Iterable[tuple[str, str]],
        asks: Iterable[tuple[str, str]],
        update_id: int,
    ) -> None:
        """Set absolute quantities; a zero quantity removes the level."""
        if bids:
            self._best_bid = self._apply_side(self.bids, bids, self._best_bid, True)
        if asks:
            self._best_ask = self._apply_side(self.asks, asks, self._best_ask, False)
        self.update_id = update_id
        most = self.max_levels
        if most is not None and (len(self.bids) > most or len(self.asks) > most):
            self._trim(most)

    def clear(self) -> None:
        """Forget every level (the book is invalid until the next snapshot)."""
        self.bids.clear()
        self.asks.clear()
        self._best_bid = self._best_ask = None

    # Reading the book.

    def best_bid(self) -> Level | None:
        """``(price, quantity)`` of the best bid, or ``None`` if there are no bids."""
        price = self._best_bid
        if price is None:
            if not self.bids:
                return None
            price = self._best_bid = self.bids.peekitem(-1)[0]
        return price, self.bids[price]

    def best_ask(self) -> Level | None:
        """``(price, quantity)`` of the best ask, or ``None`` if there are no asks."""
        price = self._best_ask
        if price is None:
            if not self.asks:
                return None
            price = self._best_ask = self.asks.peekitem(0)[0]
        return price, self.asks[price]

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        """The best ``depth`` levels of each side, best first."""
        bid_prices = self.bids.keys()[-depth:] if depth > 0 else []
        ask_prices = self.asks.keys()[:depth] if depth > 0 else []
        bid_qty, ask_qty = _dict_get(self.bids), _dict_get(self.asks)
        bids = [(price, bid_qty(price)) for price in reversed(bid_prices)]
        asks = [(price, ask_qty(price)) for price in ask_prices]
        return bids, asks

    def depth_within(
        self, low: Decimal, high: Decimal
    ) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """Resting quantity of bids at or above ``low`` and asks at or below ``high``.

        Returns ``(bid_base, bid_quote, ask_base, ask_quote)``. Scans only the levels
        inside the band (a range query on each side).
        """
        bid_base = bid_quote = ask_base = ask_quote = _ZERO
        bids, asks = self.bids, self.asks
        for price in bids.irange(minimum=low):
            qty = bids[price]
            bid_base += qty
            bid_quote += qty * price
        for price in asks.irange(maximum=high):
            qty = asks[price]
            ask_base += qty
            ask_quote += qty * price
        return bid_base, bid_quote, ask_base, ask_quote

    def depth_bands(
        self, mid: Decimal, bands_bps: tuple[int, ...]
    ) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal]]:
        """``depth_within`` for several half-widths around ``mid``.

        Returns ``(bps, bid_base, bid_quote, ask_base, ask_quote)`` per band, ascending
        by ``bps``. One bisection per band edge, then each level inside the widest band
        is summed once (in C: ``sum`` over slices), so the cost is the number of levels
        inside the widest band plus O(log n) per band.
        """
        ordered = sorted(bands_bps)
        if not ordered:
            return []
        halves = [mid * bps / _BPS for bps in ordered]
        bids, asks = self.bids, self.asks
        # Bids at or above mid - h, asks at or below mid + h. The widest band's edge
        # is found in the sorted book; the narrower ones in the levels it spans (a
        # plain list: C bisection).
        low = mid - halves[-1]
        bid_far = bids.bisect_left(low)
        bid_prices = bids.keys()[bid_far:]
        bid_edges = [bid_far + bisect_left(bid_prices, mid - h) for h in halves]
        bid_sums = _band_sums(bids, bid_prices, bid_edges, len(bids), inward=True)
        ask_prices = asks.keys()[: asks.bisect_right(mid + halves[-1])]
        ask_edges = [bisect_right(ask_prices, mid + h) for h in halves]
        ask_sums = _band_sums(asks, ask_prices, ask_edges, 0, inward=False)
        return [
            (bps, bid[0], bid[1], ask[0], ask[1])
            for bps, bid, ask in zip(ordered, bid_sums, ask_sums, strict=True)
        ]

    # Private helpers.

    def _apply_side(
        self,
        side: SortedDict,
        levels: Iterable[tuple[str, str]],
        best: Decimal | None,
        is_bid: bool,
    ) -> Decimal | None:
        """Apply levels to one side; returns its best price, or None if unknown."""
        known = best is not None or not side  # an empty side has no best to lose
        for price_text, qty_text in levels:
            try:
                price, qty = Decimal(price_text), Decimal(qty_text)
            except (InvalidOperation, TypeError, ValueError):
                self.invalid_levels += 1
                continue
            if (
                not price.is_finite()
                or not qty.is_finite()
                or qty < 0
                or price <= 0
                # The range policy of connectors/backpack/limits.py, for levels:
                # no value an exchange could quote is 1e40 or 1e-40 away from 1.
                or not -_EXP < price.adjusted() < _EXP
                or not -_EXP < qty.adjusted() < _EXP
            ):
                self.invalid_levels += 1
                continue
            if qty:
                if price in side:
                    # A new quantity at a known price leaves the order as it is:
                    # set it in the dict SortedDict is, skipping its Python layer.
                    dict.__setitem__(side, price, qty)
                    continue
                side[price] = qty
                if known and (
                    best is None or (price > best if is_bid else price < best)
                ):
                    best = price
            else:
                side.pop(price, None)
                if price == best:
                    best, known = None, False
        return best if known else None

    def _trim(self, max_levels: int) -> None:
        # Far from the touch: the lowest bids and the highest asks.
        # (The best prices are at the other end, so they stay valid.)
        while len(self.bids) > max_levels:
            self.bids.popitem(0)
            self.trimmed_levels += 1
        while len(self.asks) > max_levels:
            self.asks.popitem(-1)
            self.trimmed_levels += 1


def _band_sums(
    side: SortedDict, prices: list[Decimal], edges: list[int], touch: int, inward: bool
) -> list[tuple[Decimal, Decimal]]:
    """Cumulative (base, quote) from the touch index out to each edge index.

    ``prices`` are the side's levels out to the widest edge (read once); their
    quantities come from plain dict lookups in C, and each band adds its ring of
    them, in the same order as summing ring by ring from the book, so the sums are
    the same to the last digit.
    """
    if not edges:
        return []
    start = edges[-1] if inward else touch
    qtys = list(map(_dict_get(side), prices))
    quotes = list(map(mul, prices, qtys))
    sums: list[tuple[Decimal, Decimal]] = []
    base = quote = _ZERO
    near = touch
    for edge in edges:
        low, high = (edge, near) if inward else (near, edge)
        if high > low:
            base += sum(qtys[low - start : high - start], _ZERO)
            quote += sum(quotes[low - start : high - start], _ZERO)
        sums.append((base, quote))
        near = edge
    return sums


def _dict_get(side: SortedDict) -> Callable[[Decimal], Decimal]:
    """``side[price]`` as the plain dict's C lookup (SortedDict's is Python)."""
    return dict.__getitem__.__get__(side)  # type: ignore[no-any-return]
