"""``bpx-flows export --format tardis``: rows as pure code, then files other tools read.

The headers are checked against Tardis' documentation (written out here, not taken
from our module), the files are loaded by hftbacktest's own Tardis converter, and
the book rebuilt from ``incremental_book_L2`` equals the book flow's book (its
checksum) at every update the flow reports.
"""

from __future__ import annotations

import csv
import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from bpx_flows.connectors.backpack.booksync import BookSnapshot
from bpx_flows.connectors.backpack.wire import (
    BookTicker,
    Depth,
    Frame,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    Ticker,
    Trade,
)
from bpx_flows.operators.book_state import book_checksum
from bpx_flows.tardis import TardisRows, file_name
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
SESSION = ROOT / "data" / "sessions" / "sim-session.jsonl.gz"

# Tardis' "Data Types" page (docs.tardis.dev/downloadable-csv-files/data-types).
DOCUMENTED = {
    "trades": "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
    "incremental_book_L2": (
        "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
    ),
    "quotes": (
        "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,"
        "bid_amount"
    ),
    "derivative_ticker": (
        "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,"
        "predicted_funding_rate,open_interest,last_price,index_price,mark_price"
    ),
    "liquidations": "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
    "book_snapshot_25": "exchange,symbol,timestamp,local_timestamp,"
    + ",".join(
        f"asks[{i}].price,asks[{i}].amount,bids[{i}].price,bids[{i}].amount"
        for i in range(25)
    ),
}


def frame(data: object, recv_us: int = 2_000) -> Frame:
    return Frame(stream="x", data=data, recv_us=recv_us)


def cells(row: tuple[str, str, int, str]) -> list[str]:
    return row[3].rstrip("\n").split(",")


def test_a_trade_row_names_the_taker_side() -> None:
    rows = TardisRows()
    taker_sold = Trade(
        E=1_500, T=1_400, a="1", b="2", m=True, p="186.50", q="0.10", s="SOL_USDC", t=7
    )
    (row,) = rows.rows(frame(taker_sold))
    assert row[0] == "trades"
    assert cells(row) == [
        "backpack", "SOL_USDC", "1500", "2000", "7", "sell", "186.50", "0.10"
    ]  # fmt: skip


def test_a_liquidation_of_a_short_is_a_buy() -> None:
    rows = TardisRows()
    short = Liquidation(E=5, S=Side.BID, T=4, p="10.0", q="3", s="X_USDC_PERP")
    long = Liquidation(E=6, S=Side.ASK, T=4, p="9.0", q="1", s="X_USDC_PERP")
    assert cells(rows.rows(frame(short))[0])[4:] == ["", "buy", "10.0", "3"]
    assert cells(rows.rows(frame(long))[0])[4:] == ["", "sell", "9.0", "1"]


def test_quotes_keep_tardis_column_order() -> None:
    ticker = BookTicker(
        A="2.0", B="3.0", E=9, T=8, a="101.0", b="100.0", s="SOL_USDC", u=1
    )
    (row,) = TardisRows().rows(frame(ticker))
    assert cells(row)[4:] == ["2.0", "101.0", "100.0", "3.0"]


def test_derivative_rows_carry_the_latest_of_each_field_and_skip_spot() -> None:
    rows = TardisRows()
    assert (
        rows.rows(
            frame(
                Ticker(E=1, V="0", c="5", h="5", l="5", n=1, o="5", s="S_USDC", v="0")
            )
        )
        == []
    )
    mark = MarkPrice(E=2, T=2, f="0.0001", i="100.1", n=3_600_000, p="100.2", s="P")
    (first,) = rows.rows(frame(mark))
    assert cells(first)[4:] == ["3600000000", "0.0001", "", "", "", "100.1", "100.2"]
    (second,) = rows.rows(frame(OpenInterest(E=3, o="42", s="P")))
    assert cells(second)[4:] == ["3600000000", "0.0001", "", "42", "", "100.1", "100.2"]


def _snapshot(last: int, recv_us: int = 1_000) -> BookSnapshot:
    return BookSnapshot(
        stream="depth.SOL_USDC",
        symbol="SOL_USDC",
        lastUpdateId=last,
        bids=[("99", "1")],
        asks=[("101", "2")],
        recv_us=recv_us,
    )


def _diff(first: int, last: int, bids: list[tuple[str, str]]) -> Frame:
    depth = Depth(E=last, T=last, U=first, a=[], b=bids, s="SOL_USDC", u=last)
    return Frame(stream="depth.SOL_USDC", data=depth, recv_us=last)


def test_book_rows_follow_what_the_book_applies() -> None:
    rows = TardisRows()
    assert rows.rows(_diff(5, 6, [("98", "1")])) == []  # before the snapshot
    seeded = rows.rows(_snapshot(10))
    book = [cells(r) for r in seeded if r[0] == "incremental_book_L2"]
    assert [c[4:] for c in book] == [
        ["true", "bid", "99", "1"],
        ["true", "ask", "101", "2"],
    ]
    assert [r[0] for r in seeded][-1] == "book_snapshot_25"
    assert rows.rows(_diff(8, 10, [("98", "5")])) == []  # already in the snapshot
    applied = rows.rows(_diff(11, 12, [("99", "0")]))
    assert [cells(r)[4:] for r in applied if r[0] == "incremental_book_L2"] == [
        ["false", "bid", "99", "0"]
    ]
    assert rows.rows(_diff(20, 21, [("97", "1")])) == []  # a gap: the book resyncs
    again = rows.rows(_snapshot(30, recv_us=5_000))
    assert any(cells(r)[4] == "true" for r in again)


def test_the_file_name_is_tardis_download_name() -> None:
    name = file_name("trades", "2026-12-06", "SOL_USDC")
    assert name == "backpack_trades_2026-12-06_SOL_USDC.csv.gz"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tardis")
    result = run_cli("export", str(SESSION), "--format", "tardis", "--out", str(folder))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "exported" in result.stderr
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_file_has_its_documented_header(exported: Path) -> None:
    kinds = set()
    for path in exported.glob("backpack_*.csv.gz"):
        kind = next(k for k in DOCUMENTED if path.name.startswith(f"backpack_{k}_"))
        kinds.add(kind)
        with gzip.open(path, "rt") as handle:
            assert handle.readline().rstrip("\n") == DOCUMENTED[kind], path.name
        for row in _rows(path):
            assert row["exchange"] == "backpack"
            assert int(row["local_timestamp"]) >= int(row["timestamp"]) > 10**15
    assert kinds == set(DOCUMENTED)


def test_hftbacktest_converts_the_trades_and_the_book(exported: Path) -> None:
    tardis = pytest.importorskip(
        "hftbacktest.data.utils.tardis", reason="hftbacktest is a dev dependency"
    )
    symbol = "SOL_USDC"
    trades = next(exported.glob(f"backpack_trades_*_{symbol}.csv.gz"))
    book = next(exported.glob(f"backpack_incremental_book_L2_*_{symbol}.csv.gz"))
    data = tardis.convert([str(trades), str(book)], buffer_size=200_000)
    expected = len(_rows(trades)) + len(_rows(book))
    assert len(data) >= expected  # plus one "clear" event per snapshot side
    prices = {Decimal(r["price"]) for r in _rows(trades)}
    assert {Decimal(str(p)) for p in data["px"]} >= {p for p in prices}


def test_the_book_rebuilt_from_the_csv_equals_the_flows_book(
    exported: Path, tmp_path: Path
) -> None:
    """At every stats record of the book flow (update id, checksum of every level).

    Rows carry no update id, so the CSV is read up to the record's receive time; two
    diffs received in the same microsecond are compared after the second.
    """
    symbol = "SOL_USDC"
    out = tmp_path / "stats.jsonl"
    result = run_cli(
        "book", symbol, "--replay", str(SESSION), "--checksum", "--every-ms", "0",
        "--out", str(out), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    stats = [
        record
        for record in map(json.loads, out.read_text().splitlines())
        if record["type"] == "book_stats" and record["symbol"] == symbol
    ]
    assert len(stats) > 100
    path = next(exported.glob(f"backpack_incremental_book_L2_*_{symbol}.csv.gz"))
    rows = _rows(path)
    sides: dict[str, dict[Decimal, str]] = {"bid": {}, "ask": {}}
    at = 0
    in_snapshot = False
    compared = 0
    for record, after in zip(stats, [*stats[1:], None], strict=True):
        while at < len(rows) and int(rows[at]["local_timestamp"]) <= record["recv_us"]:
            row = rows[at]
            if row["is_snapshot"] == "true" and not in_snapshot:
                sides = {"bid": {}, "ask": {}}  # a new snapshot replaces the book
            in_snapshot = row["is_snapshot"] == "true"
            price = Decimal(row["price"])
            if Decimal(row["amount"]) == 0:
                sides[row["side"]].pop(price, None)
            else:
                sides[row["side"]][price] = row["amount"]
            at += 1
        rebuilt = book_checksum(
            sorted(sides["bid"].items()), sorted(sides["ask"].items())
        )
        if after is not None and after["recv_us"] == record["recv_us"]:
            continue  # the next diff of this microsecond is read already
        assert rebuilt == record["checksum"], record["update_id"]
        compared += 1
    assert compared > 100
