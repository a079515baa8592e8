"""Writes the Grafana dashboards in dashboards/grafana/dashboards/ from the panel list.

    python dashboards/build_dashboards.py

The JSON files are committed; a test checks they are up to date and that every
expression returns data from a real Prometheus scraping a running flow.
"""

from __future__ import annotations

import json
from pathlib import Path

SYMBOL = '{symbol=~"$symbol"}'

DASHBOARDS: dict[str, list[tuple[str, str, str]]] = {
    # uid: [(panel title, PromQL, unit)]
    "bpx-market-overview": [
        ("Best bid", f"bpx_book_best_bid{SYMBOL}", "none"),
        ("Best ask", f"bpx_book_best_ask{SYMBOL}", "none"),
        ("1 s close", 'bpx_candle_close{symbol=~"$symbol", interval="1s"}', "none"),
        (
            "Candles per second",
            f"sum by (symbol, interval) (rate(bpx_candles_total{SYMBOL}[1m]))",
            "ops",
        ),
        ("Mark price", f"bpx_mark_price{SYMBOL}", "none"),
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
        ("bookTicker mismatches", f"bpx_book_ticker_mismatches{SYMBOL}", "none"),
    ],
    "bpx-derivatives": [
        ("Premium (bps)", f"bpx_premium_bps{SYMBOL}", "none"),
        ("Funding rate", f"bpx_funding_rate{SYMBOL}", "percentunit"),
        ("Open interest (contracts)", f"bpx_open_interest_contracts{SYMBOL}", "none"),
        ("Open interest (quote)", f"bpx_open_interest_quote{SYMBOL}", "none"),
        ("Stale join sides", f"bpx_join_stale{SYMBOL}", "none"),
    ],
    "bpx-liquidations": [
        (
            "Liquidated notional per second",
            f"sum by (symbol, side) (rate(bpx_liquidation_notional_total{SYMBOL}[1m]))",
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
            f"sum by (status, origin) (rate(bpx_account_order_events_total{SYMBOL}[1m]))",
            "ops",
        ),
        (
            "Fills per second",
            f"sum by (symbol, liquidity) (rate(bpx_account_fills_total{SYMBOL}[1m]))",
            "ops",
        ),
        (
            "Fees (1 h)",
            f"sum by (symbol) (increase(bpx_account_fees_total{SYMBOL}[1h]))",
            "none",
        ),
        (
            "Fill slippage p90 (bps)",
            f"histogram_quantile(0.9, sum by (le, symbol) (rate(bpx_account_fill_slippage_bps_bucket{SYMBOL}[5m])))",
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
            "histogram_quantile(0.5, sum by (le, role) (rate(bpx_account_rfq_time_to_fill_seconds_bucket[5m])))",
            "s",
        ),
    ],
    "bpx-pipeline-health": [
        ("Frames per second", "sum by (stream) (rate(bpx_frames_total[1m]))", "ops"),
        ("Bytes per second", "rate(bpx_received_bytes_total[1m])", "Bps"),
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
            "histogram_quantile(0.99, sum by (le, flow) (rate(bpx_processing_lag_seconds_bucket[1m])))",
            "s",
        ),
        ("Records waiting for the flow", "bpx_source_pending_records", "none"),
        (
            "Book resyncs (15 m)",
            "sum by (stream) (increase(bpx_book_resyncs_total[15m]))",
            "none",
        ),
        (
            "Sink errors per second",
            "sum by (sink) (rate(bpx_sink_errors_total[5m])) or vector(0)",
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

# The metric whose symbols fill the $symbol variable.
SYMBOL_SOURCE = {"bpx-account": "bpx_account_open_orders"}


def dashboard(uid: str) -> dict[str, object]:
    symbols = f"label_values({SYMBOL_SOURCE.get(uid, 'bpx_book_best_bid')}, symbol)"
    panels = []
    for index, (title, expr, unit) in enumerate(DASHBOARDS[uid]):
        panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "bpx-prometheus"},
                "gridPos": {
                    "h": 8,
                    "w": 12,
                    "x": 12 * (index % 2),
                    "y": 8 * (index // 2),
                },
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{"refId": "A", "expr": expr, "legendFormat": "__auto"}],
            }
        )
    return {
        "uid": uid,
        "title": TITLES[uid],
        "schemaVersion": 39,
        "version": 1,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "tags": ["bpx-flows"],
        "templating": {
            "list": [
                {
                    "name": "symbol",
                    "type": "query",
                    "label": "Symbol",
                    "datasource": {"type": "prometheus", "uid": "bpx-prometheus"},
                    "query": symbols,
                    "definition": symbols,
                    "refresh": 2,
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                }
            ]
        },
        "panels": panels,
    }


def main() -> None:
    out = Path(__file__).resolve().parent / "grafana" / "dashboards"
    out.mkdir(parents=True, exist_ok=True)
    for uid in DASHBOARDS:
        text = json.dumps(dashboard(uid), indent=2) + "\n"
        (out / f"{uid}.json").write_text(text)


if __name__ == "__main__":
    main()
