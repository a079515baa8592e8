"""Hostile input never escapes as an unexpected exception: rejected or counted."""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import given, settings, strategies as st

from bpx_flows.connectors.backpack.booksync import BookSnapshot, Resync, ResyncReason
from bpx_flows.connectors.backpack.streams import parse_stream
from bpx_flows.connectors.backpack.wire import BookTicker, Depth, DepthSnapshot, Frame
from bpx_flows.connectors.errors import ConfigError, RestError
from bpx_flows.connectors.rest import RestClient
from bpx_flows.operators.book_state import BookConfig, step

names = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda prefix, rest: prefix + rest,
        st.sampled_from(
            [
                "depth.",
                "kline.",
                "trade.",
                "account.orderUpdate",
                "depth.200ms.",
                "liquidation",
            ]
        ),
        st.text(alphabet="ABCXYZ_.01ms9k ", max_size=20),
    ),
)


@settings(max_examples=500, deadline=None)
@given(names)
def test_stream_names_parse_or_raise_config_error(name: str) -> None:
    try:
        parsed = parse_stream(name)
    except ConfigError:
        return
    assert str(parsed) == name


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_rest_snapshot_answers_decode_or_raise_rest_error(body: bytes) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, content=body))
    client = RestClient("http://bpx.test", attempts=1, transport=transport)
    try:
        snapshot, _ = asyncio.run(client.depth("SOL_USDC"))
    except RestError:
        return
    assert isinstance(snapshot, DepthSnapshot)


level_text = st.one_of(
    st.sampled_from(
        ["1", "0", "0.000", "-1", "NaN", "inf", "1e9999", "", "abc", "10.5", "1e-30"]
    ),
    st.text(max_size=8),
)
levels = st.lists(st.tuples(level_text, level_text), max_size=4)


@st.composite
def book_records(draw: st.DrawFn) -> list[object]:
    out: list[object] = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["snap", "diff", "resync", "ticker"]))
        uid = draw(st.integers(0, 50))
        if kind == "snap":
            out.append(BookSnapshot("depth.X", "X", uid, draw(levels), draw(levels), 1))
        elif kind == "diff":
            first = draw(st.integers(0, 50))
            data = Depth(
                E=1,
                s="X",
                a=draw(levels),
                b=draw(levels),
                U=first,
                u=uid,
                T=draw(st.integers(0, 10**6)),
            )
            out.append(Frame("depth.X", data, recv_us=2))
        elif kind == "resync":
            out.append(Resync("depth.X", "X", ResyncReason.GAP, uid, uid + 2, 3))
        else:
            price = draw(st.one_of(st.none(), level_text))
            data = BookTicker(
                E=1, s="X", a=price, A=price, b=price, B=price, u=uid, T=1
            )
            out.append(Frame("bookTicker.X", data, recv_us=2))
    return out


@settings(max_examples=300, deadline=None)
@given(book_records(), st.booleans())
def test_book_operator_never_raises_on_hostile_records(
    records: list[object], checksum: bool
) -> None:
    state = None
    config = BookConfig(checksum=checksum, max_levels=3)
    for record in records:
        state, _ = step(state, record, config)


hostile = st.one_of(
    st.sampled_from(["1", "0", "-3", "NaN", "inf", "", "x", "1e99999", "12.5"]),
    st.text(max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 30), st.integers(0, 10**8), hostile, hostile, st.booleans()
        ),
        max_size=30,
    )
)
def test_candle_operators_never_raise(
    trades: list[tuple[int, int, str, str, bool]],
) -> None:
    from bpx_flows.connectors.backpack.streams import KlineInterval
    from bpx_flows.connectors.backpack.wire import Kline, Trade
    from bpx_flows.operators.candles import (
        check_ids,
        check_klines,
        finish,
        fold,
        new_acc,
        roll_up,
    )

    state = None
    acc = new_acc()
    kept = []
    for t, at, p, q, m in trades:
        trade = Trade(E=at, s="X", p=p, q=q, b="1", a="2", t=t, T=at, m=m)
        state, out = check_ids(state, trade)
        kept += [o for o in out if isinstance(o, Trade)]
    for trade in kept:
        acc = fold(acc, trade)
    if acc.trades:
        candle = finish(acc, KlineInterval.S1)
        roll_up(None, candle, (KlineInterval.S1, KlineInterval.M1))
        kline = Kline(
            E=1, s="X", t=1, T=2, o="x", c="1", h="1", l="1", v="1", n=1, X=True
        )
        check_klines(check_klines(None, candle)[0], (KlineInterval.S1, kline))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**9), hostile, hostile, st.booleans()), max_size=30
    )
)
def test_derivative_and_burst_operators_never_raise(
    events: list[tuple[int, str, str, bool]],
) -> None:
    from decimal import Decimal

    from bpx_flows.connectors.backpack.wire import (
        Liquidation,
        MarkPrice,
        OpenInterest,
        Side,
    )
    from bpx_flows.operators import bursts, derivatives

    joined = bursting = None
    config = bursts.BurstConfig(min_notional=Decimal(1), min_count=1)
    for at, a, b, flag in sorted(events):
        mark = MarkPrice(
            E=at, s="X", p=a, T=at, f=b if flag else None, i=a if flag else None, n=at
        )
        joined, _ = derivatives.step(joined, mark, derivatives.DerivativesConfig())
        joined, _ = derivatives.step(
            joined, OpenInterest(E=at, s="X", o=b), derivatives.DerivativesConfig()
        )
        side = Side.BID if flag else Side.ASK
        bursting, _ = bursts.step(
            bursting, Liquidation(E=at, q=a, p=b, S=side, s="X", T=at), config
        )
        bursting, _ = bursts.step(bursting, at + 1, config, "X")


frame_texts = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    st.builds(
        lambda stream, body: f'{{"stream":"{stream}","data":{body}}}',
        st.sampled_from(
            ["trade.SOL_USDC", "depth.SOL_USDC", "account.orderUpdate", "nope"]
        ),
        st.sampled_from(["{}", "[]", "null", '{"e":"trade"}', '{"e":"orderFill"}']),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(frame_texts, max_size=20))
def test_every_rejected_frame_is_counted(texts: list[object]) -> None:
    from bpx_flows.connectors.backpack.decode import BadFrame
    from bpx_flows.connectors.backpack.session import Session
    from bpx_flows.connectors.backpack.streams import parse_streams

    session = Session(parse_streams(["trade.SOL_USDC"]))
    rejected = 0
    for text in texts:
        decoded = session.receive(text, 1)  # type: ignore[arg-type]
        rejected += isinstance(decoded, BadFrame)
    assert sum(session.stats.bad_frames.values()) == rejected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["order", "position", "rfq", "mark"]),
            st.integers(0, 50),
            hostile,
            hostile,
            st.sampled_from(["orderAccepted", "orderFill", "orderCancelled"]),
        ),
        max_size=30,
    )
)
def test_account_operator_never_raises(
    events: list[tuple[str, int, str, str, str]],
) -> None:
    from decimal import Decimal

    from bpx_flows.connectors.backpack.wire import (
        MarkPrice,
        OrderEventType,
        OrderUpdate,
        PositionUpdate,
        RfqEventType,
        RfqUpdate,
        Side,
    )
    from bpx_flows.operators.account import AccountConfig, step as account_step

    state = None
    for kind, at, a, b, event in events:
        if kind == "order":
            data: object = OrderUpdate(
                e=OrderEventType(event), E=at, s="X", S=Side.BID, o="LIMIT", f="GTC",
                X="New", i=str(at % 3), z=a, Z=b, T=at, q=b, p=a, t=at, l=a, L=b,
            )  # fmt: skip
        elif kind == "position":
            qty = Decimal(at - 25)
            data = PositionUpdate(
                E=at, s="X", b=Decimal(1), B=Decimal(at), f=Decimal("0.02"),
                M=Decimal(at), m=Decimal("0.0125"), q=qty, Q=qty, n=qty, i=1,
                p=a, P=b, T=at,
            )  # fmt: skip
        elif kind == "rfq":
            data = RfqUpdate(
                e=RfqEventType.FILLED if at % 2 else RfqEventType.ACTIVE, E=at,
                R=at % 4, s="X", S=Side.ASK, T=at, q=a, p=b, W=at // 2,
            )  # fmt: skip
        else:
            data = MarkPrice(E=at, s="X", p=a, T=at)
        state, _ = account_step(state, Frame("x", data, recv_us=at), AccountConfig())


_nested = st.integers(min_value=1, max_value=60_000).map(
    lambda depth: '{"stream":"trade.SOL_USDC","data":' + "[" * depth + "]" * depth + "}"
)
_absurd_numbers = st.sampled_from(
    ["1e999999999", "NaN", "-Infinity", "1" * 60, "0x10", "1_000", "١٢"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=400),
        st.text(max_size=200),  # surrogates included
        _nested,
        _absurd_numbers.map(
            lambda p: (
                '{"stream":"trade.SOL_USDC","data":{"e":"trade","E":1,"T":1,'
                f'"a":"1","b":"2","m":true,"p":"{p}","q":"1","s":"SOL_USDC","t":1}}}}'
            )
        ),
        st.integers(min_value=-(2**70), max_value=2**70).map(
            lambda t: (
                '{"stream":"trade.SOL_USDC","data":{"e":"trade","E":1,'
                f'"T":{t},"a":"1","b":"2","m":true,"p":"1","q":"1","s":"SOL_USDC","t":1}}}}'
            )
        ),
    )
)
def test_the_decoder_never_raises_and_lets_no_absurd_value_through(
    raw: bytes | str,
) -> None:
    from decimal import Decimal

    from bpx_flows.connectors.backpack.decode import FrameDecoder
    from bpx_flows.connectors.backpack.limits import MAX_TIME_US

    decoded = FrameDecoder().decode(raw, 1)
    data = getattr(decoded, "data", None)
    if type(data).__name__ == "Trade":
        assert 0 <= data.T < MAX_TIME_US
        price = Decimal(data.p)
        assert price.is_finite() and abs(price.adjusted()) <= 40
