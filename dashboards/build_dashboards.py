"""Writes the Grafana dashboards in dashboards/grafana/dashboards/ from the panel list.

    python dashboards/build_dashboards.py

Built with Grafana's own Python SDK (``grafana-foundation-sdk``): typed builders for
the dashboard, its ``$symbol`` variable, time-series panels and Prometheus queries.
The JSON files are committed; a test checks they are up to date and that every
expression returns data from a real Prometheus scraping a running flow. Rates use
``$__rate_interval`` (Grafana picks a window of at least four scrapes); ``increase``
over a titled window ("(5 m)") keeps that window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    common,
    dashboard as gd,
    prometheus,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    VariableRefresh,
)

SYMBOL = '{symbol=~"$symbol"}'
DATASOURCE = DataSourceRef(type_val="prometheus", uid="bpx-prometheus")

DASHBOARDS: dict[str, list[tuple[str, str, str]]] = {
    # uid: [(panel title, PromQL, unit)]
    "bpx-market-overview": [
        ("Best bid", f"bpx_book_best_bid{SYMBOL}", "none"),
        ("Best ask", f"bpx_book_best_ask{SYMBOL}", "none"),
        ("1 s close", 'bpx_candle_close{symbol=~"$symbol", interval="1s"}', "none"),
        (
            "Candles per second",
            f"sum by (symbol, interval) (rate(bpx_candles_total{SYMBOL}[$__rate_interval]))",
            "ops",
        ),
        ("Mark price", f"bpx_mark_price{SYMBOL}", "none"),
        (
            "Candle corrections (15 m)",
            f"sum by (symbol, interval) (increase(bpx_candle_corrections_total{SYMBOL}[15m]))",
            "none",
        ),
        ("Trades missing (not fetched back yet)", "sum(bpx_trades_missing)", "none"),
    ],
    "bpx-order-book-health": [
        ("Spread (bps)", f"bpx_book_spread_bps{SYMBOL}", "none"),
        ("Imbalance (top 5)", f"bpx_book_imbalance{SYMBOL}", "none"),
        (
            "Depth within 25 bps (quote)",
            'bpx_book_depth_quote{symbol=~"$symbol", band_bps="25"}',
            "none",
        ),
        ("Levels", f"bpx_book_levels{SYMBOL}", "none"),
        (
            "Integrity events (5 m)",
            f"sum by (symbol, kind) (increase(bpx_book_integrity_events_total{SYMBOL}[5m]))",
            "none",
        ),
        (
            "bookTicker mismatches (15 m)",
            f"sum by (symbol) (increase(bpx_book_ticker_mismatches_total{SYMBOL}[15m]))",
            "none",
        ),
    ],
    "bpx-derivatives": [
        ("Premium (bps)", f"bpx_premium_bps{SYMBOL}", "none"),
        ("Funding rate", f"bpx_funding_rate{SYMBOL}", "percentunit"),
        ("Open interest (contracts)", f"bpx_open_interest_contracts{SYMBOL}", "none"),
        ("Open interest (quote)", f"bpx_open_interest_quote{SYMBOL}", "none"),
        ("Stale join inputs", f"bpx_join_stale{SYMBOL}", "none"),
    ],
    "bpx-liquidations": [
        (
            "Liquidated notional per second",
            f"sum by (symbol, side) (rate(bpx_liquidation_notional_total{SYMBOL}[$__rate_interval]))",
            "none",
        ),
        (
            "Liquidations (5 m)",
            f"sum by (symbol, side) (increase(bpx_liquidations_total{SYMBOL}[5m]))",
            "none",
        ),
        ("Burst in progress", f"bpx_liquidation_burst_active{SYMBOL}", "none"),
        (
            "Bursts (1 h)",
            f"sum by (symbol, side, severity) (increase(bpx_liquidation_bursts_total{SYMBOL}[1h]))",
            "none",
        ),
    ],
    "bpx-account": [
        ("Open orders", f"bpx_account_open_orders{SYMBOL}", "none"),
        (
            "Order state changes per second",
            f"sum by (status, origin) (rate(bpx_account_order_events_total{SYMBOL}[$__rate_interval]))",
            "ops",
        ),
        (
            "Fills per second",
            f"sum by (symbol, liquidity) (rate(bpx_account_fills_total{SYMBOL}[$__rate_interval]))",
            "ops",
        ),
        (
            "Fees (1 h)",
            f"sum by (symbol) (increase(bpx_account_fees_total{SYMBOL}[1h]))",
            "none",
        ),
        (
            "Fill slippage p90 (bps)",
            f"histogram_quantile(0.9, sum by (le, symbol) (rate(bpx_account_fill_slippage_bps_bucket{SYMBOL}[$__rate_interval])))",
            "none",
        ),
        ("Position (contracts)", f"bpx_account_position_contracts{SYMBOL}", "none"),
        ("Exposure (quote)", f"bpx_account_position_exposure_quote{SYMBOL}", "none"),
        ("Unrealised PnL (quote)", f"bpx_account_unrealized_pnl_quote{SYMBOL}", "none"),
        ("Margin use", f"bpx_account_margin_use_ratio{SYMBOL}", "percentunit"),
        (
            "Distance to liquidation (bps)",
            f"bpx_account_liquidation_distance_bps{SYMBOL}",
            "none",
        ),
        (
            "Account alerts (1 h)",
            f"sum by (symbol, kind) (increase(bpx_account_alerts_total{SYMBOL}[1h]))",
            "none",
        ),
        (
            "RFQs ended (1 h)",
            "sum by (role, end) (increase(bpx_account_rfqs_total[1h]))",
            "none",
        ),
        (
            "RFQ time to fill p50",
            "histogram_quantile(0.5, sum by (le, role) (rate(bpx_account_rfq_time_to_fill_seconds_bucket[$__rate_interval])))",
            "s",
        ),
    ],
    "bpx-pipeline-health": [
        (
            "Frames per second",
            "sum by (stream) (rate(bpx_frames_total[$__rate_interval]))",
            "ops",
        ),
        ("Bytes per second", "rate(bpx_received_bytes_total[$__rate_interval])", "Bps"),
        (
            "Reconnects (15 m)",
            "sum by (cause) (increase(bpx_reconnects_total[15m]))",
            "none",
        ),
        (
            "Dead letters (15 m)",
            "sum by (reason) (increase(bpx_frames_rejected_total[15m]))",
            "none",
        ),
        (
            "Lag p99 (engine time to processing)",
            "histogram_quantile(0.99, sum by (le, flow) (rate(bpx_processing_lag_seconds_bucket[$__rate_interval])))",
            "s",
        ),
        ("Records waiting for the flow", "bpx_source_pending_records", "none"),
        ("Connections up", "bpx_connection_up", "none"),
        (
            "Seconds since a connection's last frame",
            "bpx_connection_last_frame_age_seconds",
            "s",
        ),
        (
            "Book resyncs (15 m)",
            "sum by (stream) (increase(bpx_book_resyncs_total[15m]))",
            "none",
        ),
        (
            "Sink errors per second",
            "sum by (sink) (rate(bpx_sink_errors_total[$__rate_interval])) or vector(0)",
            "ops",
        ),
    ],
}

TITLES = {
    "bpx-market-overview": "bpx-flows: market overview",
    "bpx-order-book-health": "bpx-flows: order-book health",
    "bpx-derivatives": "bpx-flows: derivatives",
    "bpx-liquidations": "bpx-flows: liquidations",
    "bpx-pipeline-health": "bpx-flows: pipeline health",
    "bpx-account": "bpx-flows: account",
}

# The metric whose symbols fill each dashboard's $symbol variable: one of the metrics
# its panels filter, so the list holds exactly the symbols that have data there.
SYMBOL_SOURCE = {
    "bpx-market-overview": "bpx_book_best_bid",
    "bpx-order-book-health": "bpx_book_spread_bps",
    "bpx-derivatives": "bpx_premium_bps",
    "bpx-liquidations": "bpx_liquidations_total",
    "bpx-account": "bpx_account_open_orders",
}


def _symbol_variable(metric: str) -> gd.QueryVariable:
    query = f"label_values({metric}, symbol)"
    return (
        gd.QueryVariable("symbol")
        .label("Symbol")
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def _panel(title: str, expr: str, unit: str) -> timeseries.Panel:
    query = prometheus.Dataquery().expr(expr).legend_format("__auto").ref_id("A")
    return (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .unit(unit)
        .height(8)
        .span(12)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(TooltipDisplayMode.MULTI)
            .sort(SortOrder.DESCENDING)
        )
        .with_target(query)
    )


def dashboard(uid: str) -> dict[str, Any]:
    """The dashboard ``uid`` as Grafana's JSON model."""
    board = (
        gd.Dashboard(TITLES[uid])
        .uid(uid)
        .tags(["bpx-flows"])
        .refresh("5s")
        .time("now-15m", "now")
    )
    if uid in SYMBOL_SOURCE:
        board = board.with_variable(_symbol_variable(SYMBOL_SOURCE[uid]))
    for title, expr, unit in DASHBOARDS[uid]:
        board = board.with_panel(_panel(title, expr, unit))
    built: dict[str, Any] = json.loads(
        JSONEncoder(sort_keys=True).encode(board.build())
    )
    return built


def main() -> None:
    out = Path(__file__).resolve().parent / "grafana" / "dashboards"
    out.mkdir(parents=True, exist_ok=True)
    for uid in DASHBOARDS:
        text = json.dumps(dashboard(uid), indent=2, sort_keys=True) + "\n"
        (out / f"{uid}.json").write_text(text)


if __name__ == "__main__":
    main()
