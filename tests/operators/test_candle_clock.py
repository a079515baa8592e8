"""Live, the clock closes a longer candle whose last base window had no trade."""

from __future__ import annotations

from bpx_flows.connectors.backpack.streams import KlineInterval as I
from bpx_flows.operators.candles import (
    CandleBookConfig,
    candle_book,
    candle_book_close_at,
    candle_book_on_time,
    next_close_us,
    roll_up,
    roll_up_until,
)
from tests.operators.test_candles import T0, S, candle_of, trade

MINUTE = 60 * S
LIVE = CandleBookConfig((I.S1, I.M1), I.S1, close_after_us=250_000)


def test_a_quiet_minute_closes_by_the_clock_not_by_the_next_trade() -> None:
    state, _ = roll_up(None, candle_of([trade(1, T0 + 10 * S)]), (I.S1, I.M1))
    assert next_close_us(state) == T0 + MINUTE
    state, early = roll_up_until(state, T0 + MINUTE - 1, (I.S1, I.M1))
    assert early == []  # its window has not ended
    state, closed = roll_up_until(state, T0 + MINUTE, (I.S1, I.M1))
    assert [(c.interval, c.start_us, c.trades) for c in closed] == [(I.M1, T0, 1)]
    assert next_close_us(state) is None
    # The next trade's candle opens the next minute; nothing is emitted twice.
    state, out = roll_up(state, candle_of([trade(2, T0 + MINUTE + S)]), (I.S1, I.M1))
    assert [c.interval for c in out] == [I.S1]


def test_a_base_candle_after_the_clock_closed_its_minute_revises_it() -> None:
    state, _ = roll_up(None, candle_of([trade(1, T0 + 10 * S)]), (I.S1, I.M1))
    state, (closed,) = roll_up_until(state, T0 + MINUTE, (I.S1, I.M1))
    late = candle_of([trade(2, T0 + 59 * S, p="12")])
    state, out = roll_up(state, late, (I.S1, I.M1))
    minute = [c for c in out if c.interval is I.M1]
    assert len(minute) == 1
    assert (minute[0].start_us, minute[0].revision) == (T0, closed.revision + 1)
    assert (minute[0].trades, minute[0].high, minute[0].close) == (2, 12, 12)


def test_the_book_asks_to_be_woken_after_the_lateness_and_only_live() -> None:
    state, _ = candle_book(None, candle_of([trade(1, T0 + 5 * S)]), LIVE)
    assert candle_book_close_at(state, LIVE) == T0 + MINUTE + 250_000
    state, none = candle_book_on_time(state, T0 + MINUTE + 249_999, LIVE)
    assert none == []
    state, closed = candle_book_on_time(state, T0 + MINUTE + 250_000, LIVE)
    assert [(c.interval, c.start_us) for c in closed] == [(I.M1, T0)]
    replay = CandleBookConfig((I.S1, I.M1), I.S1)  # event time only
    assert candle_book_close_at(state, replay) is None
