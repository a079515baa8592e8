"""Order, position and RFQ state machines as pure code, late and repeated events too."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from bpx_flows.connectors.backpack.booksync import BookSnapshot
from bpx_flows.connectors.backpack.wire import (
    BookTicker,
    Depth,
    Frame,
    MarkPrice,
    OrderEventType as OE,
    OrderUpdate,
    PositionEventType as PE,
    PositionUpdate,
    RfqEventType as RE,
    RfqUpdate,
    Side,
)
from bpx_flows.connectors.clock import Watermark
from bpx_flows.operators.account import (
    AccountConfig,
    AutoCloseAlert,
    step,
    step_with_book,
)
from bpx_flows.operators.book_state import BookConfig
from bpx_flows.operators.orders import OrderFill, OrderLifecycle, OrderState
from bpx_flows.operators.positions import MarginAlert, PositionView
from bpx_flows.operators.rfqs import RfqOutcome

T0 = 1_790_000_000_000_000
SYMBOL = "SOL_USDC_PERP"
CFG = AccountConfig()


def order(
    e: OE, at: int, *, z: str = "0", Z: str = "0", X: str = "New", **extra: Any
) -> Frame[OrderUpdate]:
    fields: dict[str, Any] = {
        "e": e,
        "E": T0 + at + 40,
        "s": SYMBOL,
        "S": Side.BID,
        "o": "LIMIT",
        "f": "GTC",
        "X": X,
        "i": "111",
        "z": z,
        "Z": Z,
        "T": T0 + at,
        "q": "10",
        "p": "100",
        "O": "USER",
    }
    fields.update(extra)
    return Frame(f"account.orderUpdate.{SYMBOL}", OrderUpdate(**fields), T0 + at + 500)


def fill(
    at: int, trade: int, qty: str, z: str, X: str, price: str = "100", **extra: Any
) -> Any:
    quote = str(D(z) * D(price))
    return order(
        OE.FILL,
        at,
        z=z,
        Z=quote,
        X=X,
        t=trade,
        l=qty,
        L=price,
        m=True,
        n="0.01",
        N="USDC",
        **extra,
    )


def run(records: list[Any], config: AccountConfig = CFG) -> list[Any]:
    state, outputs = None, []
    for record in records:
        state, out = step(state, record, config)
        outputs.extend(out)
    return outputs


LIFE = [
    order(OE.ACCEPTED, 0),
    fill(10, 501, "4", "4", "PartiallyFilled"),
    fill(20, 502, "6", "10", "Filled"),
]


def states(outputs: list[Any]) -> list[OrderState]:
    return [o for o in outputs if isinstance(o, OrderState)]


def test_an_order_goes_through_its_life_with_exact_fills() -> None:
    out = run(LIFE)
    assert [s.status for s in states(out)] == [
        OrderLifecycle.ACCEPTED,
        OrderLifecycle.PARTIALLY_FILLED,
        OrderLifecycle.FILLED,
    ]
    assert [s.open_orders for s in states(out)] == [1, 1, 0]
    last = states(out)[-1]
    assert last.executed == D(10) and last.avg_price == D(100)
    fills = [o for o in out if isinstance(o, OrderFill)]
    assert [(f.trade_id, f.quantity, f.fee, f.maker) for f in fills] == [
        (501, D(4), D("0.01"), True),
        (502, D(6), D("0.01"), True),
    ]


def test_duplicates_count_once() -> None:
    out = run([*LIFE, *LIFE])
    assert len(states(out)) == 3
    assert len([o for o in out if isinstance(o, OrderFill)]) == 2


def test_late_events_do_not_reopen_or_roll_back() -> None:
    # The fill that completes the order arrives first, then the partial fill, then
    # the acceptance: final stays filled, every fill counts once, executed only grows.
    out = run([LIFE[2], LIFE[1], LIFE[0]])
    assert states(out)[-1].status is OrderLifecycle.FILLED
    assert all(s.executed == D(10) for s in states(out))
    assert len([o for o in out if isinstance(o, OrderFill)]) == 2
    # A cancel, then an older modification: still cancelled.
    out = run(
        [
            order(OE.ACCEPTED, 0),
            order(OE.CANCELLED, 30, X="Cancelled"),
            order(OE.MODIFIED, 20),
        ]
    )
    assert states(out)[-1].status is OrderLifecycle.CANCELLED
    assert len(states(out)) == 2


def test_trigger_orders_and_expiry() -> None:
    out = run(
        [
            order(OE.TRIGGER_PLACED, 0, X="TriggerPending", P="105"),
            order(OE.TRIGGER_FAILED, 10, X="TriggerFailed", P="105"),
        ]
    )
    assert [s.status for s in states(out)] == [
        OrderLifecycle.TRIGGER_PLACED,
        OrderLifecycle.TRIGGER_FAILED,
    ]
    assert states(out)[0].trigger_price == D(105)
    out = run(
        [order(OE.ACCEPTED, 0), order(OE.EXPIRED, 5, X="Expired", R="PRICE_BAND")]
    )
    assert states(out)[-1].status is OrderLifecycle.EXPIRED
    assert states(out)[-1].expiry_reason == "PRICE_BAND"


EVENTS = st.lists(st.sampled_from(range(3)), min_size=1, max_size=9)


@settings(max_examples=200, deadline=None)
@given(EVENTS, st.booleans())
def test_any_order_or_repetition_ends_in_the_same_state(
    picks: list[int], cancel: bool
) -> None:
    life = (
        [order(OE.ACCEPTED, 0), LIFE[1], order(OE.CANCELLED, 30, X="Cancelled")]
        if cancel
        else LIFE
    )
    delivered = [life[i] for i in picks]
    reference = [life[i] for i in sorted(set(picks))]
    got, want = run(delivered), run(reference)
    assert states(got)[-1].status == states(want)[-1].status
    assert states(got)[-1].executed == states(want)[-1].executed
    fill_ids = sorted(f.trade_id for f in got if isinstance(f, OrderFill))
    assert fill_ids == sorted(f.trade_id for f in want if isinstance(f, OrderFill))


def test_fill_slippage_against_the_book_mid_at_fill_time() -> None:
    stream = f"depth.{SYMBOL}"

    def snapshot(update_id: int) -> BookSnapshot:
        return BookSnapshot(stream, SYMBOL, update_id, [], [], T0)

    def depth(at: int, update_id: int, bid: str, ask: str) -> Frame[Depth]:
        data = Depth(
            E=T0 + at, s=SYMBOL, a=[[ask, "1"]], b=[[bid, "1"]],
            U=update_id, u=update_id, T=T0 + at,
        )  # fmt: skip
        return Frame(stream, data, T0 + at)

    # A buy at 100.05 with the mid at 100.00 (bid 99.99 / ask 100.01) is 5 bps worse.
    # A later mid (101: the old levels stay, 100.99 / 101.01 become the best) must not
    # be used for an earlier fill, even when it arrived first.
    records = [
        snapshot(1),
        depth(0, 2, "99.99", "100.01"),
        depth(50, 3, "100.99", "100.995"),
        fill(10, 7, "1", "1", "PartiallyFilled", price="100.05"),
    ]
    state, out = None, []
    for record in records:
        state, emitted = step_with_book(state, record, CFG, BookConfig())
        out += emitted
    (got,) = [o for o in out if isinstance(o, OrderFill)]
    assert got.mid == D(100) and got.slippage_bps == D(5) and got.mid_age_us == 10
    # Without a book, no mid: bookTicker frames are not mids (docs/account.md).
    ticker = BookTicker(E=T0, s=SYMBOL, a="100.01", A="1", b="99.99", B="1", u=1, T=T0)
    plain = run(
        [
            Frame(f"bookTicker.{SYMBOL}", ticker, T0),
            fill(10, 7, "1", "1", "PartiallyFilled"),
        ]
    )
    assert plain[-1].slippage_bps is None


def test_auto_close_alerts_once_per_order() -> None:
    events = [
        order(OE.ACCEPTED, 0, O="LIQUIDATION_AUTOCLOSE", r=True),
        fill(5, 9, "10", "10", "Filled", O="LIQUIDATION_AUTOCLOSE"),
    ]
    alerts = [o for o in run(events) if isinstance(o, AutoCloseAlert)]
    assert [(a.order_id, a.origin) for a in alerts] == [
        ("111", "LIQUIDATION_AUTOCLOSE")
    ]
    assert not [o for o in run(LIFE) if isinstance(o, AutoCloseAlert)]


# Positions.


def position(
    at: int, q: str, entry: str = "100", mark: str = "100", e: PE | None = PE.OPENED
) -> Frame[PositionUpdate]:
    data = PositionUpdate(
        E=T0 + at,
        s=SYMBOL,
        b=D(entry),
        B=D(entry),
        f=D("0.02"),
        M=D(mark),
        m=D("0.0125"),
        q=D(q),
        Q=D(q),
        n=D(q) * D(mark),
        i=42,
        p="0",
        P="0",
        T=T0 + at,
        e=e,
    )
    return Frame(f"account.positionUpdate.{SYMBOL}", data, T0 + at)


def mark_price(at: int, p: str) -> Frame[MarkPrice]:
    return Frame(
        f"markPrice.{SYMBOL}", MarkPrice(E=T0 + at, s=SYMBOL, p=p, T=T0 + at), 0
    )


def views(outputs: list[Any]) -> list[PositionView]:
    return [o for o in outputs if isinstance(o, PositionView)]


def test_position_values_and_liquidation_threshold() -> None:
    (long_view,) = views(run([position(0, "2", mark="101")]))
    assert long_view.exposure == D(202) and long_view.unrealized_pnl == D(2)
    # 100 x 0.98 / 0.9875 = 99.2405..., to the mark's precision ("101": units).
    assert long_view.liquidation_price == D("99")
    assert long_view.side == "long"
    # equity = 2*100*0.02 + 2*(101-100) = 6; requirement = 2*101*0.0125 = 2.525
    assert long_view.margin_use == D("0.420833")  # 2.525 / 6, to 6 decimals
    (short_view,) = views(run([position(0, "-2", mark="99")]))
    assert short_view.liquidation_price == D("101")  # 100 x 1.02 / 1.0125 = 100.74
    assert short_view.distance_to_liquidation_bps is not None
    assert short_view.distance_to_liquidation_bps > 0
    assert short_view.unrealized_pnl == D(2)


def test_snapshot_events_marks_and_close() -> None:
    out = run(
        [
            position(0, "1", e=None),
            mark_price(10, "102"),
            position(20, "3", e=PE.ADJUSTED),
            position(30, "0", e=PE.CLOSED),
            mark_price(40, "103"),  # flat: nothing to revalue
        ]
    )
    assert [(v.source, v.quantity, v.mark_price) for v in views(out)] == [
        ("snapshot", D(1), D(100)),
        ("mark", D(1), D(102)),
        ("positionAdjusted", D(3), D(100)),  # the event's own, newer mark
        ("positionClosed", D(0), D(100)),
    ]


def test_position_duplicates_and_late_events_are_ignored() -> None:
    out = run(
        [position(0, "1"), position(20, "3"), position(20, "3"), position(10, "2")]
    )
    assert [v.quantity for v in views(out)] == [D(1), D(3)]


def test_margin_alerts_once_per_crossing_and_rearm() -> None:
    # Long 1 at 100, f=0.02, m=0.0125: use = 0.0125 M / (M - 98), 0.625 at the entry,
    # climbing as the mark falls; 99.9 falls below 0.8 x 0.9 and re-arms 0.8.
    marks = ["99.9", "99.6", "99.5", "99.45", "99.9", "99.5", "99.3"]
    levels = AccountConfig(margin_alert_levels=(D("0.5"), D("0.8"), D("0.9")))
    out = run(
        [position(0, "1"), *(mark_price(10 * (i + 1), p) for i, p in enumerate(marks))],
        levels,
    )
    alerts = [o for o in out if isinstance(o, MarginAlert)]
    uses = [v.margin_use for v in views(out)]
    assert all(u is not None for u in uses)
    assert [a.level for a in alerts] == [D("0.5"), D("0.8"), D("0.8"), D("0.9")]
    assert [a.engine_us - T0 for a in alerts] == [0, 30, 60, 70]


def test_each_margin_level_rearms_on_its_own_and_a_jump_alerts_every_level() -> None:
    # use = 0.0125 M / (M - 98): 99.3 -> 0.955 (jumps over 0.8 and 0.9 at once),
    # 99.6 -> 0.778 (below 0.9 x 0.9 = 0.81: re-arms 0.9; above 0.8 x 0.9 = 0.72: 0.8
    # stays quiet), 99.5 -> 0.829 (0.8 is not re-armed, so nothing), 99.3 -> 0.9 again.
    marks = ["99.3", "99.6", "99.5", "99.3"]
    out = run(
        [position(0, "1"), *(mark_price(10 * (i + 1), p) for i, p in enumerate(marks))]
    )
    alerts = [(a.level, a.engine_us - T0) for a in out if isinstance(a, MarginAlert)]
    assert alerts == [(D("0.8"), 10), (D("0.9"), 10), (D("0.9"), 40)]


def test_config_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="rearm_below"):
        AccountConfig(rearm_below=D(2))
    with pytest.raises(ValueError, match="levels"):
        AccountConfig(margin_alert_levels=(D(0),))


# RFQs.


def rfq(e: RE, at: int, rfq_id: int = 2**60, **extra: Any) -> Frame[RfqUpdate]:
    fields: dict[str, Any] = {
        "e": e,
        "E": T0 + at,
        "R": rfq_id,
        "s": "SOL_USDC_RFQ",
        "S": Side.BID,
        "T": T0 + at,
        "q": "5",
    }
    fields.update(extra)
    return Frame("account.rfqUpdate", RfqUpdate(**fields), T0 + at)


def outcomes(outputs: list[Any]) -> list[RfqOutcome]:
    return [o for o in outputs if isinstance(o, RfqOutcome)]


def test_rfq_roles_time_to_fill_and_fill_ratio() -> None:
    deadline_ms = (T0 + 10_000_000) // 1000
    out = run(
        [
            rfq(RE.ACCEPTED, 0, X="New", W=deadline_ms),
            rfq(RE.CANDIDATE, 100, u=9, p="101.5", X="New"),
            rfq(RE.FILLED, 300, u=9, p="101.5", X="Filled"),
            rfq(RE.QUOTE_CANCELLED, 400, u=9, X="Cancelled"),  # after its end: ignored
            rfq(RE.ACTIVE, 500, rfq_id=7, X="New", W=deadline_ms),
            rfq(RE.QUOTE_ACCEPTED, 600, rfq_id=7, u=3, p="99", X="New"),
            rfq(RE.QUOTE_CANCELLED, 700, rfq_id=7, u=3, X="Cancelled"),
            rfq(RE.ACCEPTED, 800, rfq_id=8, X="New", W=deadline_ms),
            rfq(RE.CANCELLED, 900, rfq_id=8, X="Expired"),
        ]
    )
    got = [
        (o.rfq_id, o.role, o.end, o.time_to_fill_us, o.fill_ratio)
        for o in outcomes(out)
    ]
    assert got == [
        (2**60, "taker", "filled", 300, D(1)),
        (7, "maker", "cancelled", None, D(0)),
        (8, "taker", "expired", None, D("0.5")),
    ]
    assert outcomes(out)[0].price == D("101.5") and outcomes(out)[0].quote_id == 9


def test_an_rfq_past_its_expiry_ends_by_engine_time() -> None:
    expiry_ms = (T0 + 1_000) // 1000
    out = run(
        [
            rfq(RE.ACTIVE, 0, rfq_id=1, X="New", W=expiry_ms),
            rfq(RE.ACTIVE, 5_000, rfq_id=2, X="New"),
        ]
    )
    assert [(o.rfq_id, o.end) for o in outcomes(out)] == [(1, "expired")]


def test_a_quiet_rfq_expires_by_the_watermark_after_the_grace() -> None:
    # No later event of the RFQ's market ever comes: the source's receive clock
    # ends it, one grace period (1 s) after its expiry, stamped with the expiry.
    expiry_ms = (T0 + 2_000_000) // 1000
    opened = rfq(RE.ACTIVE, 0, rfq_id=1, X="New", W=expiry_ms)
    assert outcomes(run([opened, Watermark(T0 + 2_900_000)])) == []
    (ended,) = outcomes(run([opened, Watermark(T0 + 3_100_000)]))
    assert (ended.rfq_id, ended.end, ended.engine_us) == (1, "expired", T0 + 2_000_000)
    assert ended.recv_us == T0 + 3_100_000
    # An end that arrives within the grace is the end.
    filled = rfq(RE.FILLED, 1_900_000, rfq_id=1, X="Filled")  # sent before, late
    got = outcomes(run([opened, Watermark(T0 + 2_900_000), filled]))
    assert [o.end for o in got] == ["filled"]
