"""Everything at once on one connector: books, candles, derivatives and liquidations.

    feed ─┬─► book flow steps ─────────► book stats / integrity
          ├─► candle flow steps ───────► candles / integrity / late trades
          ├─► derivatives join ────────► views
          └─► liquidation bursts ──────► liquidation stats / burst alerts

Each part is the same wiring as its own flow file, built on the shared input stream
(one WebSocket connection group feeds all four), with the same settings sections.
Perps also get the derivatives and liquidation parts. With ``account.in_market``
the account part joins them (the key's signed streams on the same connections).
``python -m bytewax.run bpx_flows.entry:market`` runs it live for ``BPX_SYMBOLS``
(default SOL_USDC_PERP).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bytewax.dataflow import Stream

from ..connectors.connection import Record as SourceRecord
from ..operators.book_state import BookConfig
from ..operators.bursts import BurstConfig
from ..operators.derivatives import DerivativesConfig
from . import account, book, candles, derivatives, liquidations
from .keys import Route
from .spec import FlowContext, FlowSpec, Outputs

__all__ = ["SPEC", "MarketConfig", "market_outputs", "market_streams"]

_PARTS = (book.SPEC, candles.SPEC, derivatives.SPEC, liquidations.SPEC)


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """The settings of each part (for tests and benchmarks that wire it by hand)."""

    book: BookConfig = field(default_factory=lambda: book.BookSettings().config(()))
    candles: candles.CandleConfig = field(default_factory=candles.CandleConfig)
    derivatives: DerivativesConfig = field(default_factory=DerivativesConfig)
    bursts: BurstConfig = field(default_factory=BurstConfig)


def market_streams(symbols: list[str]) -> list[str]:
    """Every stream the four parts need at their default settings."""
    return _streams(FlowContext(symbols=tuple(symbols)))


def _streams(context: FlowContext) -> list[str]:
    perps = tuple(s for s in context.symbols if s.endswith("_PERP"))
    names: list[str] = []
    for part in _PARTS:
        symbols = perps if part.markets == "perp" else context.symbols
        if context.symbols and not symbols:
            continue  # only spot markets named: no perp part subscribes anything
        names += part.streams(_with_symbols(context, symbols))
    if context.section(account.AccountSettings).in_market:
        names += account.account_streams(list(context.symbols))
    return list(dict.fromkeys(names))


def _with_symbols(context: FlowContext, symbols: tuple[str, ...]) -> FlowContext:
    return dataclasses.replace(context, symbols=symbols)


def market_outputs(
    records: Stream[SourceRecord], config: MarketConfig, route: Route | None = None
) -> tuple[list[Stream[Any]], list[Stream[Any]]]:
    """The four parts on one input from explicit configurations."""
    books = book.analyze_books("books", records, config.book, route)
    bars = candles.roll_candles("candles", records, config.candles, route)
    views = derivatives.join_mark_oi("join_mark_oi", records, config.derivatives, route)
    bursts = liquidations.detect_bursts("detect_bursts", records, config.bursts, route)
    outputs = [
        books.stats,
        books.integrity,
        bars.candles,
        bars.integrity,
        views,
        bursts.stats,
    ]
    return outputs, [bursts.alerts]


def _wire(records: Stream[SourceRecord], context: FlowContext) -> Outputs:
    config = MarketConfig(
        book=context.section(book.BookSettings).config(context.symbols),
        candles=context.section(candles.CandleSettings).config(replay=context.replay),
        bursts=context.section(liquidations.BurstSettings).config(),
    )
    outputs, alerts = market_outputs(records, config, context.route)
    settings = context.section(account.AccountSettings)
    if settings.in_market:
        kept = config.book if settings.with_book else None  # fills priced vs the mid
        tracked = account.track_account(
            "account", records, settings.config(), kept, context.route
        )
        outputs.append(tracked.views)
        alerts.append(tracked.alerts)
    return outputs, alerts


SPEC = FlowSpec(
    name="market",
    example_symbols=("SOL_USDC_PERP",),
    help="books + candles + derivatives + liquidations on one connector",
    sections=tuple(
        dict.fromkeys(s for part in (*_PARTS, account.SPEC) for s in part.sections)
    ),
    streams=_streams,
    wire=_wire,
    produces=tuple(
        dict.fromkeys(t for part in (*_PARTS, account.SPEC) for t in part.produces)
    ),
    history_s=candles.SPEC.history_s,  # --backfill: the candle part's history
    wakes=candles.SPEC.wakes,  # the candle part's windows close on time
)
