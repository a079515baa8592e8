"""Typed records for every Backpack frame and REST answer, named as on the wire.

One frozen ``msgspec.Struct`` per event schema of ``backpack-asyncapi.yml`` and per
REST response of the OpenAPI files. Field letters are the spec's (``E``, ``T``,
``u``...), each with its unit. Prices and quantities stay decimal *strings*: exact,
and converted to ``Decimal`` only where arithmetic happens. Integers accept a JSON
number or a numeric string because the wire has sent both (WIRE-NOTES.md); the
decoders in ``decode.py`` are built with ``strict=False`` for that reason.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Generic, TypeVar

import msgspec

__all__ = [
    "BookTicker",
    "Depth",
    "DepthSnapshot",
    "Event",
    "Frame",
    "Kline",
    "KlineRow",
    "Level",
    "Liquidation",
    "MarkPrice",
    "MarkPriceRow",
    "Market",
    "OpenInterest",
    "OpenInterestRow",
    "OrderEventType",
    "OrderUpdate",
    "PositionEventType",
    "PositionUpdate",
    "PriceFilter",
    "PublicEvent",
    "QuantityFilter",
    "RfqEventType",
    "RfqUpdate",
    "ServerError",
    "ServerErrorBody",
    "Side",
    "Ticker",
    "TickerRow",
    "Trade",
    "TradeRow",
]

Level = tuple[str, str]
"""One book level on the wire: ``(price, quantity)`` as decimal strings."""


class Side(enum.StrEnum):
    """Order or liquidation side as the wire spells it."""

    BID = "Bid"
    ASK = "Ask"


# Public events: a tagged union on ``e``.


class Event(msgspec.Struct, frozen=True, tag_field="e"):
    """Base of the eight public events; ``e`` is the tag.

    Fields are declared in the order the exchange sends them (its keys sorted, upper
    case first): msgspec matches keys fastest in declaration order (frames decode
    ~25 % slower with the fields in the documentation's order). Build events by
    keyword.
    """


class BookTicker(Event, frozen=True, kw_only=True, tag="bookTicker"):
    """``bookTicker.<symbol>``; see BookTickerEvent. Sides are ``None`` when empty."""

    A: str | None  # best ask quantity
    B: str | None  # best bid quantity
    E: int  # event time, microseconds
    T: int  # engine time, microseconds
    a: str | None  # best ask price
    b: str | None  # best bid price
    s: str  # symbol
    u: int  # update id; equals the depth stream's u at the same instant


class Depth(Event, frozen=True, kw_only=True, tag="depth"):
    """``depth[.<window>].<symbol>``; see DepthEvent. Quantities are absolute."""

    E: int  # event time, microseconds
    T: int  # engine time of the last engine event, microseconds
    U: int  # first update id in this event
    a: list[Level]  # ask levels changed; quantity 0 removes the level
    b: list[Level]  # bid levels changed
    s: str  # symbol
    u: int  # last update id in this event


class Kline(Event, frozen=True, kw_only=True, tag="kline"):
    """``kline.<interval>.<symbol>``; see KlineEvent. ``t``/``T`` are ISO 8601 (UTC)."""

    E: int  # event time, microseconds
    T: str | int  # close time (= start + interval), same format as t
    X: bool  # true on the final message of a closed candle
    c: str  # close (last) price
    h: str  # high price
    l: str  # low price  # noqa: E741 (wire field name)
    n: int  # number of trades
    o: str  # open price
    s: str  # symbol
    t: str | int  # start time: naive ISO 8601 UTC on the wire; seconds in old docs
    v: str  # base volume


class Liquidation(Event, frozen=True, kw_only=True, tag="liquidation"):
    """``liquidation`` (and ``liquidation.<symbol>``); see LiquidationEvent."""

    E: int  # event time, microseconds
    S: Side  # side
    T: int  # engine time, microseconds
    p: str  # price
    q: str  # quantity
    s: str  # symbol


class MarkPrice(Event, frozen=True, kw_only=True, omit_defaults=True, tag="markPrice"):
    """``markPrice.<symbol>``; see MarkPriceEvent. No f/i/n on prediction markets."""

    E: int  # event time, microseconds
    T: int  # engine time, microseconds
    f: str | None = None  # estimated funding rate, fraction per funding interval
    i: str | None = None  # index price
    n: int | None = None  # next funding time, MILLISECONDS
    p: str  # mark price
    s: str  # symbol


class OpenInterest(
    Event, frozen=True, kw_only=True, omit_defaults=True, tag="openInterest"
):
    """``openInterest.<symbol>``, every 60 s; see OpenInterestEvent."""

    E: int  # event time, microseconds
    T: int | None = None  # engine time, microseconds; not documented, accepted if sent
    o: str  # open interest in contracts (1 contract = 1 base unit)
    s: str  # symbol


class Ticker(Event, frozen=True, kw_only=True, tag="ticker"):
    """``ticker.<symbol>``, 24 h rolling statistics once per second; see TickerEvent."""

    E: int  # event time, microseconds
    V: str  # quote volume
    c: str  # last price
    h: str  # high price
    l: str  # low price  # noqa: E741 (wire field name)
    n: int  # number of trades
    o: str  # first price of the 24 h window
    s: str  # symbol
    v: str  # base volume


class Trade(Event, frozen=True, kw_only=True, tag="trade"):
    """``trade.<symbol>``; see TradeEvent. ``t`` is sequential per symbol."""

    E: int  # event time, microseconds
    T: int  # engine time, microseconds
    a: str  # seller order id
    b: str  # buyer order id
    m: bool  # true if the buyer is the maker (taker sold)
    p: str  # price
    q: str  # quantity, base
    s: str  # symbol
    t: int  # trade id, sequential per symbol


PublicEvent = (
    BookTicker | Depth | Kline | Liquidation | MarkPrice | OpenInterest | Ticker | Trade
)

# Private events: decoded by stream name, since ``e`` is not a single constant.


class OrderEventType(enum.StrEnum):
    """``e`` values of ``account.orderUpdate``."""

    ACCEPTED = "orderAccepted"
    CANCELLED = "orderCancelled"
    EXPIRED = "orderExpired"
    FILL = "orderFill"
    MODIFIED = "orderModified"
    TRIGGER_PLACED = "triggerPlaced"
    TRIGGER_FAILED = "triggerFailed"


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``account.orderUpdate[.<symbol>]``; see OrderUpdateEvent.

    Fields the docs mark "always" are required; conditional ones default to ``None``.
    """

    e: OrderEventType
    E: int  # event time, microseconds
    s: str  # symbol
    S: Side  # side
    o: str  # order type, LIMIT or MARKET
    f: str  # time in force, GTC/IOC/FOK
    X: str  # order status: New, PartiallyFilled, Filled, Cancelled, Expired, Trigger*
    i: str  # order id
    z: str  # cumulative executed quantity
    Z: str  # cumulative executed quote quantity
    T: int  # engine time, microseconds
    c: int | None = None  # client order id, if set
    q: str | None = None  # quantity
    Q: str | None = None  # quantity in quote (reverse market orders)
    p: str | None = None  # limit price
    P: str | None = None  # trigger price
    B: str | None = None  # trigger by: LastPrice, MarkPrice, IndexPrice
    a: str | None = None  # take-profit trigger price
    b: str | None = None  # stop-loss trigger price
    j: str | None = None  # take-profit limit price
    k: str | None = None  # stop-loss limit price
    d: str | None = None  # take-profit trigger by
    g: str | None = None  # stop-loss trigger by
    Y: str | None = None  # trigger quantity
    R: str | None = None  # expiry reason, orderExpired only
    t: int | None = None  # trade id, orderFill only (null elsewhere on the wire)
    l: str | None = None  # fill quantity  # noqa: E741 (wire field name)
    L: str | None = None  # fill price
    m: bool | None = None  # this order was the maker
    n: str | None = None  # fee
    N: str | None = None  # fee asset
    V: str | None = None  # self-trade prevention mode
    O: str | None = None  # origin: USER, LIQUIDATION_AUTOCLOSE, ADL_AUTOCLOSE...  # noqa: E741
    I: int | str | None = None  # related order id  # noqa: E741 (wire field name)
    H: int | None = None  # strategy id
    y: bool | None = None  # post-only
    r: bool | None = None  # reduce-only (wire only)


class PositionEventType(enum.StrEnum):
    """``e`` values of ``account.positionUpdate``; the subscribe snapshot has none."""

    ADJUSTED = "positionAdjusted"
    OPENED = "positionOpened"
    CLOSED = "positionClosed"


class PositionUpdate(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``account.positionUpdate[.<symbol>]``; see PositionUpdateEvent.

    ``e is None`` marks a row of the snapshot sent on subscribe. Numeric fields are
    numbers in the spec and strings on the wire, so both decode to ``Decimal``.
    """

    E: int  # event time, microseconds
    s: str  # symbol
    b: Decimal  # break-even price
    B: Decimal  # entry price
    f: Decimal  # initial margin fraction
    M: Decimal  # mark price
    m: Decimal  # maintenance margin fraction
    q: Decimal  # net quantity, + long / - short
    Q: Decimal  # net exposure quantity incl. open orders
    n: Decimal  # net exposure notional
    i: int  # position id (string in the spec, integer on the wire)
    p: str  # realised PnL
    P: str  # unrealised PnL
    T: int  # engine time, microseconds
    e: PositionEventType | None = None
    l: str | None = None  # deprecated liquidation price placeholder  # noqa: E741


class RfqEventType(enum.StrEnum):
    """``e`` values of ``account.rfqUpdate``."""

    ACTIVE = "rfqActive"
    ACCEPTED = "rfqAccepted"
    REFRESHED = "rfqRefreshed"
    CANCELLED = "rfqCancelled"
    CANDIDATE = "rfqCandidate"
    ACCEPTED_BINDING = "rfqAcceptedBinding"
    FILLED = "rfqFilled"
    QUOTE_ACCEPTED = "quoteAccepted"
    QUOTE_CANCELLED = "quoteCancelled"


class RfqUpdate(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``account.rfqUpdate[.<symbol>]``; see RfqUpdateEvent. Ids may exceed 2**53."""

    e: RfqEventType
    E: int  # event time, microseconds
    R: int  # RFQ id
    s: str  # symbol
    S: Side  # RFQ side
    T: int  # engine time, microseconds
    u: int | None = None  # quote id
    C: str | int | None = None  # client RFQ id or client quote id
    q: str | None = None  # quantity, base
    Q: str | None = None  # quantity, quote
    p: str | None = None  # price of the quote or fill
    w: int | None = None  # quote submission deadline, MILLISECONDS
    W: int | None = None  # RFQ expiry, MILLISECONDS
    X: str | None = None  # status: New, Cancelled, Filled, Expired
    o: str | None = None  # system order type on system-initiated RFQs


# Envelopes.

D = TypeVar("D")


class Frame(msgspec.Struct, Generic[D], frozen=True):
    """One data frame: ``{"stream": ..., "data": ...}`` plus our receive time.

    ``recv_us`` is 0 as decoded from the wire; the connector stamps the local receive
    time (microseconds since the epoch). Recordings carry it in the same object.
    """

    stream: str
    data: D
    recv_us: int = 0


class ServerErrorBody(msgspec.Struct, frozen=True):
    """The ``error`` object of an error frame."""

    code: int  # 4002 parse error, 4006 invalid stream, 4008 invalid depth window...
    message: str


class ServerError(msgspec.Struct, frozen=True):
    """An error frame: ``{"id": null, "error": {...}}``; never tied to a request."""

    error: ServerErrorBody
    id: int | None = None
    recv_us: int = 0


# REST responses.


class DepthSnapshot(msgspec.Struct, frozen=True):
    """``GET /api/v1/depth``. Both sides ascending by price: the best bid is LAST."""

    asks: list[Level]
    bids: list[Level]
    lastUpdateId: int  # a string on the wire; same id space as depth U/u
    timestamp: int  # microseconds (the example file shows ms; never used for sync)


class PriceFilter(msgspec.Struct, frozen=True, omit_defaults=True):
    """``filters.price`` of a market."""

    tickSize: str
    minPrice: str | None = None
    maxPrice: str | None = None


class QuantityFilter(msgspec.Struct, frozen=True, omit_defaults=True):
    """``filters.quantity`` of a market."""

    stepSize: str
    minQuantity: str | None = None
    maxQuantity: str | None = None


class MarketFilters(msgspec.Struct, frozen=True):
    """``filters`` of a market."""

    price: PriceFilter
    quantity: QuantityFilter


class Market(msgspec.Struct, frozen=True, omit_defaults=True):
    """One row of ``GET /api/v1/markets``."""

    symbol: str
    baseSymbol: str
    quoteSymbol: str
    marketType: str  # SPOT, PERP, IPERP, DATED, PREDICTION, RFQ
    filters: MarketFilters
    orderBookState: str  # Open, Closed, CancelOnly, LimitOnly, PostOnly
    fundingInterval: int | str | None = None  # milliseconds (the example shows "8h")
    visible: bool | None = None
    createdAt: str | None = None


class KlineRow(msgspec.Struct, frozen=True):
    """``GET /api/v1/klines``; times are naive UTC ``YYYY-MM-DD HH:MM:SS``."""

    start: str
    end: str
    volume: str
    quoteVolume: str
    trades: int  # a string on the wire
    open: str | None = None
    high: str | None = None
    low: str | None = None
    close: str | None = None


class TradeRow(msgspec.Struct, frozen=True):
    """One row of ``GET /api/v1/trades``; ``timestamp`` is MILLISECONDS."""

    price: str
    quantity: str
    quoteQuantity: str
    timestamp: int  # milliseconds
    isBuyerMaker: bool
    id: int | None = None  # same id as the WS trade t


class MarkPriceRow(msgspec.Struct, frozen=True):
    """A row of ``GET /api/v1/markPrices``; ``nextFundingTimestamp`` is in ms."""

    symbol: str
    markPrice: str
    fundingRate: str | None = None
    indexPrice: str | None = None
    nextFundingTimestamp: int | None = None  # milliseconds


class OpenInterestRow(msgspec.Struct, frozen=True):
    """One row of ``GET /api/v1/openInterest``; ``timestamp`` is milliseconds."""

    symbol: str
    timestamp: int  # milliseconds
    openInterest: str | None = None  # base units


class TickerRow(msgspec.Struct, frozen=True):
    """``GET /api/v1/ticker``: 24 h (or 1 w) statistics, all strings."""

    symbol: str
    firstPrice: str
    lastPrice: str
    priceChange: str
    priceChangePercent: str  # a fraction, e.g. "-0.031279"
    high: str
    low: str
    volume: str
    quoteVolume: str
    trades: int  # a string on the wire
