"""The candle flow's base windows against Bytewax's own ``fold_window``.

Until session 15 the flow folded trades with ``fold_window`` over an ``EventClock``
and a ``TumblingWindower``; ``operators.candles.windows`` does it in integers. The
same trades, in the same batches, through both: the same candles in the same order
per symbol, and the same late trades, whatever the disorder, the lateness and the
batch size (replays: the watermark moves with event time only).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
import bytewax.operators.windowing as win
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main
from hypothesis import given, settings, strategies as st

from bpx_flows.connectors.backpack.streams import KlineInterval as I
from bpx_flows.connectors.backpack.wire import Trade
from bpx_flows.flows.batching import stateful_steps
from bpx_flows.operators.candles import Candle, finish, fold, merge, new_acc
from bpx_flows.operators.candles.windows import (
    BaseWindows,
    WindowsConfig,
    windows_close_at,
    windows_on_eof,
    windows_on_time,
    windows_trade,
)

S = 1_000_000
T0 = 1_790_000_040_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _trade(t: int, at_us: int, symbol: str) -> Trade:
    price = f"{10 + t % 7}"
    return Trade(
        E=at_us, s=symbol, p=price, q="1", b="1", a="2", t=t, T=at_us, m=t % 2 == 0
    )


def _bytewax(
    items: list[tuple[str, Trade]], lateness_us: int, batch: int
) -> tuple[list[Any], list[Any]]:
    """Candles and late trades of Bytewax's fold_window (what the flow used)."""
    candles: list[Any] = []
    late: list[Any] = []
    flow = Dataflow("reference")
    keyed = op.input("in", flow, TestingSource(items, batch_size=batch))
    clock = win.EventClock(
        lambda trade: EPOCH + timedelta(microseconds=trade.T),
        timedelta(microseconds=lateness_us),
        now_getter=lambda: EPOCH,
    )
    windower = win.TumblingWindower(length=timedelta(seconds=1), align_to=EPOCH)
    out = win.fold_window("w", keyed, clock, windower, new_acc, fold, merge)
    op.output(
        "candles",
        op.map_value("finish", out.down, lambda w: finish(w[1], I.S1)),
        TestingSink(candles),
    )
    op.output("late", op.map_value("t", out.late, lambda w: w[1]), TestingSink(late))
    run_main(flow)
    return candles, late


def _ours(
    items: list[tuple[str, Trade]], lateness_us: int, batch: int
) -> tuple[list[Any], list[Any]]:
    """Candles and late trades of the flow's own base windows, in replay."""
    config = WindowsConfig(I.S1, S, lateness_us)
    candles: list[Any] = []
    late: list[Any] = []
    flow = Dataflow("ours")
    keyed = op.input("in", flow, TestingSource(items, batch_size=batch))
    out = stateful_steps(
        "w",
        keyed,
        lambda state, trade: windows_trade(state, trade, 0, config),
        None,
        functools.partial(windows_on_eof, config=config),
    )
    split = op.branch("split", out, lambda kv: type(kv[1]) is Candle)
    op.output("candles", split.trues, TestingSink(candles))
    op.output("late", split.falses, TestingSink(late))
    run_main(flow)
    return candles, late


def _per_symbol(pairs: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(
        st.tuples(st.integers(0, 12 * S), st.sampled_from(["A", "B"])),
        min_size=1,
        max_size=120,
    ),
    lateness_us=st.sampled_from([0, 1, 200_000, S, 2 * S + 7]),
    batch=st.integers(1, 40),
)
def test_the_same_candles_and_late_trades_as_bytewax_fold_window(
    offsets: list[tuple[int, str]], lateness_us: int, batch: int
) -> None:
    # Arrival order is the list's; times jump back and forth by up to 12 s.
    items = [
        (symbol, _trade(n + 1, T0 + offset, symbol))
        for n, (offset, symbol) in enumerate(offsets)
    ]
    theirs = _bytewax(items, lateness_us, batch)
    ours = _ours(items, lateness_us, batch)
    assert _per_symbol(ours[0]) == _per_symbol(theirs[0])  # same order per symbol
    assert _per_symbol(ours[1]) == _per_symbol(theirs[1])


CONFIG = WindowsConfig(I.S1, S, 200_000)


def test_live_the_clock_closes_a_window_no_trade_comes_after() -> None:
    # A trade at T0 + 0.5 s seen at system time 1,000 s: the watermark reaches the
    # window's end (T0 + 1 s) 0.7 s later (0.5 s to the end, 0.2 s of lateness).
    seen_at = 1_000 * S
    state, out = windows_trade(None, _trade(1, T0 + S // 2, "A"), seen_at, CONFIG)
    assert out == []
    assert windows_close_at(state) == seen_at + 700_000
    state, early = windows_on_time(state, seen_at + 699_999, CONFIG)
    assert early == []
    state, closed = windows_on_time(state, seen_at + 700_000, CONFIG)
    assert [(c.start_us, c.trades) for c in closed] == [(T0, 1)]
    assert windows_close_at(state) is None


def test_live_system_time_never_goes_backwards() -> None:
    state, _ = windows_trade(None, _trade(1, T0 + S // 2, "A"), 1_000 * S, CONFIG)
    state, _ = windows_on_time(state, 1_000 * S + 600_000, CONFIG)  # watermark T0+0.9
    # A clock stepped back does not pull the watermark back: 0.05 s behind it is late.
    behind = _trade(2, T0 + 850_000, "A")
    state, out = windows_trade(state, behind, 999 * S, CONFIG)
    assert out == [behind]
    state, out = windows_trade(state, _trade(3, T0 + 950_000, "A"), 999 * S, CONFIG)
    assert out == []
    state, none = windows_on_time(state, 1_000 * S + 650_000, CONFIG)
    assert none == []
    state, closed = windows_on_time(state, 1_000 * S + 700_000, CONFIG)
    assert [c.trades for c in closed] == [2]


def test_a_trade_behind_the_watermark_is_late_and_folded_nowhere() -> None:
    state, _ = windows_trade(None, _trade(1, T0 + 3 * S, "A"), 0, CONFIG)
    late = _trade(2, T0 + 2 * S, "A")  # 1 s behind, 0.2 s allowed
    state, out = windows_trade(state, late, 0, CONFIG)
    assert out == [late]
    state, rest = windows_on_eof(state, CONFIG)
    assert [(c.start_us, c.trades) for c in rest] == [(T0 + 3 * S, 1)]
    assert isinstance(state, BaseWindows) and not state.open


@pytest.mark.parametrize("length_s", [1, 60])
def test_windows_close_oldest_first_when_the_watermark_jumps(length_s: int) -> None:
    config = WindowsConfig(I.S1 if length_s == 1 else I.M1, length_s * S, 10 * S)
    state = None
    for n, at in enumerate((T0 + 5 * S, T0, T0 + 3 * S)):  # not in time order
        state, _ = windows_trade(state, _trade(n + 1, at, "A"), 0, config)
    state, closed = windows_trade(state, _trade(9, T0 + 3600 * S, "A"), 0, config)
    starts = [c.start_us for c in closed]
    assert starts == sorted(starts) and len(starts) == (3 if length_s == 1 else 1)
