from decimal import Decimal as D
from fractions import Fraction

from bpx_flows.connectors.backpack.streams import KlineInterval as I
from bpx_flows.connectors.backpack.wire import Kline, Trade
from bpx_flows.operators.candles import (
    KlineResolved,
    TradeGap,
    check_ids,
    check_klines,
    finish,
    fold,
    merge,
    new_acc,
    roll_up,
)

S = 1_000_000
T0 = 1_790_000_040_000_000  # a minute boundary


def trade(
    t: int, at_us: int, p: str = "10", q: str = "1", taker_sold: bool = False
) -> Trade:
    return Trade(
        E=at_us, s="SOL_USDC", p=p, q=q, b="1", a="2", t=t, T=at_us, m=taker_sold
    )


def candle_of(trades, interval=I.S1):
    acc = new_acc()
    for t in trades:
        acc = fold(acc, t)
    return finish(acc, interval)


def test_fold_is_exact_and_orders_by_event_time() -> None:
    trades = [
        trade(2, T0 + 300_000, p="10.5", q="2"),
        trade(1, T0 + 100_000, p="10.0", q="1", taker_sold=True),  # arrives late
        trade(3, T0 + 900_000, p="9.9", q="0.5"),
    ]
    c = candle_of(trades)
    assert (c.start_us, c.end_us) == (T0, T0 + S)
    assert (c.open, c.high, c.low, c.close) == (
        D("10.0"),
        D("10.5"),
        D("9.9"),
        D("9.9"),
    )
    assert c.volume == D("3.5") and c.quote_volume == D("35.95")
    assert c.vwap == D("10.3")  # 35.95 / 3.5 = 10.2714..., at the close's precision
    assert (c.trades, c.buy_trades, c.sell_trades) == (3, 2, 1)
    assert (c.buy_volume, c.sell_volume) == (D("2.5"), D(1))
    assert (c.first_trade_id, c.last_trade_id) == (1, 3)


def test_sums_are_exact_beyond_the_default_28_digits() -> None:
    # A large price times a fine quantity has more digits than the default context
    # keeps; every sum must still equal the exact one (computed with integers).
    prices = ["86700.123456789", "0.000012345678901", "123456789012.5"]
    quantities = ["0.000000012345678901", "987654321.000000001", "3.3"]
    trades = [
        trade(i + 1, T0 + i * 1_000, p=prices[i % 3], q=quantities[i % 3])
        for i in range(30)
    ]
    c = candle_of(trades)
    # Every price and quantity here has at most 20 decimals.

    def units(text: str) -> int:
        whole, _, frac = text.partition(".")
        return int(whole + frac.ljust(20, "0"))

    quote = sum(units(t.p) * units(t.q) for t in trades)
    assert Fraction(c.quote_volume) == Fraction(quote, 10**40)
    assert len(c.quote_volume.as_tuple().digits) > 28  # more than 28 digits kept
    volume = sum(units(t.q) for t in trades)
    assert Fraction(c.volume) == Fraction(volume, 10**20)
    assert Fraction(c.buy_volume) + Fraction(c.sell_volume) == Fraction(c.volume)


def test_same_time_trades_are_ordered_by_id() -> None:
    c = candle_of([trade(6, T0, p="2"), trade(5, T0, p="1")])
    assert (c.open, c.close) == (D(1), D(2))


def test_merge_equals_folding_everything() -> None:
    trades = [
        trade(i, T0 + i * 50_000, p=str(10 + i % 7), q=str(1 + i % 3))
        for i in range(1, 19)
    ]
    left, right = new_acc(), new_acc()
    for t in trades[::2]:
        left = fold(left, t)
    for t in trades[1::2]:
        right = fold(right, t)
    assert finish(merge(left, right), I.S1) == candle_of(trades)
    assert finish(merge(new_acc(), left), I.S1) == finish(left, I.S1)


def test_interval_boundaries_are_half_open() -> None:
    assert candle_of([trade(1, T0 + S - 1)]).start_us == T0
    assert candle_of([trade(1, T0 + S)]).start_us == T0 + S
    assert candle_of([trade(1, T0 + 59 * S)], I.M1).start_us == T0


def test_roll_up_closes_longer_candles_when_a_later_window_arrives() -> None:
    intervals = (I.S1, I.M1)
    state, out = None, []
    for second, price in ((0, "10"), (30, "12"), (59, "11"), (61, "9")):
        state, closed = roll_up(
            state, candle_of([trade(second + 1, T0 + second * S, p=price)]), intervals
        )
        out.extend(closed)
    minutes = [c for c in out if c.interval is I.M1]
    assert len(minutes) == 1
    minute = minutes[0]
    assert (minute.start_us, minute.open, minute.high, minute.low, minute.close) == (
        T0,
        D(10),
        D(12),
        D(10),
        D(11),
    )
    assert minute.trades == 3 and minute.partial  # the first minute seen
    seconds = [c for c in out if c.interval is I.S1]
    assert [c.partial for c in seconds] == [True, False, False, False]


def test_a_longer_candle_closes_with_its_last_base_window() -> None:
    intervals = (I.S1, I.M1)
    state, out = roll_up(None, candle_of([trade(1, T0 + 30 * S, p="10")]), intervals)
    assert [c.interval for c in out] == [I.S1]  # the minute is still open
    state, out = roll_up(state, candle_of([trade(2, T0 + 59 * S, p="12")]), intervals)
    assert [(c.interval, c.start_us, c.trades) for c in out] == [
        (I.S1, T0 + 59 * S, 1),
        (I.M1, T0, 2),
    ]
    # A base candle of that minute coming later still revises it.
    state, out = roll_up(state, candle_of([trade(3, T0 + 45 * S, p="9")]), intervals)
    (minute,) = [c for c in out if c.interval is I.M1]
    assert (minute.revision, minute.trades, minute.low) == (1, 3, D(9))
    # The next minute opens with the next base candle; nothing is emitted twice.
    state, out = roll_up(state, candle_of([trade(4, T0 + 61 * S)]), intervals)
    assert [c.interval for c in out] == [I.S1]


def test_forward_fill_for_quiet_intervals() -> None:
    state, out = roll_up(
        None, candle_of([trade(1, T0, p="10")]), (I.S1,), forward_fill=True
    )
    state, out = roll_up(
        state, candle_of([trade(2, T0 + 3 * S, p="11")]), (I.S1,), forward_fill=True
    )
    assert [(c.start_us - T0) // S for c in out] == [1, 2, 3]
    assert [c.filled for c in out] == [True, True, False]
    assert out[0].close == D(10) and out[0].volume == 0 and out[0].trades == 0
    _, quiet = roll_up(None, candle_of([trade(1, T0)]), (I.S1,), forward_fill=False)
    assert not any(c.filled for c in quiet)


def test_trade_ids_gaps_and_duplicates() -> None:
    state, out = None, []
    for t in (1, 2, 2, 5, 3, 6):
        state, got = check_ids(state, trade(t, T0 + t))
        out.extend(got)
    gaps = [o for o in out if isinstance(o, TradeGap)]
    assert [(g.first_missing, g.last_missing, g.count) for g in gaps] == [(3, 4, 2)]
    assert [o.t for o in out if isinstance(o, Trade)] == [1, 2, 5, 3, 6]
    assert state.duplicates == 1 and state.gaps == 1


def kline(
    start_us: int, o="10", h="12", low="9", c="11", v="3", n=3, closed=True
) -> Kline:
    from bpx_flows.connectors.backpack.klines import format_kline_time

    return Kline(
        E=1,
        s="SOL_USDC",
        t=format_kline_time(start_us),
        T=format_kline_time(start_us + 60 * S),
        o=o,
        c=c,
        h=h,
        l=low,
        v=v,
        n=n,
        X=closed,
    )


def test_kline_check_in_either_order() -> None:
    trades = [
        trade(1, T0, p="10"),
        trade(2, T0 + S, p="12"),
        trade(3, T0 + 2 * S, p="9"),
        trade(4, T0 + 3 * S, p="11"),
    ]
    ours = candle_of(trades, I.M1)
    state, out = check_klines(None, ours)
    state, out = check_klines(state, (I.M1, kline(T0, v="4", n=4)))
    assert out == [] and state.checked == 1
    state, out = check_klines(None, (I.M1, kline(T0, v="4", n=4, c="11.5")))
    state, out = check_klines(state, ours)
    assert len(out) == 1 and out[0].fields == ("close",)
    assert out[0].ours == ("11",) and out[0].theirs == ("11.5",)


def test_open_klines_and_partial_candles_are_not_compared() -> None:
    state, _ = check_klines(None, (I.M1, kline(T0, closed=False)))
    assert not state.theirs
    partial = candle_of([trade(1, T0)], I.M1)
    import msgspec

    state, _ = check_klines(state, msgspec.structs.replace(partial, partial=True))
    assert not state.ours and state.checked == 0


def test_roll_up_follows_calendar_months() -> None:
    from bpx_flows.connectors.backpack.klines import format_kline_time

    end_of_march = 1_774_969_200_000_000  # 2026-03-31T15:00:00Z
    state, out = None, []
    for at in (
        end_of_march,
        end_of_march + 10 * 3600 * S,
        end_of_march + 20 * 3600 * S,
    ):
        state, closed = roll_up(
            state, candle_of([trade(at // S, at)], I.H1), (I.H1, I.MONTH1)
        )
        out.extend(closed)
    months = [c for c in out if c.interval is I.MONTH1]
    assert [format_kline_time(c.start_us) for c in months] == ["2026-03-01T00:00:00"]
    assert format_kline_time(months[0].end_us) == "2026-04-01T00:00:00"
    assert months[0].trades == 1  # the April hours belong to the next month


def test_a_closed_kline_for_a_window_without_our_candle_is_a_mismatch() -> None:
    import msgspec

    first = msgspec.structs.replace(candle_of([trade(1, T0)], I.M1), partial=True)
    later = candle_of([trade(9, T0 + 180 * S)], I.M1)
    state, _ = check_klines(None, first)
    # The exchange saw trades at T0 + 60 s: our candle never came (a gap, say).
    state, out = check_klines(state, (I.M1, kline(T0 + 60 * S, n=2)))
    assert out == []  # its window may still close
    state, _ = check_klines(state, (I.M1, kline(T0 + 120 * S, n=0)))  # no trades: ok
    state, out = check_klines(state, later)
    assert [(m.start_us, m.fields, m.theirs[-1]) for m in out] == [
        (T0 + 60 * S, ("missing",), "2")
    ]
    # A kline arriving after its window passed is reported at once; one for our
    # partial first window (or before it) is not compared.
    state, out = check_klines(state, (I.M1, kline(T0 + 60 * S + 60 * S, n=1)))
    assert [m.fields for m in out] == [("missing",)]
    state, out = check_klines(state, (I.M1, kline(T0, n=5)))
    assert out == [] and state.missing == 2


def test_a_corrected_candle_resolves_its_mismatch_or_reports_again() -> None:
    import msgspec

    before = [trade(1, T0, p="10"), trade(4, T0 + 3 * S, p="11")]  # 2 and 3 lost
    first = candle_of(before, I.M1)
    state, out = check_klines(None, (I.M1, kline(T0, v="4", n=4)))
    state, out = check_klines(state, first)
    assert [(m.fields, m.revision) for m in out] == [
        (("high", "low", "volume", "trades"), 0)
    ]
    # A correction with one trade of two still different; then the whole window.
    half = candle_of([*before, trade(2, T0 + S, p="12")], I.M1)
    state, out = check_klines(state, msgspec.structs.replace(half, revision=1))
    assert [(m.fields, m.revision) for m in out] == [(("low", "volume", "trades"), 1)]
    whole = candle_of([*before, trade(2, T0 + S, p="12"), trade(3, T0 + 2 * S, p="9")])
    whole = msgspec.structs.replace(whole, interval=I.M1, revision=2)
    state, out = check_klines(state, whole)
    assert out == [
        KlineResolved(symbol="SOL_USDC", interval=I.M1, start_us=T0, revision=2)
    ]
    assert state.resolved == 1 and not state.disputed
    # A window reported missing resolves the same way; one never disputed stays quiet.
    state, _ = check_klines(
        state, (I.M1, kline(T0 + 60 * S, n=1, v="1", o="10", h="10", low="10", c="10"))
    )
    state, out = check_klines(state, candle_of([trade(9, T0 + 120 * S)], I.M1))
    assert [m.fields for m in out] == [("missing",)]
    gone = candle_of([trade(5, T0 + 60 * S)], I.M1)
    state, out = check_klines(state, msgspec.structs.replace(gone, revision=1))
    assert [type(m).__name__ for m in out] == ["KlineResolved"]
    state, out = check_klines(state, msgspec.structs.replace(gone, revision=2))
    assert out == []
