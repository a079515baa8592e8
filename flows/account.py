"""Our own account beside the market: orders, fills, positions, RFQs, and alerts.

    feed ─► account_records ─► by_symbol ─► track_account ─► split ─► views
                                    ▲                              └─► alerts
    feed ─► analyze_books ─► stats ─┘   (optional: mids for fill slippage)

Input: the connector's records of the signed ``account.*`` streams, ``markPrice`` (to
revalue positions between events) and, with a book, the book flow's stats. Keyed by
symbol, so an order's lifecycle, the position and the mid used for a fill's slippage
live on one worker. ``python -m bytewax.run flows.account:flow`` runs it live with the
key in ``BPX_API_SECRET`` (or ``BPX_API_SECRET_FILE``) for ``BPX_SYMBOLS`` (default:
every symbol).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.flows.batching import stateful_steps
from bpx_flows.flows.book import BookSettings, analyze_books, book_streams
from bpx_flows.flows.keys import Route
from bpx_flows.flows.spec import FlowContext, FlowSpec, Outputs, Section, lazy_flow
from bpx_flows.operators.account import (
    AccountConfig,
    AutoCloseAlert,
    SymbolAccount,
    account_symbol,
    is_alert,
    step,
)
from bpx_flows.operators.book_state import BookConfig
from bpx_flows.operators.orders import OrderFill, OrderState
from bpx_flows.operators.positions import MarginAlert, PositionView
from bpx_flows.operators.rfqs import RfqOutcome

__all__ = [
    "SPEC",
    "AccountOut",
    "AccountSettings",
    "account_streams",
    "build",
    "track_account",
]


class AccountSettings(Section, frozen=True, kw_only=True):
    """``[account]``: alert levels, and whether to keep books for fill slippage."""

    NAME = "account"

    margin_alerts: Annotated[
        list[Decimal],
        msgspec.Meta(
            max_length=16,
            description="margin use (maintenance / equity) levels that alert",
        ),
    ] = msgspec.field(default_factory=lambda: [Decimal("0.8"), Decimal("0.9")])
    with_book: Annotated[
        bool,
        msgspec.Meta(description="keep the markets' books: fill slippage vs the mid"),
    ] = False

    def problems(self) -> Iterator[tuple[str, str]]:
        """Levels must be finite fractions above zero (margin use can pass 1)."""
        for level in self.margin_alerts:
            if not level.is_finite() or not Decimal(0) < level <= Decimal(10):
                yield "margin_alerts", f"levels must be in (0, 10], got {level}"
                return

    def config(self) -> AccountConfig:
        """The account operator's configuration."""
        return AccountConfig(margin_alert_levels=tuple(self.margin_alerts))


def account_streams(symbols: list[str] | None, with_book: bool = False) -> list[str]:
    """The signed account streams (per symbol, or all), marks, and book streams."""
    kinds = ("account.orderUpdate", "account.positionUpdate")
    if not symbols:
        return [*kinds, "account.rfqUpdate"]
    names = [f"{kind}.{s}" for s in symbols for kind in kinds]
    names.append("account.rfqUpdate")  # RFQs trade on their own *_RFQ symbols
    names += [f"markPrice.{s}" for s in symbols if s.endswith("_PERP")]
    if with_book:
        names += book_streams(symbols)
    return names


def account_records(key: Route, batch: list[Any]) -> list[tuple[str, Any]]:
    """``(key(symbol), record)`` for the records the account operator uses."""
    return [
        (key(symbol), record)
        for record in batch
        if (symbol := account_symbol(record)) is not None
    ]


def _track(
    config: AccountConfig, state: SymbolAccount | None, record: Any
) -> tuple[SymbolAccount, list[Any]]:
    return step(state, record, config)


@dataclass(frozen=True)
class AccountOut:
    """The account step's outputs."""

    views: Stream[Any]  # OrderState, OrderFill, PositionView, RfqOutcome
    alerts: Stream[Any]  # AutoCloseAlert, MarginAlert


@operator
def track_account(
    step_id: str,
    records: Stream[Any],
    config: AccountConfig,
    book_stats: Stream[Any] | None = None,
    route: Route | None = None,
) -> AccountOut:
    """Connector records (and optional book stats) in; account views and alerts out."""
    inputs = (
        records if book_stats is None else op.merge("with_mids", records, book_stats)
    )
    # One call per batch selects and keys the records (see flows.batching).
    select = functools.partial(account_records, route or str)
    keyed: Any = op.flat_map_batch("account_records_by_symbol", inputs, select)
    tracked = stateful_steps("track", keyed, functools.partial(_track, config))
    unkeyed = op.map("unkey", tracked, lambda key_output: key_output[1])
    split = op.branch("split", unkeyed, is_alert)
    return AccountOut(split.falses, split.trues)


def build(
    source: Source[Any],
    sink: Sink[Any],
    alert_sink: Sink[Any],
    config: AccountConfig | None = None,
    book: BookConfig | None = None,
) -> Dataflow:
    """The account flow; with ``book``, the book flow runs too and prices fills."""
    flow = Dataflow("account")
    records = op.input("feed", flow, source)
    stats = None
    if book is not None:
        books = analyze_books("books", records, book)
        stats = books.stats
    out = track_account("account", records, config or AccountConfig(), stats)
    op.output("views", out.views, sink)
    op.output("alerts", out.alerts, alert_sink)
    return flow


def _streams(context: FlowContext) -> list[str]:
    with_book = context.section(AccountSettings).with_book
    return account_streams(list(context.symbols), with_book)


def _wire(records: Stream[Any], context: FlowContext) -> Outputs:
    settings = context.section(AccountSettings)
    stats = None
    if settings.with_book:
        book = context.section(BookSettings).config(context.symbols)
        stats = analyze_books("books", records, book, context.route).stats
    account = track_account("account", records, settings.config(), stats, context.route)
    return [account.views], [account.alerts]


def _check(context: FlowContext) -> Iterator[tuple[str, str]]:
    if context.section(AccountSettings).with_book and not context.symbols:
        yield "account.with_book", "needs symbols: a book is kept per named market"


SPEC = FlowSpec(
    name="account",
    help="your orders, fills, positions and RFQs from the signed private streams",
    sections=(AccountSettings, BookSettings),
    streams=_streams,
    wire=_wire,
    produces=(
        OrderState,
        OrderFill,
        PositionView,
        RfqOutcome,
        MarginAlert,
        AutoCloseAlert,
    ),
    symbols="optional",
    check=_check,
)


# `flow`, built when Bytewax asks for it (python -m bytewax.run), not at import.
__getattr__ = lazy_flow(SPEC, "")
