"""An exact L2 order book in integers, with depth bands kept as levels change.

Prices and quantities are integers in units of ``10**-decimals``, the most decimals
the book has seen on each (``"86700"`` and ``"86700.0"`` are the same level; a level
with more decimals rescales the book once). Every sum is then an exact integer and a
band edge an integer tick, computed from the mid without rounding; ``Decimal``
appears only where a value leaves the book (the level as the exchange printed it, a
band's sums). ``"0.00000"`` removes a level.

Depth bands (resting quantity within ``bps`` of the mid) cost what changed: while
they are read, each level change adds its difference to the bands it lies in, and a
moved mid walks only the ticks between each band's old and new edge. Nobody reading
them (stats once a second), the book stops keeping them and the next read sums the
bands afresh. ``tests/operators/test_book.py`` holds both to a plain scan.

(Over 450 lines: the levels, the kept bands and the parsed-text tables share the
integer units, which change together on a rescale.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import Context, Decimal, InvalidOperation
from math import gcd
from typing import Any, TypeVar

from sortedcontainers import SortedList

__all__ = ["Band", "L2Book", "Level", "Top"]

Level = tuple[Decimal, Decimal]  # (price, quantity)
# Best bid price and quantity, best ask price and quantity (None: the side is empty).
Top = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]
Band = tuple[int, Decimal, Decimal, Decimal, Decimal]  # bps, bid/ask base and quote
T = TypeVar("T")
_ZERO = Decimal(0)
_EXP = 40  # decimal exponent bound of a level's price and quantity
_MAX_DENOMINATOR = 10**_EXP  # more than 40 decimals: no exchange quotes that
_EXACT = 10**27  # Decimal(n) * 10**-k is exact below 28 digits (the context's)
_WIDE = Context(prec=200)  # for larger sums (the range policy bounds them far below)
# An edge moving over more ticks than this, or than the side has levels, re-sums the
# band instead: a walked tick costs a dict lookup, a re-sum a bisection and a pass
# over the band's levels.
_WALK = 512
# A plain decimal text of at most this many digits before and after the point parses
# straight to integers (well inside the range policy); others go through Decimal.
_PLAIN_DIGITS = 18
_POWERS = tuple(10**i for i in range(_EXP + 1))
_STALE_READS = 32  # applies without a band read before the book stops keeping them
# A level: (quantity in units, price and quantity as the exchange printed them).
_Entry = tuple[int, Decimal, Decimal]
_NO_TOP: Top = (None, None, None, None)
_Sums = tuple[list[Decimal], list[Decimal]]  # a side's band sums: bases, quotes


def _band_row(*values: Any) -> Band:
    return values


class _Side:
    """One side's levels: tick -> entry, the sorted ticks, and its band sums."""

    __slots__ = (
        "base",
        "best",
        "edges",
        "is_bid",
        "levels",
        "quote",
        "sums_out",
        "ticks",
        "top_edge",
        "top_units",
    )

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, _Entry] = {}
        self.ticks = SortedList()
        # The best tick, kept lazily: None means "look it up" after it was removed.
        self.best: int | None = None
        # Per band (ascending bps): its edge tick (bids at or above, asks at or
        # below) and the sums of the levels inside, base units and ticks x units.
        self.edges: list[int] = []
        self.base: list[int] = []
        self.quote: list[int] = []
        # The sums as decimals, (bases, quotes) in band order; None: changed since
        # (and after a rescale, where the same integers stand for other quantities).
        self.sums_out: _Sums | None = None
        # The best levels' summed units, valid until a level at or inside the
        # farthest of them changes (top_edge None: sum again).
        self.top_edge: float | None = None
        self.top_units = (0, 0)  # (depth, units)

    def best_tick(self) -> int | None:
        best = self.best
        if best is None and self.ticks:
            best = self.best = self.ticks[-1] if self.is_bid else self.ticks[0]
        return best

    def add(self, tick: int, units: int, band_count: int) -> None:
        """Add ``units`` at ``tick`` to the band sums it lies in."""
        edges, base, quote = self.edges, self.base, self.quote
        quote_units = units * tick
        # Bands ascend in bps, so a level inside a band is inside every wider one.
        band = band_count - 1
        if self.is_bid:
            while band >= 0 and tick >= edges[band]:
                base[band] += units
                quote[band] += quote_units
                band -= 1
        else:
            while band >= 0 and tick <= edges[band]:
                base[band] += units
                quote[band] += quote_units
                band -= 1
        if band < band_count - 1:
            self.sums_out = None

    def sums_within(self, edges: list[int]) -> list[tuple[int, int]]:
        """Base and quote sums of the levels inside each of ``edges``.

        Nested bands, narrowest first: one pass over the widest band's levels.
        """
        if not edges:
            return []
        ticks, levels, is_bid = self.ticks, self.levels, self.is_bid
        if is_bid:
            inside = ticks.irange(minimum=edges[-1], reverse=True)
        else:
            inside = ticks.irange(maximum=edges[-1])
        sums: list[tuple[int, int]] = []
        edge = edges[0]
        base = quote = 0
        for tick in inside:  # best first: a tick past a band's edge closes it
            while tick < edge if is_bid else tick > edge:
                sums.append((base, quote))
                edge = edges[len(sums)]  # the widest band holds every tick here
            units = levels[tick][0]
            base += units
            quote += units * tick
        while len(sums) < len(edges):
            sums.append((base, quote))
        return sums


class L2Book:
    """Bids and asks of one market.

    Args:
        max_levels: levels kept per side; beyond it the levels farthest from the touch
            are trimmed (and counted). ``None`` keeps everything.
        bands_bps: half-widths around the mid that ``bands()`` reports, basis points.

    Attributes:
        update_id: the last update id applied.
        invalid_levels: levels skipped: price or quantity not a finite decimal, a
            negative quantity or a non-positive price, or one no exchange could
            quote (1e40 or 1e-40 away from 1, or over 40 decimals: the range policy
            of ``connectors/backpack/limits.py``, for levels).
        trimmed_levels: levels dropped to keep ``max_levels`` per side.
    """

    __slots__ = (
        "_asks",
        "_bands",
        "_bids",
        "_mid2",
        "_price_decimals",
        "_price_scale",
        "_qty_decimals",
        "_qty_scale",
        "_qty_unit",
        "_quote_unit",
        "_reads_ago",
        "_rows",
        "_step",
        "invalid_levels",
        "max_levels",
        "trimmed_levels",
        "update_id",
    )

    def __init__(
        self, max_levels: int | None = None, bands_bps: Iterable[int] = ()
    ) -> None:
        self._bids = _Side(True)
        self._asks = _Side(False)
        self._bands = sorted(bands_bps)
        self.update_id = 0
        self.invalid_levels = 0
        self.trimmed_levels = 0
        self.max_levels = max_levels
        # Units: a tick is 10**-price_decimals, a quantity unit 10**-qty_decimals.
        self._price_decimals = self._qty_decimals = 0
        self._price_scale = self._qty_scale = 1  # 10**decimals
        self._qty_unit = self._quote_unit = Decimal(1)
        self._step = 0  # gcd of every tick seen: the walk's stride (0: none yet)
        # Doubled mid (bid + ask ticks) the band edges belong to; None: the band
        # sums are not kept (never read, a side empty, or not read for a while).
        self._mid2: int | None = None
        self._reads_ago = 0
        self._rows: tuple[Any, ...] = (None, None, None, ())  # bands()' last answer

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled compactly: Bytewax snapshots every book at each epoch's end.

        The levels as four flat values a side (ticks, units, the prices and the sizes
        as printed, in one text each), not a dict of tuples of ``Decimal`` objects:
        6-10x faster (``make bench``). The caches are left behind (rebuilt when read).
        """
        return (
            _restore_book,
            (
                _PICKLE_FORMAT,
                self.max_levels,
                tuple(self._bands),
                self.update_id,
                self.invalid_levels,
                self.trimmed_levels,
                self._price_decimals,
                self._qty_decimals,
                self._step,
                _packed(self._bids),
                _packed(self._asks),
            ),
        )

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
        if self._mid2 is not None:
            self._reads_ago += 1
            if self._reads_ago > _STALE_READS:
                self._mid2 = None  # nobody reads the bands: stop keeping them
        if bids:
            self._apply_side(self._bids, bids)
        if asks:
            self._apply_side(self._asks, asks)
        self.update_id = update_id
        most = self.max_levels
        if most is not None and (
            len(self._bids.levels) > most or len(self._asks.levels) > most
        ):
            self._trim(most)

    def clear(self) -> None:
        """Forget every level (the book is invalid until the next snapshot)."""
        for side in (self._bids, self._asks):
            side.levels.clear()
            side.ticks.clear()
            side.best = side.top_edge = None
        self._mid2 = None

    # Reading the book.

    @property
    def bids(self) -> dict[Decimal, Decimal]:
        """Price -> quantity of every bid, ascending (a copy: O(levels))."""
        return dict(self._levels(self._bids))

    @property
    def asks(self) -> dict[Decimal, Decimal]:
        """Price -> quantity of every ask, ascending (a copy: O(levels))."""
        return dict(self._levels(self._asks))

    @property
    def bid_count(self) -> int:
        """Number of bid levels."""
        return len(self._bids.levels)

    @property
    def ask_count(self) -> int:
        """Number of ask levels."""
        return len(self._asks.levels)

    @property
    def qty_unit(self) -> Decimal:
        """The quantity one unit of ``top_sums`` stands for."""
        return self._qty_unit

    def best_bid(self) -> Level | None:
        """``(price, quantity)`` of the best bid, or ``None`` if there are no bids."""
        tick = self._bids.best_tick()
        if tick is None:
            return None
        _, price, qty = self._bids.levels[tick]
        return price, qty

    def best_ask(self) -> Level | None:
        """``(price, quantity)`` of the best ask, or ``None`` if there are no asks."""
        tick = self._asks.best_tick()
        if tick is None:
            return None
        _, price, qty = self._asks.levels[tick]
        return price, qty

    def touch(self) -> tuple[Top, int]:
        """The top of book, and how its two sides stand.

        The top is ``(bid price, bid qty, ask price, ask qty)``, ``None`` for an
        empty side's two. The second is 1 if the bid is above the ask (crossed), 0
        if they are equal (locked), -1 otherwise or with a side empty, compared in
        integer ticks. (Read after every update: one call, no ``Decimal``
        comparison.)
        """
        bids, asks = self._bids, self._asks
        bid_tick = bids.best if bids.best is not None else bids.best_tick()
        ask_tick = asks.best if asks.best is not None else asks.best_tick()
        if bid_tick is None:
            if ask_tick is None:
                return _NO_TOP, -1
            _, ask_price, ask_qty = asks.levels[ask_tick]
            return (None, None, ask_price, ask_qty), -1
        _, bid_price, bid_qty = bids.levels[bid_tick]
        if ask_tick is None:
            return (bid_price, bid_qty, None, None), -1
        _, ask_price, ask_qty = asks.levels[ask_tick]
        stand = -1 if bid_tick < ask_tick else 0 if bid_tick == ask_tick else 1
        return (bid_price, bid_qty, ask_price, ask_qty), stand

    def seen(self, price: str, qty: str) -> Level | None:
        """The decimals of a level's texts, if the book parsed both before (else None).

        Equal to ``Decimal(price), Decimal(qty)``: a dict lookup where parsing them
        costs more (a bookTicker checked against the book repeats its texts).
        """
        # The newer generation inline, the older only on a miss: this runs for every
        # pending ticker after each update (a method per lookup cost more).
        known_price = _PRICES.new[self._price_decimals].get(price)
        if known_price is None:
            known_price = _PRICES.older(self._price_decimals, price)
        known_qty = _QTYS.new[self._qty_decimals].get(qty)
        if known_qty is None:
            known_qty = _QTYS.older(self._qty_decimals, qty)
        if known_price is None or known_qty is None:
            return None
        return known_price[1], known_qty[1]

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        """The best ``depth`` levels of each side, best first."""
        return self._top(self._bids, depth), self._top(self._asks, depth)

    def top_sums(self, depth: int) -> tuple[int, int]:
        """Quantity of the best ``depth`` levels of each side, in units of ``qty_unit``.

        (Integers: their ratio is the decimals' ratio, exactly.)
        """
        bids, asks = self._bids, self._asks  # (read after every update: inlined)
        if bids.top_edge is None or bids.top_units[0] != depth:
            self._resum_top(bids, depth)
        if asks.top_edge is None or asks.top_units[0] != depth:
            self._resum_top(asks, depth)
        return bids.top_units[1], asks.top_units[1]

    def bands(self, make: Callable[..., T] = _band_row) -> tuple[T, ...]:  # type: ignore[assignment]
        """``make(bps, bid_base, bid_quote, ask_base, ask_quote)`` per configured band.

        Bids at or above ``mid - mid * bps / 10000`` and asks at or below
        ``mid + mid * bps / 10000``, ascending by ``bps``; ``()`` without a mid. The
        same tuple again while nothing in the bands changed.
        """
        # (Read after every update when stats are: the calls are inlined.)
        bids, asks = self._bids, self._asks
        bid = bids.best if bids.best is not None else bids.best_tick()
        ask = asks.best if asks.best is not None else asks.best_tick()
        if bid is None or ask is None or not self._bands:
            return ()
        self._reads_ago = 0
        if bid + ask != self._mid2:
            self._move_edges(bid + ask)
        bid_sums = bids.sums_out
        if bid_sums is None:  # most updates change one side only
            bid_sums = bids.sums_out = _decimals(
                bids.base, bids.quote, self._qty_unit, self._quote_unit
            )
        ask_sums = asks.sums_out
        if ask_sums is None:
            ask_sums = asks.sums_out = _decimals(
                asks.base, asks.quote, self._qty_unit, self._quote_unit
            )
        last = self._rows
        if last[0] is make and last[1] is bid_sums and last[2] is ask_sums:
            return last[3]  # type: ignore[no-any-return]
        # map, not a comprehension: the loop and the calls run in C.
        rows = tuple(map(make, self._bands, *bid_sums, *ask_sums))
        self._rows = (make, bid_sums, ask_sums, rows)
        return rows

    def depth_within(
        self, low: Decimal, high: Decimal
    ) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """Resting quantity of bids at or above ``low`` and asks at or below ``high``.

        Returns ``(bid_base, bid_quote, ask_base, ask_quote)``: a plain scan of every
        level in ``Decimal`` (the reference ``bands()`` is tested against).
        """
        bid_base = bid_quote = ask_base = ask_quote = _ZERO
        for price, qty in self._levels(self._bids):
            if price >= low:
                bid_base += qty
                bid_quote += qty * price
        for price, qty in self._levels(self._asks):
            if price <= high:
                ask_base += qty
                ask_quote += qty * price
        return bid_base, bid_quote, ask_base, ask_quote

    # Private helpers: levels.

    def _apply_side(self, side: _Side, levels: Iterable[tuple[str, str]]) -> None:
        book_levels, ticks = side.levels, side.ticks
        keeping = self._mid2 is not None
        prices, quantities = (
            _PRICES.new[self._price_decimals],
            _QTYS.new[self._qty_decimals],
        )
        for price_text, qty_text in levels:
            try:
                known_price = prices.get(price_text)
                known_qty = quantities.get(qty_text)
            except TypeError:  # not even hashable: the parser says why not
                known_price = known_qty = None
            if known_price is None or known_qty is None:
                parsed = self._parse(price_text, qty_text, known_price, known_qty)
                # After a rescale or a new generation: other tables.
                prices = _PRICES.new[self._price_decimals]
                quantities = _QTYS.new[self._qty_decimals]
                if parsed is None:
                    self.invalid_levels += 1
                    continue
                known_price, known_qty = parsed
            tick, price = known_price
            units, qty = known_qty
            old = book_levels.get(tick)
            if units:
                if old is None:
                    book_levels[tick] = (units, price, qty)
                    ticks.add(tick)
                    best = side.best
                    # Unknown (None) after the best left: looked up when asked.
                    if (best is not None or len(book_levels) == 1) and (
                        best is None or (tick > best if side.is_bid else tick < best)
                    ):
                        side.best = tick
                    self._step = gcd(self._step, tick)
                    change = units
                else:
                    # A known price keeps the text it was first seen with.
                    book_levels[tick] = (units, old[1], qty)
                    change = units - old[0]
            elif old is not None:
                del book_levels[tick]
                ticks.remove(tick)
                if tick == side.best:
                    side.best = None
                change = -old[0]
            else:
                continue
            top_edge = side.top_edge
            if top_edge is not None and (
                tick >= top_edge if side.is_bid else tick <= top_edge
            ):
                if old is not None and units:  # resized in place: the same levels
                    depth, summed = side.top_units
                    side.top_units = (depth, summed + change)
                else:  # one came or went: the farthest of them is another
                    side.top_edge = None
            if keeping and change:
                side.add(tick, change, len(self._bands))

    def _parse(
        self,
        price_text: object,
        qty_text: object,
        known_price: tuple[int, Decimal] | None,
        known_qty: tuple[int, Decimal] | None,
    ) -> tuple[tuple[int, Decimal], tuple[int, Decimal]] | None:
        """``(tick, price), (units, qty)`` of a level, or ``None`` if it is not one.

        Only a text the newer tables lack is looked up in the older or parsed
        (sizes vary more than prices). Both are checked before either may change
        the book's units: an invalid level changes nothing.
        """
        price_read = qty_read = None
        if known_price is None:
            known_price = _PRICES.older(self._price_decimals, price_text)
            if known_price is None:
                price_read = _read(price_text)
                if price_read is None or price_read[0] <= 0:
                    return None  # not a decimal, out of range, or not positive
        if known_qty is None:
            known_qty = _QTYS.older(self._qty_decimals, qty_text)
            if known_qty is None:
                qty_read = _read(qty_text)
                if qty_read is None or qty_read[0] < 0:
                    return None
        price_decimals, qty_decimals = self._price_decimals, self._qty_decimals
        if price_read is not None and self._price_scale % price_read[1]:
            price_decimals = _decimals_of(price_read[1])
        if qty_read is not None and self._qty_scale % qty_read[1]:
            qty_decimals = _decimals_of(qty_read[1])
        if price_decimals != self._price_decimals or qty_decimals != self._qty_decimals:
            # A text with more decimals than its unit: only that unit changes,
            # so a value found in the tables (of the other unit) stays right.
            self._rescale(price_decimals, qty_decimals)
        if price_read is not None:
            numerator, denominator, price = price_read
            known_price = (numerator * (self._price_scale // denominator), price)
            _PRICES.remember(self._price_decimals, price_text, known_price)
        if qty_read is not None:
            numerator, denominator, qty = qty_read
            known_qty = (numerator * (self._qty_scale // denominator), qty)
            _QTYS.remember(self._qty_decimals, qty_text, known_qty)
        assert known_price is not None
        assert known_qty is not None
        return known_price, known_qty

    def _rescale(self, price_decimals: int, qty_decimals: int) -> None:
        """Units of more decimals: every tick and quantity multiplied (rare)."""
        price_decimals = max(price_decimals, self._price_decimals)
        qty_decimals = max(qty_decimals, self._qty_decimals)
        price_factor = 10 ** (price_decimals - self._price_decimals)
        qty_factor = 10 ** (qty_decimals - self._qty_decimals)
        for side in (self._bids, self._asks):
            # In place: a side being applied holds these containers.
            levels = {
                tick * price_factor: (units * qty_factor, price, qty)
                for tick, (units, price, qty) in side.levels.items()
            }
            side.levels.clear()
            side.levels.update(levels)
            side.ticks.clear()
            side.ticks.update(levels)
            side.best = side.top_edge = None
            side.sums_out = None
        self._step *= price_factor
        self._price_decimals, self._qty_decimals = price_decimals, qty_decimals
        self._price_scale, self._qty_scale = 10**price_decimals, 10**qty_decimals
        self._qty_unit = Decimal(1).scaleb(-qty_decimals)
        self._quote_unit = Decimal(1).scaleb(-price_decimals - qty_decimals)
        self._mid2 = None  # the band sums are re-summed at the next read

    def _trim(self, max_levels: int) -> None:
        # Far from the touch: the lowest bids and the highest asks.
        # (The best prices are at the other end, so they stay valid.)
        keeping = self._mid2 is not None
        for side, far in ((self._bids, 0), (self._asks, -1)):
            while len(side.levels) > max_levels:
                tick = side.ticks.pop(far)
                units = side.levels.pop(tick)[0]
                self.trimmed_levels += 1
                side.top_edge = None
                if keeping:
                    side.add(tick, -units, len(self._bands))

    def _levels(self, side: _Side) -> Iterator[Level]:
        levels = side.levels
        for tick in side.ticks:
            _, price, qty = levels[tick]
            yield price, qty

    def _best_ticks(self, side: _Side, depth: int) -> list[int]:
        """The best ``depth`` ticks of a side, best first."""
        if depth <= 0 or not side.levels:
            return []
        levels, step = side.levels, self._step or 1
        tick = side.best_tick()
        assert tick is not None
        found: list[int] = []
        wanted = min(depth, len(levels))
        # Dense books: step tick by tick from the touch; sparse ones: the sorted list.
        direction = -step if side.is_bid else step
        for _ in range(4 * depth + 8):
            if tick in levels:
                found.append(tick)
                if len(found) == wanted:
                    return found
            tick += direction
        ticks = side.ticks
        return list(reversed(ticks[-wanted:])) if side.is_bid else list(ticks[:wanted])

    def _top(self, side: _Side, depth: int) -> list[Level]:
        levels = side.levels
        return [levels[tick][1:] for tick in self._best_ticks(side, depth)]

    def _resum_top(self, side: _Side, depth: int) -> None:
        units, side.top_edge = self._sum_top(side, depth)
        side.top_units = (depth, units)

    def _sum_top(self, side: _Side, depth: int) -> tuple[int, float]:
        """The best ``depth`` levels' units, and the tick of the farthest of them.

        With fewer levels than ``depth``, the edge is one every change is inside.
        """
        best = self._best_ticks(side, depth)
        levels = side.levels
        units = sum(levels[tick][0] for tick in best)
        if depth > 0 and len(best) == depth:
            return units, best[-1]
        return units, -1.0 if side.is_bid else float("inf")

    # Private helpers: bands.

    def _move_edges(self, mid2: int) -> None:
        """Band edges for the doubled mid ``mid2``: walked there, or summed afresh."""
        if mid2 == self._mid2:
            return
        # price >= mid * (1 - bps/10000), in ticks: tick * 20000 >= mid2 * (10000 -
        # bps); asks mirrored. Integers: the edges are exact, as the Decimal ones were.
        fresh = self._mid2 is None
        self._mid2 = mid2
        step = self._step or 1
        for side in (self._bids, self._asks):
            most = min(_WALK, len(side.levels) + 8) * step
            if side.is_bid:
                edges = [-((-mid2 * (10_000 - bps)) // 20_000) for bps in self._bands]
            else:
                edges = [(mid2 * (10_000 + bps)) // 20_000 for bps in self._bands]
            if fresh:
                sums = side.sums_within(edges)
                side.base = [base for base, _ in sums]
                side.quote = [quote for _, quote in sums]
                side.edges = edges
                side.sums_out = None
                continue
            levels, is_bid = side.levels, side.is_bid
            base, quote = side.base, side.quote
            for band, (old, new) in enumerate(zip(side.edges, edges, strict=True)):
                if old == new:
                    continue
                if abs(new - old) > most:
                    ((base[band], quote[band]),) = side.sums_within([new])
                    side.sums_out = None
                    continue
                # Bids take in [new, old) or leave [old, new); asks take in (old, new]
                # or leave (new, old]. Only multiples of the stride hold levels.
                low, high = (old, new) if old < new else (new, old)
                if not is_bid:
                    low += 1
                    high += 1
                moved_base = moved_quote = 0
                for tick in range(low + (-low) % step, high, step):
                    entry = levels.get(tick)
                    if entry is not None:
                        moved_base += entry[0]
                        moved_quote += entry[0] * tick
                if moved_base:
                    if (new > old) is is_bid:  # the band shrank
                        moved_base, moved_quote = -moved_base, -moved_quote
                    base[band] += moved_base
                    quote[band] += moved_quote
                    side.sums_out = None
            side.edges = edges


class _Tables(dict[int, dict[str, tuple[int, Decimal]]]):
    """Per unit (decimals): text -> (integer, decimal), made when first asked."""

    def __missing__(self, decimals: int) -> dict[str, tuple[int, Decimal]]:
        texts: dict[str, tuple[int, Decimal]] = {}
        self[decimals] = texts
        return texts


class _Parsed:
    """Texts already parsed, per unit: ``new[decimals][text]`` -> (integer, decimal).

    Books see the same few prices and sizes again and again; a dict lookup of the
    text replaces parsing, checking and scaling it (only valid values are kept).
    Shared by every book of the process, whatever its market: the integer depends
    only on the text and the unit.

    Bounded in two generations of ``_TEXTS_KEPT`` texts (all units together, some
    350 kB each): when the newer is full it becomes the older and the older is
    forgotten, and a text found in the older moves back into the newer. The texts
    that recur (prices near the touch, round sizes) stay; clearing every text at
    the bound made most lookups miss for a while after each clear: of the level
    texts of ``make bench``'s 8-market recording, 60 % were parsed, now 28 %.
    """

    __slots__ = ("count", "new", "old")

    def __init__(self) -> None:
        self.new = _Tables()  # looked up first (by the books, inline)
        self.old = _Tables()
        self.count = 0  # texts in ``new``

    def older(self, decimals: int, text: object) -> tuple[int, Decimal] | None:
        """A text's value from the older generation (moved into the newer)."""
        if type(text) is not str:
            return None  # not a text (a hostile level): parsed, never remembered
        texts = self.old.get(decimals)
        value = None if texts is None else texts.get(text)
        if value is not None:
            self.remember(decimals, text, value)
        return value

    def remember(self, decimals: int, text: object, value: tuple[int, Decimal]) -> None:
        if type(text) is not str:
            return
        texts = self.new[decimals]
        if text in texts:
            return
        if self.count >= _TEXTS_KEPT:
            self.old, self.new = self.new, _Tables()  # (books look theirs up again)
            self.count = 0
            texts = self.new[decimals]
        texts[text] = value
        self.count += 1

    def size(self) -> int:
        """Texts kept, both generations (at most ``2 * _TEXTS_KEPT``)."""
        return sum(map(len, self.new.values())) + sum(map(len, self.old.values()))


_TEXTS_KEPT = 1024  # per generation and table, ~350 bytes a text (int, decimal, slot)
_PRICES = _Parsed()
_QTYS = _Parsed()


_PICKLE_FORMAT = 1  # of __reduce__'s arguments; another one is refused when loaded
_Packed = tuple[list[int], list[int], str, str]


def _packed(side: _Side) -> _Packed:
    levels = side.levels
    ticks = list(side.ticks)
    entries = [levels[tick] for tick in ticks]
    return (
        ticks,
        [units for units, _, _ in entries],
        " ".join([str(price) for _, price, _ in entries]),  # str: the text as printed
        " ".join([str(qty) for _, _, qty in entries]),
    )


def _unpacked(side: _Side, packed: _Packed) -> None:
    ticks, units, prices, qtys = packed
    if not ticks:
        return
    entries = zip(
        units,
        map(Decimal, prices.split(" ")),
        map(Decimal, qtys.split(" ")),
        strict=True,
    )
    side.levels.update(zip(ticks, entries, strict=True))
    side.ticks.update(ticks)


def _restore_book(
    form: int,
    max_levels: int | None,
    bands: tuple[int, ...],
    update_id: int,
    invalid_levels: int,
    trimmed_levels: int,
    price_decimals: int,
    qty_decimals: int,
    step: int,
    bids: _Packed,
    asks: _Packed,
) -> L2Book:
    """The book ``L2Book.__reduce__`` pickled."""
    if form != _PICKLE_FORMAT:
        msg = f"a book pickled in format {form}; this version reads {_PICKLE_FORMAT}"
        raise ValueError(msg)
    book = L2Book(max_levels, bands)
    book.update_id = update_id
    book.invalid_levels = invalid_levels
    book.trimmed_levels = trimmed_levels
    book._rescale(price_decimals, qty_decimals)  # the units (of an empty book)
    book._step = step
    _unpacked(book._bids, bids)
    _unpacked(book._asks, asks)
    return book


def _read(text: object) -> tuple[int, int, Decimal] | None:
    """``(numerator, denominator, value)`` of a decimal text, or ``None``.

    ``None`` unless finite, with an exponent inside the range policy (1e40 or 1e-40
    away from 1) and at most 40 decimals; the sign is the caller's to check (the
    numerator's). Plain digits (what the exchange prints) are read straight.
    """
    plain = _plain(text)
    if plain is not None:
        digits, decimals = plain
        return digits, _POWERS[decimals], Decimal(text)  # type: ignore[arg-type]
    try:
        value = Decimal(text)  # type: ignore[arg-type]  # anything: Decimal says no
    except (InvalidOperation, TypeError, ValueError):
        return None
    if not value.is_finite() or not -_EXP < value.adjusted() < _EXP:
        return None
    numerator, denominator = value.as_integer_ratio()
    if denominator > _MAX_DENOMINATOR:
        return None
    return numerator, denominator, value


def _plain(text: object) -> tuple[int, int] | None:
    """``(digits, decimals)`` of a text like ``"86649.90"``, or ``None``.

    ``(866499, 1)`` there: trailing zeros add no decimal, as for
    ``Decimal.as_integer_ratio``.
    """
    if type(text) is not str:
        return None
    head, _, tail = text.partition(".")
    tail = tail.rstrip("0")
    digits = head + tail
    if (
        not head
        or len(head) > _PLAIN_DIGITS
        or len(tail) > _PLAIN_DIGITS
        or not digits.isdigit()  # no sign, exponent, space, second point, "_"
        or not digits.isascii()  # and no other script's digits
    ):
        return None
    return int(digits), len(tail)


def _decimals_of(denominator: int) -> int:
    """Fewest decimals whose unit divides into ``denominator`` (a 2^a 5^b)."""
    decimals = 0
    while 10**decimals % denominator:
        decimals += 1
    return decimals


def _decimals(
    base: list[int], quote: list[int], qty_unit: Decimal, quote_unit: Decimal
) -> _Sums:
    """``base * qty_unit`` and ``quote * quote_unit`` per band, exactly (0 as 0).

    ``unit * units`` (a ``Decimal`` times an int) makes one object where
    ``Decimal(units) * unit`` made two: half the instructions, the same value and
    exponent. Read after every update when stats are: a comprehension, not ``map``
    over ``unit.__mul__`` (a method wrapper costs more per call than the ``*`` it
    wraps: 830 fewer instructions per frame of ``book-1`` with stats after every
    update, ``bench/instructions.py``).
    """
    # Nested bands and positive levels: the widest band's quote sum is the largest
    # of them all, and a quote sum (ticks x units, ticks >= 1) is at least its base.
    if quote and quote[-1] < _EXACT:
        bases = [qty_unit * units for units in base]
        quotes = [quote_unit * units for units in quote]
        if not base[0]:  # empty bands (the narrowest ones) print as 0, not 0E-8
            for band, units in enumerate(base):
                if units:
                    break
                bases[band] = quotes[band] = _ZERO
        return bases, quotes
    return (
        [_scaled(units, qty_unit) for units in base],
        [_scaled(quote_units, quote_unit) for quote_units in quote],
    )


def _scaled(units: int, unit: Decimal) -> Decimal:
    """``units * unit`` exactly, however many digits (0 as ``Decimal(0)``)."""
    return Decimal(units).scaleb(unit.adjusted(), _WIDE) if units else _ZERO
