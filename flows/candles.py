"""Trades into event-time candles on an event clock, checked against klines.

    feed ─► by_symbol ─► check_trade_ids ─► roll_base ─► candle_book ─► candles
    check_trade_ids ─► gaps ─► candle_book (holds their windows), integrity
    roll_base ─► late ─► fetched back? ─► candle_book (corrections) / late_trades
    klines_by_symbol ─► split_history ─► live klines + candles ─► check_klines
                                      ─► integrity
                     split_history ─► fetched at start (--backfill) ─►
                                      historical_candles ─► candles
    feed ─► backfill reports (TradeBackfill) ─► integrity

The base window (the shortest interval, 1 s by default) is a tumbling window aligned
to the epoch on the trade's engine time ``T`` (``operators.candles.windows``, in
integer microseconds; until session 15 Bytewax's ``fold_window`` over an
``EventClock``, with the same results): a window closes when the watermark (newest
``T`` minus the allowed lateness) passes its end, and later trades go to
``late_trades``. Longer intervals are rolled up from the closed base candles
(``operators.candles.roll_up``), so each trade is folded once whatever the number of
intervals. With ``wall_clock=False`` (replays, tests) the watermark moves only with
event time, so a replay gives the same candles and the same late trades every time;
live, the wall clock also advances it, so quiet windows close on time, and a longer
candle whose last base window had no trade closes by the clock ``CLOCK_MARGIN_US``
after its end plus the lateness (a base candle that still comes for it then revises
it). The spec's ``wakes`` (``wake_times``) tell a live source when these closes come
due, so a worker asleep in the source waiting for frames wakes for them.

Trades the connector fetched back after a gap (``BackfilledTrade``, with
``source.backfill``) fold like any other while their window is open; after it closed,
``candle_book`` emits every candle they change again with the next ``revision``
(``operators.candles.candle_book``), for windows within ``revise_horizon_us`` of the
gap.

With ``--backfill 1h`` the connector fetches the hour before the start from
``/api/v1/klines`` for every kline stream, and each closed kline becomes a
``HistoricalCandle`` on the candle output (the exchange's values, not ours).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Stream, operator

from ..connectors.backpack.backfill import BackfilledTrade, TradeBackfill
from ..connectors.backpack.kline_history import HistoricalKline
from ..connectors.backpack.klines import FIXED_INTERVAL_US
from ..connectors.backpack.streams import (
    KlineInterval,
    parse_stream,
)
from ..connectors.backpack.wire import Frame, Kline, Trade
from ..connectors.clock import WakeTimes, now_us
from ..connectors.connection import Record as SourceRecord
from ..connectors.errors import ConfigError
from ..operators.candles import (
    Candle,
    CandleBookConfig,
    HistoricalCandle,
    KlineMismatch,
    KlineResolved,
    TradeGap,
    candle_book,
    candle_book_close_at,
    candle_book_on_time,
    check_ids,
    check_klines,
    historical_candle,
)
from ..operators.candles.windows import (
    WindowsConfig,
    windows_close_at,
    windows_on_eof,
    windows_on_time,
    windows_trade,
)
from .batching import keyed_frames, stateful_steps
from .keys import Route
from .spec import FlowContext, FlowSpec, Outputs, Section

__all__ = [
    "SPEC",
    "CandleConfig",
    "CandleOut",
    "CandleSettings",
    "candle_streams",
    "duration_s",
    "roll_candles",
]

_DAY_US = 86_400_000_000
DEFAULT_INTERVALS = (KlineInterval.S1, KlineInterval.M1)


@dataclass(frozen=True, slots=True)
class CandleConfig:
    """What the candle flow computes.

    Attributes:
        intervals: candle intervals (any kline interval); the shortest fixed one is
            the base window and must divide the others (calendar months included).
        allowed_lateness_us: how far behind the newest trade a trade may be and still
            count, microseconds.
        forward_fill: emit empty candles (close carried, volume 0) for quiet intervals.
        wall_clock: let the wall clock advance the watermark (live); ``False`` makes it
            move with event time only (deterministic replays).
        revise_horizon_us: after a gap in trade ids, its windows are kept this long
            (engine time) so trades fetched back can correct them; 0: no
            corrections.
    """

    intervals: tuple[KlineInterval, ...] = DEFAULT_INTERVALS
    allowed_lateness_us: int = 2_000_000
    forward_fill: bool = False
    wall_clock: bool = True
    revise_horizon_us: int = 360_000_000

    def __post_init__(self) -> None:
        if self.revise_horizon_us < 0:
            msg = f"revision horizon must be >= 0 us, got {self.revise_horizon_us}"
            raise ConfigError(msg)
        if self.allowed_lateness_us < 0:
            msg = f"allowed lateness must be >= 0 us, got {self.allowed_lateness_us}"
            raise ConfigError(msg)
        if not any(i in FIXED_INTERVAL_US for i in self.intervals):
            msg = "candle intervals need at least one fixed-length interval (1s ... 1w)"
            raise ConfigError(msg)
        base = FIXED_INTERVAL_US[self.base]
        # A month is a whole number of days, so a base that divides a day divides it.
        uneven = [
            i.value for i in self.intervals if FIXED_INTERVAL_US.get(i, _DAY_US) % base
        ]
        if uneven:
            msg = f"intervals {uneven} are not multiples of the base {self.base.value}"
            raise ConfigError(msg)

    @property
    def base(self) -> KlineInterval:
        """The shortest fixed interval: the Bytewax window."""
        fixed = [i for i in self.intervals if i in FIXED_INTERVAL_US]
        return min(fixed, key=FIXED_INTERVAL_US.__getitem__)


def closed_kline_of(record: Any) -> tuple[KlineInterval, Kline] | None:
    """``(interval, kline)`` of a closed exchange kline."""
    if isinstance(record, Frame) and type(record.data) is Kline and record.data.X:
        interval = parse_stream(record.stream).interval
        if interval is not None:
            return interval, record.data
    return None


def _book(config: CandleBookConfig, state: Any, item: Any) -> tuple[Any, list[Candle]]:
    return candle_book(state, item, config)


# Live: how long after a base window may close (its end plus the lateness) the clock
# closes a longer candle ending with it. The base candle normally reaches the
# candle book within milliseconds of its close; one that comes later revises.
CLOCK_MARGIN_US = 50_000


def _close_at(config: CandleBookConfig, state: Any) -> int | None:
    return candle_book_close_at(state, config)


def _on_time(
    config: CandleBookConfig, state: Any, now_us: int
) -> tuple[Any, list[Any]]:
    return candle_book_on_time(state, now_us, config)


def _backfill_reports(batch: list[Any]) -> list[TradeBackfill]:
    return [r for r in batch if type(r) is TradeBackfill]


def _is_history(kv: tuple[str, Frame[Any]]) -> bool:
    return type(kv[1].data) is HistoricalKline


def _historical(kv: tuple[str, Frame[HistoricalKline]]) -> HistoricalCandle | None:
    frame = kv[1]
    interval = parse_stream(frame.stream).interval
    return None if interval is None else historical_candle(interval, frame.data)


def _is_fetched(kv: tuple[str, Any]) -> bool:
    return type(kv[1]) is BackfilledTrade


def _check(state: Any, item: Any) -> tuple[Any, list[Any]]:
    return check_klines(state, item)


def candle_streams(
    symbols: list[str], intervals: tuple[KlineInterval, ...]
) -> list[str]:
    """Trades, and the exchange's klines for the cross-check."""
    names = []
    for symbol in symbols:
        names.append(f"trade.{symbol}")
        names.extend(f"kline.{i.value}.{symbol}" for i in intervals)
    return names


@dataclass(frozen=True)
class CandleOut:
    """The candle step's outputs."""

    candles: Stream[Candle | HistoricalCandle]
    integrity: Stream[TradeGap | KlineMismatch | KlineResolved | TradeBackfill]
    late: Stream[Trade]


@operator
def roll_candles(
    step_id: str,
    records: Stream[SourceRecord],
    config: CandleConfig,
    route: Route | None = None,
) -> CandleOut:
    """Connector records in; candles, integrity events and late trades out."""
    keyed = keyed_frames(
        "by_symbol", records, (Trade, BackfilledTrade), route, events=True
    )
    checked = stateful_steps("check_trade_ids", keyed, check_ids)
    split = op.branch("split_gaps", checked, lambda kv: isinstance(kv[1], Trade))
    only_trades: Any = split.trues
    windows = _windows_config(config)
    now = now_us if config.wall_clock else _frozen_now_us
    closed_or_late = stateful_steps(
        "roll_base",
        only_trades,
        functools.partial(_window_trade, windows, now),
        (windows_close_at, functools.partial(_windows_on_time, windows))
        if config.wall_clock
        else None,
        functools.partial(_windows_on_eof, windows),
    )
    base_or_late = op.branch(
        "base_or_late", closed_or_late, lambda kv: type(kv[1]) is Candle
    )
    base = base_or_late.trues
    fetched = op.branch("fetched_back", base_or_late.falses, _is_fetched)
    book = _book_config(config)
    into_book = op.merge("closed_and_fetched", base, fetched.trues, split.falses)
    # Live, the clock also closes longer candles whose last base window had no
    # trades (a quiet market): see CandleBookConfig.close_after_us.
    clock = (
        (
            functools.partial(_close_at, book),
            functools.partial(_on_time, book),
        )
        if book.close_after_us is not None
        else None
    )
    candles = stateful_steps(
        "candle_book", into_book, functools.partial(_book, book), clock
    )
    # Klines, live and fetched at start (few): the history is candles already.
    kline_frames = keyed_frames(
        "klines_by_symbol", records, (Kline, HistoricalKline), route
    )
    split_klines = op.branch("split_history", kline_frames, _is_history)
    history = op.filter_map("historical_candles", split_klines.trues, _historical)
    candle_out = op.merge(
        "with_history", op.map("unkey_candles", candles, lambda kv: kv[1]), history
    )
    late = op.map("unkey_late", fetched.falses, lambda kv: kv[1])
    keyed_klines = op.filter_map_value(
        "closed_klines", split_klines.falses, closed_kline_of
    )
    both = op.merge("ours_and_theirs", candles, keyed_klines)
    mismatches = stateful_steps("check_klines", both, _check)
    integrity = op.merge("integrity_events", split.falses, mismatches)
    reports = op.flat_map_batch("backfill_reports", records, _backfill_reports)
    integrity_out = op.merge(
        "with_backfills",
        op.map("unkey_integrity", integrity, lambda kv: kv[1]),
        reports,
    )
    return CandleOut(candle_out, integrity_out, late)


def _windows_config(config: CandleConfig) -> WindowsConfig:
    """The base windows: the shortest interval, on the trades' engine time."""
    base = config.base
    return WindowsConfig(base, FIXED_INTERVAL_US[base], config.allowed_lateness_us)


def _frozen_now_us() -> int:
    return 0  # replays: the watermark moves with event time only


def _window_trade(
    config: WindowsConfig, now: Callable[[], int], state: Any, trade: Trade
) -> tuple[Any, list[Any]]:
    return windows_trade(state, trade, now(), config)


def _windows_on_time(
    config: WindowsConfig, state: Any, now: int
) -> tuple[Any, list[Any]]:
    return windows_on_time(state, now, config)


def _windows_on_eof(config: WindowsConfig, state: Any) -> tuple[Any, list[Any]]:
    return windows_on_eof(state, config)


def _book_config(config: CandleConfig) -> CandleBookConfig:
    """The corrections' memory for these candles.

    A replay hands Bytewax thousands of lines at once, and the closed candles of a
    whole batch may reach the book before the trades fetched back within it (they
    take another path): replays keep every window of the horizon, live runs (small
    batches) only the last 30 s unless a gap holds more.
    """
    return CandleBookConfig(
        config.intervals,
        config.base,
        config.forward_fill,
        horizon_us=config.revise_horizon_us,
        keep_us=30_000_000 if config.wall_clock else config.revise_horizon_us,
        close_after_us=(
            config.allowed_lateness_us + CLOCK_MARGIN_US if config.wall_clock else None
        ),
    )


_CANDLES = CandleConfig()  # the defaults, declared once, which the settings share


class CandleSettings(Section, frozen=True, kw_only=True):
    """``[candles]``: what the candle flow computes (see ``CandleConfig``)."""

    NAME = "candles"

    intervals: Annotated[
        list[str],
        msgspec.Meta(
            min_length=1,
            max_length=16,
            description="candle intervals; the shortest divides the others",
        ),
    ] = msgspec.field(default_factory=lambda: [i.value for i in DEFAULT_INTERVALS])
    lateness_ms: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=3_600_000,
            description="how late a trade may be and still count, ms",
        ),
    ] = _CANDLES.allowed_lateness_us // 1000
    fill: Annotated[
        bool, msgspec.Meta(description="forward-fill quiet intervals (volume 0)")
    ] = _CANDLES.forward_fill
    revise_s: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=86_400,
            description="after a trade gap, how long its candles can be corrected by "
            "trades fetched back, s (0: never)",
        ),
    ] = _CANDLES.revise_horizon_us // 1_000_000
    backfill: Annotated[
        str,
        msgspec.Meta(
            pattern=r"^(|0|[1-9][0-9]{0,5}[smhd])$",
            description="live: at start, fetch this much candle history from the "
            "exchange's klines, e.g. 1h (30 requests a minute)",
        ),
    ] = ""

    def problems(self) -> Iterator[tuple[str, str]]:
        """Unknown intervals, and combinations the windowing cannot roll up."""
        known = {i.value for i in KlineInterval}
        for text in self.intervals:
            if text not in known:
                names = ", ".join(i.value for i in KlineInterval)  # shortest first
                yield "intervals", f"{text!r} is not an interval; choose from {names}"
                return
        try:
            self.config(replay=False)
        except ValueError as exc:
            yield "intervals", str(exc)
        if duration_s(self.backfill) > MAX_BACKFILL_S:
            yield "backfill", f"{self.backfill!r} is more than 7 days"

    def config(self, *, replay: bool) -> CandleConfig:
        """The candle configuration; replays move the watermark by event time only."""
        return CandleConfig(
            intervals=tuple(KlineInterval(i) for i in self.intervals),
            allowed_lateness_us=self.lateness_ms * 1000,
            forward_fill=self.fill,
            wall_clock=not replay,
            revise_horizon_us=self.revise_s * 1_000_000,
        )


MAX_BACKFILL_S = 7 * 86_400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def duration_s(text: str) -> int:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"2d"`` in seconds; ``""`` and ``"0"`` are 0."""
    if text in ("", "0"):
        return 0
    return int(text[:-1]) * _UNITS[text[-1]]


def wake_times(config: CandleConfig) -> WakeTimes | None:
    """When this flow's windows close by the wall clock, live (none in replays).

    A base window closes once the watermark passes its end: its end plus the
    lateness plus the newest trade's delivery lag (engine time to receive), a few
    milliseconds, unknown in advance; a longer candle whose last base window had no
    trade closes ``CLOCK_MARGIN_US`` after that. Wakes at lags of 1 to 40 ms and at
    the margin hold a close within a few ms of its time, at most seven more loop
    passes per base window on a quiet feed.
    """
    if not config.wall_clock:
        return None
    after = config.allowed_lateness_us
    lags = (1_000, 3_000, 6_000, 12_000, 25_000, 40_000, CLOCK_MARGIN_US + 500)
    return WakeTimes(FIXED_INTERVAL_US[config.base], tuple(after + lag for lag in lags))


def _wakes(context: FlowContext) -> WakeTimes | None:
    return wake_times(context.section(CandleSettings).config(replay=context.replay))


def _history_s(context: FlowContext) -> float:
    return float(duration_s(context.section(CandleSettings).backfill))


def _streams(context: FlowContext) -> list[str]:
    config = context.section(CandleSettings).config(replay=context.replay)
    return candle_streams(list(context.symbols), config.intervals)


def _wire(records: Stream[SourceRecord], context: FlowContext) -> Outputs:
    config = context.section(CandleSettings).config(replay=context.replay)
    bars = roll_candles("roll_candles", records, config, context.route)
    return [bars.candles, bars.integrity, bars.late], []


SPEC = FlowSpec(
    name="candles",
    example_symbols=("SOL_USDC",),
    help="event-time OHLCV candles, late trades, trade-id gaps, kline checks",
    sections=(CandleSettings,),
    streams=_streams,
    wire=_wire,
    produces=(
        Candle,
        HistoricalCandle,
        TradeGap,
        KlineMismatch,
        KlineResolved,
        TradeBackfill,
        Trade,
    ),
    history_s=_history_s,
    wakes=_wakes,
)
