"""Corrections of closed candles by trades fetched back after a gap (pure)."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from bpx_flows.connectors.backpack.backfill import BackfilledTrade
from bpx_flows.connectors.backpack.streams import KlineInterval as I
from bpx_flows.connectors.backpack.wire import Trade
from bpx_flows.operators.candles import (
    Candle,
    CandleBookConfig,
    CandleBookState,
    TradeGap,
    candle_book,
    check_ids,
    finish,
    fold,
    new_acc,
)
from tests.candle_revisions import latest

S = 1_000_000
T0 = 1_790_000_040_000_000  # a minute boundary
CONFIG = CandleBookConfig((I.S1, I.M1), I.S1, horizon_us=120 * S, keep_us=5 * S)


def trade(t: int, at_us: int, p: str = "10", q: str = "1") -> Trade:
    return Trade(E=at_us, s="X", p=p, q=q, b="1", a="2", t=t, T=at_us, m=False)


def fetched(t: int, at_us: int, p: str = "10", q: str = "1") -> BackfilledTrade:
    at = at_us // 1000 * 1000  # REST rows have milliseconds
    return BackfilledTrade(E=at, s="X", p=p, q=q, b="", a="", t=t, T=at, m=False)


def base(trades: list[Trade]) -> Candle:
    acc = new_acc()
    for t in trades:
        acc = fold(acc, t)
    return finish(acc, I.S1)


def run(
    items: list[Any], config: CandleBookConfig = CONFIG
) -> tuple[CandleBookState, list[Candle]]:
    state: CandleBookState | None = None
    out: list[Candle] = []
    for item in items:
        state, emitted = candle_book(state, item, config)
        out += emitted
    assert state is not None
    return state, out


def test_a_fetched_trade_corrects_its_closed_window_with_the_next_revision() -> None:
    live = [trade(1, T0 + 100), trade(2, T0 + S + 100), trade(5, T0 + 2 * S + 100)]
    gap = TradeGap("X", 3, 4, 2, T0 + 2 * S + 100, T0 + S + 100)
    items: list[Any] = [base(live[:1]), base(live[1:2]), gap, base(live[2:])]
    items += [fetched(3, T0 + S + 500_000, p="12"), fetched(4, T0 + S + 900_000, "9")]
    state, out = run(items)
    second = [c for c in out if c.interval is I.S1 and c.start_us == T0 + S]
    assert [c.revision for c in second] == [0, 1, 2]
    final = second[-1]
    assert (final.open, final.high, final.low, final.close) == (
        D(10),
        D(12),
        D(9),
        D(9),
    )
    assert (final.trades, final.first_trade_id, final.last_trade_id) == (3, 2, 4)
    assert final.volume == D(3) and final.quote_volume == D(31)
    assert state.corrections == 2 and state.uncorrectable == 0


def test_corrected_candles_equal_the_candles_of_an_uninterrupted_run() -> None:
    # Every trade in order, against the same trades with 3..7 lost and fetched back
    # (in REST's millisecond time) after the minute closed.
    at = [T0 + n * 400_000 + 123 for n in range(1, 200)]  # 80 s of trades
    every = [
        trade(n + 1, t, p=str(10 + n % 7), q=str(1 + n % 3)) for n, t in enumerate(at)
    ]
    every = [
        Trade(
            E=t.E, s="X", p=t.p, q=t.q, b="", a="", t=t.t, T=t.T // 1000 * 1000, m=False
        )
        for t in every
    ]  # the same trades at millisecond times: both runs see identical values
    lost = set(range(30, 60))

    def closed_windows(trades: list[Trade]) -> list[Candle]:
        windows: dict[int, list[Trade]] = {}
        for t in trades:
            windows.setdefault(t.T // S * S, []).append(t)
        return [base(ws) for _, ws in sorted(windows.items())]

    _, truth = run(closed_windows(every))
    seen = [t for t in every if t.t not in lost]
    ids: Any = None
    gaps: list[Any] = []
    for t in seen:
        ids, out = check_ids(ids, t)
        gaps += [g for g in out if isinstance(g, TradeGap)]
    assert len(gaps) == 1
    candles = closed_windows(seen)
    cut = next(i for i, c in enumerate(candles) if c.start_us > gaps[0].detected_us)
    back = [
        BackfilledTrade(E=t.E, s="X", p=t.p, q=t.q, b="", a="", t=t.t, T=t.T, m=False)
        for t in every
        if t.t in lost
    ]
    _, out = run([*candles[:cut], gaps[0], *candles[cut:], *back])
    assert latest(out) == latest(truth)
    assert any(c.revision for c in out)


def test_a_window_the_gap_emptied_gets_a_candle_revision_1() -> None:
    live = [trade(1, T0 + 100), trade(4, T0 + 3 * S + 100), trade(5, T0 + 4 * S)]
    gap = TradeGap("X", 2, 3, 2, T0 + 3 * S + 100, T0 + 100)
    _, out = run(
        [
            base(live[:1]),
            gap,
            base(live[1:2]),
            base(live[2:]),
            fetched(2, T0 + S + 10_000),
            fetched(3, T0 + 2 * S + 10_000),
        ]
    )
    made = [c for c in out if c.interval is I.S1 and c.start_us in (T0 + S, T0 + 2 * S)]
    assert [(c.start_us, c.revision, c.trades) for c in made] == [
        (T0 + S, 1, 1),
        (T0 + 2 * S, 1, 1),
    ]


def test_an_open_longer_interval_simply_includes_the_fetched_trade() -> None:
    live = [trade(1, T0 + 100), trade(3, T0 + 2 * S)]
    gap = TradeGap("X", 2, 2, 1, T0 + 2 * S, T0 + 100)
    _, out = run(
        [
            base(live[:1]),
            gap,
            base(live[1:]),
            fetched(2, T0 + S + 5_000, "11"),
            base([trade(4, T0 + 61 * S)]),
        ]
    )
    minute = [c for c in out if c.interval is I.M1]
    assert [(c.revision, c.trades, c.high) for c in minute] == [(0, 3, D(11))]


def test_without_a_gap_or_past_the_horizon_nothing_is_corrected() -> None:
    live = [trade(1, T0 + 100), trade(3, T0 + 200 * S)]
    # No gap announced: a stray fetched trade changes nothing.
    state, out = run([base(live[:1]), base(live[1:]), fetched(2, T0 + 5_000)])
    assert all(c.revision == 0 for c in out) and state.uncorrectable == 1
    # The gap's hold ended (120 s) before the trade came back.
    gap = TradeGap("X", 2, 2, 1, T0 + 100, T0 + 100)
    later = base([trade(4, T0 + 400 * S)])
    state, out = run(
        [base(live[:1]), gap, base(live[1:]), later, fetched(2, T0 + 5_000)]
    )
    assert all(c.revision == 0 for c in out) and state.uncorrectable == 1


def test_memory_is_bounded_without_gaps_and_released_after_a_hold() -> None:
    candles = [base([trade(n, T0 + n * S)]) for n in range(1, 400)]
    state, _ = run(candles)
    assert len(state.emitted) <= 5 + 2 + 2  # keep_us of base windows, and minutes
    gap = TradeGap("X", 400, 400, 1, T0 + 401 * S, T0 + 399 * S)
    more = [base([trade(n, T0 + n * S)]) for n in range(401, 460)]
    state, _ = run([*candles, gap, *more])
    assert len(state.emitted) > 50  # held for corrections
    state, _ = run([*candles, gap, *more, base([trade(999, T0 + 700 * S)])])
    assert len(state.emitted) <= 5 + 2 + 2 and not state.holds
