"""The simulated trading account behind the private ``account.*`` streams.

It places limit, market and trigger orders, fills them from the public tape (a resting
order fills when a public trade prints through its price, reusing that print's trade id;
a market order is a real engine order, so its prints are on the public tape), keeps
perp positions, and runs RFQs as requester and as maker. Its resting orders are *not*
in the public book: a documented approximation that keeps the public book exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from ..backpack.wire import (
    OrderEventType as OE,
    OrderUpdate,
    PositionEventType as PE,
    PositionUpdate,
    RfqEventType as RE,
    RfqUpdate,
    Side,
)
from .engine import Fill, MarketEngine

__all__ = ["MarketOrder", "SimAccount"]

_FEE_MAKER = Decimal("0.0002")
_FEE_TAKER = Decimal("0.0005")
_IMF = Decimal("0.02")
_MMF = Decimal("0.0125")
_RFQ_ID_BASE = 113_392_053_149_171_712  # above 2**53, as on the real wire
PrivateEvent = OrderUpdate | PositionUpdate | RfqUpdate


@dataclass(slots=True)
class _Order:
    order_id: str
    symbol: str
    side: Side
    kind: str  # LIMIT or MARKET
    lots: int
    price: int | None  # ticks; None for market orders
    trigger: int | None = None  # ticks, trigger orders only
    filled: int = 0
    quote: Decimal = Decimal(0)
    client_id: int | None = None
    origin: str = "USER"


@dataclass(slots=True)
class _Position:
    position_id: int
    lots: int = 0  # signed
    entry: Decimal = Decimal(0)
    realised: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class MarketOrder:
    """An account market order the exchange must run through the engine."""

    order_id: str
    symbol: str
    taker_buys: bool
    lots: int


@dataclass(slots=True)
class SimAccount:
    """Order, position and RFQ state of the one simulated account."""

    rng: random.Random
    engines: dict[str, MarketEngine]
    orders: dict[str, _Order] = field(default_factory=dict)
    positions: dict[str, _Position] = field(default_factory=dict)
    _next_id: int = 5_400_000_000
    _next_rfq: int = _RFQ_ID_BASE

    # Driving the account.

    def act(self, now_us: int) -> tuple[list[PrivateEvent], MarketOrder | None]:
        """One random account action; may return a market order for the engine."""
        roll = self.rng.random()
        symbol = self.rng.choice(sorted(self.engines))
        engine = self.engines[symbol]
        if roll < 0.45:
            return [self._place_limit(engine, now_us)], None
        if roll < 0.65 and self.orders:
            return self._cancel_or_expire(now_us), None
        if roll < 0.72 and self.positions:
            return self._close_position(now_us)
        if roll < 0.80:
            order = self._new_order(symbol, "MARKET", self.rng.randint(1, 5), None)
            accepted = self._update(OE.ACCEPTED, order, now_us, "New")
            return [accepted], MarketOrder(
                order.order_id, symbol, order.side is Side.BID, order.lots
            )
        if roll < 0.90:
            return self._trigger(engine, now_us), None
        return self._rfq(symbol, now_us), None

    def on_taker_fills(
        self, order: MarketOrder, fills: tuple[Fill, ...], now_us: int
    ) -> list[PrivateEvent]:
        """Report the engine's fills of an account market order."""
        placed = self.orders.pop(order.order_id)
        out: list[PrivateEvent] = []
        for fill in fills:
            out += self._fill(
                placed, fill.trade_id, fill.price, fill.lots, False, now_us
            )
        if placed.filled < placed.lots:
            out.append(
                self._update(OE.EXPIRED, placed, now_us, "Expired", R="NO_LIQUIDITY")
            )
        return out

    def on_public_fills(
        self, symbol: str, fills: tuple[Fill, ...], now_us: int
    ) -> list[PrivateEvent]:
        """Fill resting account orders that the public prints traded through."""
        out: list[PrivateEvent] = []
        for order in [o for o in self.orders.values() if o.symbol == symbol]:
            if order.price is None or order.trigger is not None:
                continue
            for fill in fills:
                through = (
                    fill.price <= order.price
                    if order.side is Side.BID
                    else fill.price >= order.price
                )
                # A print's taker side must be the opposite of our resting side.
                if through and fill.buyer_maker == (order.side is Side.BID):
                    lots = min(order.lots - order.filled, fill.lots)
                    out += self._fill(
                        order, fill.trade_id, order.price, lots, True, now_us
                    )
                    if order.filled >= order.lots:
                        del self.orders[order.order_id]
                        break
        return out

    def position_rows(self, symbol: str | None, now_us: int) -> list[PositionUpdate]:
        """Open positions as the snapshot sent on subscribe (``e`` omitted)."""
        return [
            self._position_event(None, s, p, now_us)
            for s, p in sorted(self.positions.items())
            if p.lots and (symbol is None or s == symbol)
        ]

    # Orders.

    def _new_order(
        self, symbol: str, kind: str, lots: int, price: int | None
    ) -> _Order:
        self._next_id += self.rng.randint(1, 50)
        side = Side.BID if self.rng.random() < 0.5 else Side.ASK
        client_id = self.rng.randint(1, 2**31) if self.rng.random() < 0.3 else None
        order = _Order(str(self._next_id), symbol, side, kind, lots, price, None, 0)
        order.client_id = client_id
        self.orders[order.order_id] = order
        return order

    def _close_position(self, now_us: int) -> tuple[list[PrivateEvent], MarketOrder]:
        symbol = self.rng.choice(sorted(self.positions))
        lots = self.positions[symbol].lots
        order = self._new_order(symbol, "MARKET", abs(lots), None)
        order.side = Side.ASK if lots > 0 else Side.BID
        # Some closes are the exchange's own (derived from the id: no extra draw, so
        # seeded sessions stay as they were).
        if int(order.order_id) % 5 == 0:
            order.origin = "LIQUIDATION_AUTOCLOSE"
        elif int(order.order_id) % 7 == 0:
            order.origin = "ADL_AUTOCLOSE"
        accepted = self._update(OE.ACCEPTED, order, now_us, "New", r=True)
        return [accepted], MarketOrder(order.order_id, symbol, lots < 0, abs(lots))

    def _place_limit(self, engine: MarketEngine, now_us: int) -> OrderUpdate:
        order = self._new_order(engine.spec.symbol, "LIMIT", self.rng.randint(1, 30), 0)
        touch = engine.best_bid() if order.side is Side.BID else engine.best_ask()
        offset = self.rng.randint(0, 4)
        mid = round(engine.mid())
        base = mid if touch is None else touch
        order.price = base - offset if order.side is Side.BID else base + offset
        return self._update(OE.ACCEPTED, order, now_us, "New")

    def _cancel_or_expire(self, now_us: int) -> list[PrivateEvent]:
        order = self.orders.pop(self.rng.choice(sorted(self.orders)))
        if order.trigger is not None:
            return [self._update(OE.TRIGGER_FAILED, order, now_us, "TriggerFailed")]
        roll = self.rng.random()
        if roll < 0.15:
            return [self._update(OE.EXPIRED, order, now_us, "Expired", R="PRICE_BAND")]
        if roll < 0.30 and order.lots - order.filled > 1:
            order.lots -= 1  # a reduce-only order shrunk to avoid flipping the position
            self.orders[order.order_id] = order
            return [self._update(OE.MODIFIED, order, now_us, "New", r=True)]
        return [self._update(OE.CANCELLED, order, now_us, "Cancelled")]

    def _trigger(self, engine: MarketEngine, now_us: int) -> list[PrivateEvent]:
        order = self._new_order(engine.spec.symbol, "LIMIT", self.rng.randint(1, 10), 0)
        mid = round(engine.mid())
        order.trigger = mid + (50 if order.side is Side.BID else -50)
        order.price = order.trigger
        return [self._update(OE.TRIGGER_PLACED, order, now_us, "TriggerPending")]

    def _fill(
        self,
        order: _Order,
        trade_id: int,
        price: int,
        lots: int,
        maker: bool,
        now_us: int,
    ) -> list[PrivateEvent]:
        engine = self.engines[order.symbol]
        price_dec = engine.prices.to_decimal(price)
        qty = engine.lots.to_decimal(lots)
        order.filled += lots
        order.quote += price_dec * qty
        fee = (price_dec * qty * (_FEE_MAKER if maker else _FEE_TAKER)).quantize(
            Decimal("0.000001")
        )
        status = "Filled" if order.filled >= order.lots else "PartiallyFilled"
        event = self._update(
            OE.FILL,
            order,
            now_us,
            status,
            t=trade_id,
            l=engine.lots.format(lots),
            L=engine.prices.format(price),
            m=maker,
            n=_fixed(fee),
            N=engine.spec.quote,
        )
        out: list[PrivateEvent] = [event]
        if engine.spec.is_perp:
            out.append(self._move_position(order, lots, price_dec, fee, now_us))
        return out

    def _update(
        self, kind: OE, order: _Order, now_us: int, status: str, **extra: object
    ) -> OrderUpdate:
        engine = self.engines[order.symbol]
        fields: dict[str, object] = {
            "e": kind,
            "E": now_us + 40,
            "s": order.symbol,
            "S": order.side,
            "o": order.kind,
            "f": "GTC" if order.kind == "LIMIT" else "IOC",
            "X": status,
            "i": order.order_id,
            "z": engine.lots.format(order.filled),
            "Z": str(order.quote),
            "T": now_us,
            "q": engine.lots.format(order.lots),
            "V": "RejectTaker",
            "O": order.origin,
            "c": order.client_id,
            "r": False,
        }
        if order.price is not None and order.kind == "LIMIT":
            fields["p"] = engine.prices.format(order.price)
        if order.trigger is not None:
            fields["P"] = engine.prices.format(order.trigger)
            fields["B"] = "LastPrice"
            fields["Y"] = engine.lots.format(order.lots)
        fields.update(extra)
        return OrderUpdate(**fields)  # type: ignore[arg-type]

    # Positions.

    def _move_position(
        self, order: _Order, lots: int, price: Decimal, fee: Decimal, now_us: int
    ) -> PositionUpdate:
        position = self.positions.get(order.symbol)
        if position is None:
            position = _Position(self.rng.randint(5_000_000_000, 6_000_000_000))
            self.positions[order.symbol] = position
        engine = self.engines[order.symbol]
        signed = lots if order.side is Side.BID else -lots
        before = position.lots
        after = before + signed
        size = engine.lots.to_decimal(1)
        if before == 0 or (before > 0) == (signed > 0):
            total = abs(before) + lots
            position.entry = (position.entry * abs(before) + price * lots) / total
        else:
            closed = min(abs(before), lots)
            direction = 1 if before > 0 else -1
            position.realised += (price - position.entry) * closed * size * direction
            if abs(signed) > abs(before):
                position.entry = price
        position.fees += fee
        position.lots = after
        kind = PE.OPENED if before == 0 else PE.CLOSED if after == 0 else PE.ADJUSTED
        event = self._position_event(kind, order.symbol, position, now_us)
        if after == 0:
            del self.positions[order.symbol]
        return event

    def _position_event(
        self, kind: PE | None, symbol: str, position: _Position, now_us: int
    ) -> PositionUpdate:
        engine = self.engines[symbol]
        qty = engine.lots.to_decimal(position.lots)
        mark = engine.prices.to_decimal(round(engine.mid()))
        per_unit_fee = position.fees / abs(qty) if qty else Decimal(0)
        break_even = position.entry + (per_unit_fee if qty > 0 else -per_unit_fee)
        return PositionUpdate(
            e=kind,
            E=now_us + 40,
            s=symbol,
            b=break_even.quantize(Decimal("0.0001")),
            B=position.entry.quantize(Decimal("0.0001")),
            f=_IMF,
            M=mark,
            m=_MMF,
            q=qty,
            Q=qty,
            n=(qty * mark),
            i=position.position_id,
            p=_fixed(position.realised),
            P=_fixed((mark - position.entry) * qty),
            T=now_us,
            l="0",
        )

    # RFQs.

    def _rfq(self, symbol: str, now_us: int) -> list[PrivateEvent]:
        engine = self.engines[symbol]
        rfq_symbol = f"{engine.spec.base}_{engine.spec.quote}_RFQ"
        self._next_rfq += self.rng.randint(1, 1000)
        rfq_id, quote_id = self._next_rfq, self._next_rfq + 7
        side = Side.BID if self.rng.random() < 0.5 else Side.ASK
        qty = engine.lots.format(self.rng.randint(1, 50))
        price = engine.prices.format(round(engine.mid()))
        now_ms = now_us // 1000
        common = {"R": rfq_id, "s": rfq_symbol, "S": side, "q": qty, "T": now_us}
        windows = {"w": now_ms + 60_000, "W": now_ms + 120_000}
        filled = self.rng.random() < 0.6

        def ev(kind: RE, dt_us: int, **extra: object) -> RfqUpdate:
            fields = {**common, "e": kind, "E": now_us + dt_us, "T": now_us + dt_us}
            fields.update(extra)
            return RfqUpdate(**fields)  # type: ignore[arg-type]

        if self.rng.random() < 0.5:  # we ask for quotes
            return [
                ev(RE.ACCEPTED, 10, X="New", C="9001", **windows),
                ev(RE.CANDIDATE, 20, u=quote_id, p=price, X="New"),
                ev(RE.FILLED, 30, u=quote_id, p=price, X="Filled")
                if filled
                else ev(RE.CANCELLED, 30, X="Cancelled"),
            ]
        return [  # we quote someone else's RFQ
            ev(RE.ACTIVE, 10, X="New", **windows),
            ev(RE.QUOTE_ACCEPTED, 20, u=quote_id, p=price, X="New", C="7"),
            ev(RE.FILLED, 30, u=quote_id, p=price, X="Filled")
            if filled
            else ev(RE.QUOTE_CANCELLED, 30, u=quote_id, X="Cancelled"),
        ]


def _fixed(value: Decimal) -> str:
    """Six decimal places, plain notation, and never ``-0.000000``."""
    return f"{value.quantize(Decimal('0.000001')) + 0:f}"
