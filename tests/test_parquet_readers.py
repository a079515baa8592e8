"""``--parquet DIR`` as users read it: polars, pyarrow, pandas and DuckDB, every kind.

Flows replay recordings with ``--parquet DIR --out FILE``; every kind's dataset must
read, as written, with each of the four tools, hold exactly the records of ``--out``
(counted by kind, compared by value on the candles), and give every tool the same
rows.
"""

from __future__ import annotations

import collections
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from tests.cli import run_cli
from tests.scenarios import write_scenario

pytestmark = pytest.mark.e2e

SHIPPED = Path(__file__).parent.parent / "data" / "sessions" / "sim-session.jsonl.gz"


def _replay(flow: list[str], recording: Path, tmp_path: Path) -> tuple[Path, Path]:
    root, out = tmp_path / "parquet", tmp_path / "out.jsonl"
    result = run_cli(
        *["run", *flow, "--replay", str(recording), "--workers", "2"],
        *["--parquet", str(root), "--out", str(out), "--quiet"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root, out


def _kind(record: dict[str, Any]) -> str:
    """The dataset a JSON record belongs to, told by its fields."""
    keys = set(record)
    by_fields = [
        ("candle", {"interval", "open", "vwap"}),
        ("book_stats", {"best_bid", "bands"}),
        ("book_integrity", {"kind", "detail", "stream"}),
        ("trade_gap", {"first_missing"}),
        ("kline_mismatch", {"ours", "theirs"}),
        ("derivatives_view", {"premium_bps"}),
        ("liquidation_stats", {"windows", "notional"}),
        ("burst_alert", {"burst_id"}),
        ("order_fill", {"slippage_bps"}),
        ("order_state", {"open_orders"}),
        ("position_view", {"margin_use", "exposure"}),
        ("rfq_outcome", {"rfq_id"}),
        ("margin_alert", {"level", "margin_use"}),
        ("auto_close_alert", {"origin", "order_id"}),
    ]
    return next(kind for kind, fields in by_fields if fields <= keys)


def _read_every_way(dataset: Path) -> dict[str, list[dict[str, Any]]]:
    glob = str(dataset / "**" / "*.parquet")
    return {
        "polars": pl.read_parquet(glob, hive_partitioning=True).to_dicts(),
        "pyarrow": pq.read_table(dataset).to_pylist(),
        "pandas": pd.read_parquet(dataset).to_dict("records"),
        "duckdb": [
            dict(zip([c[0] for c in cursor.description], row, strict=True))
            for cursor in [
                duckdb.sql(
                    f"select * from read_parquet('{glob}', hive_partitioning = true)"
                )
            ]
            for row in cursor.fetchall()
        ],
    }


def _check(root: Path, out: Path) -> collections.Counter[str]:
    records = [json.loads(line) for line in out.read_text().splitlines()]
    expected = collections.Counter(_kind(r) for r in records)
    assert sorted(p.name for p in root.iterdir()) == sorted(expected)
    for kind, count in expected.items():
        tables = _read_every_way(root / kind)
        for tool, rows in tables.items():
            assert len(rows) == count, f"{kind} read by {tool}"
            symbols = {str(row["symbol"]) for row in rows}
            wanted = {r["symbol"] for r in records if _kind(r) == kind}
            assert symbols == wanted, f"{kind} read by {tool}"
    candles = [r for r in records if _kind(r) == "candle"]
    if candles:
        want = sorted((c["symbol"], Decimal(c["close"])) for c in candles)
        for tool, rows in _read_every_way(root / "candle").items():
            got = sorted((str(r["symbol"]), Decimal(str(r["close"]))) for r in rows)
            assert got == want, tool
    return expected


def test_the_market_flow_writes_every_kind_every_tool_reads(tmp_path: Path) -> None:
    kinds = _check(*_replay(["market"], SHIPPED, tmp_path))
    assert {"candle", "book_stats", "derivatives_view", "liquidation_stats"} <= set(
        kinds
    )


def test_the_account_flow_and_alerts_write_every_kind_every_tool_reads(
    tmp_path: Path,
) -> None:
    kinds = _check(*_replay(["account"], SHIPPED, tmp_path / "shipped"))
    assert {"order_state", "order_fill", "position_view", "rfq_outcome"} <= set(kinds)
    scenario = write_scenario(tmp_path / "scenario.jsonl.gz")
    kinds = _check(*_replay(["account"], scenario, tmp_path / "margin"))
    assert "margin_alert" in kinds
    kinds = _check(*_replay(["liquidations"], scenario, tmp_path / "bursts"))
    assert "burst_alert" in kinds
