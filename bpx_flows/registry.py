"""Every flow by name, built from ``Settings``: what ``bpx-flows run FLOW`` runs.

    feed ─► <the flow's composite steps> ─┬─► out     (every output, alerts included)
                                          └─► alerts  (alerts only)

Step ids are fixed per flow, so a recovery directory written by one run resumes in the
next. ``python -m bytewax.run "flows.catalog:from_settings('run.toml')"`` runs a
settings file with Bytewax's own runner (live or endpoint sources need no parent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.connectors.backpack.streams import KlineInterval
from bpx_flows.flows.account import account_streams, track_account
from bpx_flows.flows.book import analyze_books, book_streams
from bpx_flows.flows.candles import CandleConfig, candle_streams, roll_candles
from bpx_flows.flows.derivatives import derivative_streams, join_mark_oi
from bpx_flows.flows.keys import Route
from bpx_flows.flows.liquidations import detect_bursts, liquidation_streams
from bpx_flows.flows.market import MarketConfig, market_outputs, market_streams
from bpx_flows.operators.account import AccountConfig
from bpx_flows.operators.book_state import BookConfig
from bpx_flows.operators.bursts import BurstConfig
from bpx_flows.operators.derivatives import DerivativesConfig
from bpx_flows.settings import Settings, load_settings

__all__ = ["build_flow", "from_settings", "market_config", "streams_for"]

Outputs = tuple[list[Stream[Any]], list[Stream[Any]]]  # (records, alerts)


def book_config(s: Settings) -> BookConfig:
    """The book operator's settings."""
    b = s.book
    return BookConfig(
        symbols=frozenset(s.symbols) if s.symbols else None,
        emit_every_us=int(b.every_ms * 1000),
        top_n=b.top_n,
        bands_bps=tuple(b.bands_bps),
        max_levels=b.max_levels,
        checksum=b.checksum,
    )


def candle_config(s: Settings) -> CandleConfig:
    """Candle settings; replays move the watermark by event time only."""
    return CandleConfig(
        intervals=tuple(KlineInterval(i) for i in s.candles.intervals),
        allowed_lateness_us=s.candles.lateness_ms * 1000,
        forward_fill=s.candles.fill,
        wall_clock=s.source.kind != "replay",
    )


def burst_config(s: Settings) -> BurstConfig:
    """The burst detector's settings."""
    b = s.bursts
    return BurstConfig(
        min_notional=b.min_notional, min_count=b.min_count, multiple=b.multiple
    )


def market_config(s: Settings) -> MarketConfig:
    """The four parts of ``market``."""
    return MarketConfig(
        book=book_config(s),
        candles=candle_config(s),
        derivatives=DerivativesConfig(),
        bursts=burst_config(s),
    )


def streams_for(s: Settings) -> list[str]:
    """The stream names a live source subscribes for this flow."""
    window = f"{s.book.window}." if s.book.window else ""
    by_flow: dict[str, Callable[[], list[str]]] = {
        "market": lambda: market_streams(s.symbols, market_config(s)),
        "book": lambda: book_streams(s.symbols, window),
        "candles": lambda: candle_streams(s.symbols, candle_config(s).intervals),
        "derivatives": lambda: derivative_streams(s.symbols),
        "liquidations": lambda: liquidation_streams(s.symbols),
        "account": lambda: account_streams(s.symbols, s.account.with_book),
        "tape": lambda: list(s.streams),
    }
    return by_flow[s.flow]()


def _parts(s: Settings, records: Stream[Any], route: Route | None) -> Outputs:
    if s.flow == "market":
        return market_outputs(records, market_config(s), route)
    if s.flow == "book":
        books = analyze_books("books", records, book_config(s), route)
        return [books.stats, books.integrity], []
    if s.flow == "candles":
        bars = roll_candles("roll_candles", records, candle_config(s), route)
        return [bars.candles, bars.integrity, bars.late], []
    if s.flow == "derivatives":
        views = join_mark_oi("join_mark_oi", records, DerivativesConfig(), route)
        return [views], []
    if s.flow == "liquidations":
        bursts = detect_bursts("detect_bursts", records, burst_config(s), route)
        return [bursts.stats], [bursts.alerts]
    if s.flow == "account":
        levels = tuple(s.account.margin_alerts)
        config = AccountConfig(margin_alert_levels=levels)
        stats = None
        if s.account.with_book:
            stats = analyze_books("books", records, book_config(s), route).stats
        account = track_account("account", records, config, stats, route)
        return [account.views], [account.alerts]
    return [records], []  # tape: every record


def build_flow(
    s: Settings,
    source: Source[Any],
    out: Sink[Any],
    alerts: Sink[Any],
    record_file: Sink[Any] | None = None,
    route: Route | None = None,
) -> Dataflow:
    """The flow named by ``s.flow`` between ``source`` and the sinks.

    ``record_file``, a keyed sink such as ``ResumableJsonLinesSink``, also gets every
    output (as ``("out", record)``), for exactly-once files with recovery.
    ``route`` maps a symbol to the key its state is stored under (see
    ``flows.keys``).
    """
    flow = Dataflow(s.flow)
    records = op.input("feed", flow, source)
    outputs, alert_streams = _parts(s, records, route)
    everything = outputs + alert_streams
    merged = everything[0] if len(everything) == 1 else op.merge("all", *everything)
    op.output("out", merged, out)
    if record_file is not None:
        keyed = op.key_on("key_for_file", merged, lambda _record: "out")
        op.output("out_file", keyed, record_file)
    if alert_streams:
        alert_merged = (
            alert_streams[0]
            if len(alert_streams) == 1
            else op.merge("all_alerts", *alert_streams)
        )
        op.output("alerts", alert_merged, alerts)
    return flow


def from_settings(path: str) -> Dataflow:
    """A settings file's flow with console sinks, for ``python -m bytewax.run``."""
    from bpx_flows.connectors.sinks import LineSink
    from bpx_flows.connectors.sinks.describe import describe
    from bpx_flows.runner import source_for

    settings = load_settings(path)
    return build_flow(
        settings,
        source_for(settings, None),
        LineSink(describe),
        LineSink(describe, prefix="ALERT "),
    )
