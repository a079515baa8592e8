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
import os
from dataclasses import dataclass
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream, operator
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.connectors.backpack.streams import parse_streams
from bpx_flows.connectors.sinks import LineSink
from bpx_flows.connectors.sinks.describe import describe
from bpx_flows.connectors.source import BackpackSource
from bpx_flows.flows.batching import stateful_steps
from bpx_flows.flows.book import analyze_books, book_streams
from bpx_flows.flows.keys import Route
from bpx_flows.operators.account import (
    AccountConfig,
    SymbolAccount,
    account_symbol,
    is_alert,
    step,
)
from bpx_flows.operators.book_state import BookConfig

__all__ = ["AccountOut", "account_streams", "build", "flow", "track_account"]


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


def _default_flow() -> Dataflow:
    symbols = [s.strip() for s in os.environ.get("BPX_SYMBOLS", "").split(",")]
    streams = parse_streams(account_streams([s for s in symbols if s]))
    source = BackpackSource.from_env(streams)
    return build(source, LineSink(describe), LineSink(describe, prefix="ALERT "))


flow = _default_flow()
