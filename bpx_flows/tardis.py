"""``bpx-flows export --format tardis``: recordings as Tardis' normalized CSV files.

Backtesters read Tardis' "downloadable CSV" types (hftbacktest's converter,
nautilus' ``TardisCSVDataLoader``). Each type Backpack's streams can fill:

===================== ==============================================================
type                  from
===================== ==============================================================
incremental_book_L2   the REST seeds (``is_snapshot`` rows: every level of the
                      snapshot) and each depth diff the book applied after it, one
                      row per level as printed (amount 0 removes the level)
book_snapshot_25      the book's best 25 levels a side, each time they change
trades                ``trade``: ``id`` the trade id, ``side`` the taker's
                      (``sell`` when the buyer was the maker)
quotes                ``bookTicker``
derivative_ticker     ``markPrice`` (mark, index, funding rate, next funding time),
                      ``openInterest`` and ``ticker`` (last price), each row carrying
                      the latest value of every field (empty until first known)
liquidations          ``liquidation``: ``side`` ``buy`` when a short was liquidated
                      (Backpack's ``Bid``), ``sell`` for a long; no id (empty)
===================== ==============================================================

Times are microseconds since the epoch, UTC. ``timestamp`` is the exchange's event
time ``E`` (when it published the event; the engine time ``T`` is earlier), and
``local_timestamp`` our receive time. A REST snapshot has no exchange time: both
are its receive time. Prices and amounts are the exchange's strings, unchanged;
``exchange`` is ``backpack``; ``symbol`` the exchange's (``SOL_USDC``).

Files are named as Tardis names its downloads, one per type, UTC day (of
``local_timestamp``) and market: ``backpack_trades_2026-12-06_SOL_USDC.csv.gz``.
The book is rebuilt by ``operators.book_state``, the flows' own book: a diff the
book did not apply (before its snapshot, out of sequence) is not written, and a
resync's new snapshot starts a new run of ``is_snapshot`` rows. One depth stream
per market: the real-time ``depth.X`` when recorded, else the first aggregated one.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bpx_flows.connectors.backpack.booksync import BookSnapshot
from bpx_flows.connectors.backpack.replayer import Replayer
from bpx_flows.connectors.backpack.streams import Channel, parse_stream
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
from bpx_flows.connectors.errors import BpxError, ConfigError
from bpx_flows.connectors.recording import RecordingReader, read_header
from bpx_flows.connectors.sources.progress import ReplayProgress
from bpx_flows.operators import book_state
from bpx_flows.operators.book_state import BookConfig

__all__ = [
    "HEADERS",
    "TardisRows",
    "TardisWriter",
    "export",
    "file_name",
    "preferred_depth",
]

EXCHANGE = "backpack"
_BOOK_LEVELS = 25
_NEVER_US = 10**18  # book stats "at most once per" this: only at snapshots
_COMMON = ["exchange", "symbol", "timestamp", "local_timestamp"]
HEADERS: dict[str, list[str]] = {
    "incremental_book_L2": [*_COMMON, "is_snapshot", "side", "price", "amount"],
    "book_snapshot_25": _COMMON
    + [
        f"{side}[{i}].{part}"
        for i in range(_BOOK_LEVELS)
        for side in ("asks", "bids")
        for part in ("price", "amount")
    ],
    "trades": [*_COMMON, "id", "side", "price", "amount"],
    "quotes": [*_COMMON, "ask_amount", "ask_price", "bid_price", "bid_amount"],
    "derivative_ticker": [
        *_COMMON,
        "funding_timestamp",
        "funding_rate",
        "predicted_funding_rate",
        "open_interest",
        "last_price",
        "index_price",
        "mark_price",
    ],
    "liquidations": [*_COMMON, "id", "side", "price", "amount"],
}

Row = tuple[str, str, int, str]  # (type, symbol, local µs, the CSV line)


def file_name(kind: str, day: str, symbol: str) -> str:
    """Tardis' name for the file of ``kind`` on ``day`` for ``symbol``."""
    return f"{EXCHANGE}_{kind}_{day}_{symbol}.csv.gz"


def _line(symbol: str, exchange_us: int, local_us: int, *values: object) -> str:
    rest = ",".join("" if v is None else str(v) for v in values)
    return f"{EXCHANGE},{symbol},{exchange_us},{local_us},{rest}\n"


@dataclass
class _Derivative:
    """The latest value of each derivative_ticker field of one market."""

    funding_us: int | None = None
    funding_rate: str | None = None
    open_interest: str | None = None
    last_price: str | None = None
    index_price: str | None = None
    mark_price: str | None = None


@dataclass
class TardisRows:
    """Records of a replay in, Tardis rows out (see the module doc); pure state.

    Args:
        depth_streams: the depth stream to export per market (others are skipped);
            a market not named takes its first depth stream.
    """

    depth_streams: dict[str, str] = field(default_factory=dict)
    _books: dict[str, book_state.SymbolBooks] = field(default_factory=dict)
    _tops: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _derivatives: dict[str, _Derivative] = field(default_factory=dict)
    # The flows' book, without its stats (the export reads the levels itself).
    _config: BookConfig = field(
        default_factory=lambda: BookConfig(emit_every_us=_NEVER_US, max_levels=None)
    )

    def rows(self, record: Any) -> list[Row]:
        """The rows one record gives (often none, often one)."""
        if isinstance(record, BookSnapshot):
            return self._snapshot(record)
        if type(record) is not Frame:
            return []
        data, recv_us = record.data, record.recv_us
        kind = type(data)
        if kind is Depth:
            return self._diff(record)
        if kind is Trade:
            side = "sell" if data.m else "buy"
            line = _line(data.s, data.E, recv_us, data.t, side, data.p, data.q)
            return [("trades", data.s, recv_us, line)]
        if kind is BookTicker:
            line = _line(data.s, data.E, recv_us, data.A, data.a, data.b, data.B)
            return [("quotes", data.s, recv_us, line)]
        if kind is Liquidation:
            side = "buy" if data.S is Side.BID else "sell"
            line = _line(data.s, data.E, recv_us, None, side, data.p, data.q)
            return [("liquidations", data.s, recv_us, line)]
        if kind is MarkPrice or kind is OpenInterest or kind is Ticker:
            return self._derivative(data, recv_us)
        return []

    # Books.

    def _wanted(self, stream: str, symbol: str) -> bool:
        chosen = self.depth_streams.setdefault(symbol, stream)
        return chosen == stream

    def _snapshot(self, snap: BookSnapshot) -> list[Row]:
        if not self._wanted(snap.stream, snap.symbol):
            return []
        state, _ = book_state.step(self._books.get(snap.symbol), snap, self._config)
        self._books[snap.symbol] = state
        entry = state.books.get(snap.stream)
        if entry is None or not entry.live:
            return []
        at = snap.recv_us
        out: list[Row] = []
        for side, levels in (("bid", snap.bids), ("ask", snap.asks)):
            for price, amount in levels:
                line = _line(snap.symbol, at, at, "true", side, price, amount)
                out.append(("incremental_book_L2", snap.symbol, at, line))
        out += self._top(snap.symbol, entry.book, at, at)
        return out

    def _diff(self, frame: Frame[Depth]) -> list[Row]:
        diff = frame.data
        if not self._wanted(frame.stream, diff.s):
            return []
        state = self._books.get(diff.s)
        entry = state.books.get(frame.stream) if state is not None else None
        if entry is None or not entry.live:
            return []  # before the book's snapshot: nothing to apply it to
        before = entry.book.update_id
        book_state.step(state, frame, self._config)
        if not entry.live or entry.book.update_id == before:
            return []  # out of sequence (the book resyncs) or already applied
        recv_us = frame.recv_us
        out: list[Row] = []
        for side, levels in (("bid", diff.b), ("ask", diff.a)):
            for price, amount in levels:
                line = _line(diff.s, diff.E, recv_us, "false", side, price, amount)
                out.append(("incremental_book_L2", diff.s, recv_us, line))
        out += self._top(diff.s, entry.book, diff.E, recv_us)
        return out

    def _top(
        self, symbol: str, book: Any, exchange_us: int, local_us: int
    ) -> list[Row]:
        bids, asks = book.top(_BOOK_LEVELS)
        top = (tuple(bids), tuple(asks))
        if self._tops.get(symbol) == top:
            return []
        self._tops[symbol] = top
        values: list[object] = []
        for i in range(_BOOK_LEVELS):
            for levels in (asks, bids):
                values += levels[i] if i < len(levels) else (None, None)
        line = _line(symbol, exchange_us, local_us, *values)
        return [("book_snapshot_25", symbol, local_us, line)]

    # Derivatives.

    def _derivative(self, data: Any, recv_us: int) -> list[Row]:
        known = self._derivatives.setdefault(data.s, _Derivative())
        if type(data) is Ticker:
            known.last_price = data.c
            if known.mark_price is None and known.open_interest is None:
                return []  # a spot market (so far): not a derivative
        elif type(data) is MarkPrice:
            known.mark_price = data.p
            known.index_price = data.i or known.index_price
            known.funding_rate = data.f or known.funding_rate
            known.funding_us = data.n * 1000 if data.n else known.funding_us
        else:
            known.open_interest = data.o
        line = _line(
            data.s,
            data.E,
            recv_us,
            known.funding_us,
            known.funding_rate,
            None,
            known.open_interest,
            known.last_price,
            known.index_price,
            known.mark_price,
        )
        return [("derivative_ticker", data.s, recv_us, line)]


class TardisWriter:
    """Rows into gzip CSV files under ``folder``, each with its header; a context.

    A file stays open while its day is current; files of days two or more behind
    the newest row are closed (recordings are in receive order, give or take the
    seconds a REST answer takes).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._open: dict[tuple[str, str, str], IO[str]] = {}
        self.rows = 0
        self.files: set[Path] = set()
        self._newest_day = ""

    def __enter__(self) -> TardisWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, rows: Iterable[Row]) -> None:
        """Append rows to their files."""
        for kind, symbol, local_us, line in rows:
            day = _day(local_us)
            target = self._open.get((kind, day, symbol))
            if target is None:
                target = self._start(kind, day, symbol)
            target.write(line)
            self.rows += 1

    def _start(self, kind: str, day: str, symbol: str) -> IO[str]:
        path = self.folder / file_name(kind, day, symbol)
        if path in self.files:
            msg = f"{path.name}: rows arrived after its day was closed (2 days late)"
            raise BpxError(msg)
        if day > self._newest_day:
            self._newest_day = day
            self._close_before(day)
        # Closed in _close_before or close: files outlive this call by design.
        handle = gzip.open(path, "wt", encoding="ascii", newline="")  # noqa: SIM115
        handle.write(",".join(HEADERS[kind]) + "\n")
        self._open[(kind, day, symbol)] = handle
        self.files.add(path)
        return handle

    def _close_before(self, newest: str) -> None:
        for key in [k for k in self._open if _days_apart(k[1], newest) >= 2]:
            self._open.pop(key).close()

    def close(self) -> None:
        """Finish every file."""
        for handle in self._open.values():
            handle.close()
        self._open.clear()


def _day(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d")


def _days_apart(older: str, newer: str) -> int:
    return (datetime.fromisoformat(newer) - datetime.fromisoformat(older)).days


def preferred_depth(streams: Sequence[str]) -> dict[str, str]:
    """Per market, the depth stream to export: real time when recorded."""
    chosen: dict[str, str] = {}
    for name in streams:
        try:
            stream = parse_stream(name)
        except BpxError:
            continue
        if stream.channel is not Channel.DEPTH or stream.symbol is None:
            continue
        if stream.symbol not in chosen or name == f"depth.{stream.symbol}":
            chosen[stream.symbol] = name
    return chosen


@dataclass
class Exported:
    """What an export wrote."""

    lines: int = 0
    rows: int = 0
    files: list[Path] = field(default_factory=list)


def export(
    sources: Sequence[str],
    folder: Path,
    symbols: frozenset[str] | None = None,
    progress_every_s: float = 5.0,
) -> Exported:
    """Every recording (a file, or ``kafka:BROKERS/TOPIC``) into Tardis files.

    Raises:
        ConfigError: a source that is not a recording, a topic that is not there.
    """
    done = Exported()
    with TardisWriter(folder) as writer:
        for source in sources:
            streams, feeds = _feeds(source)
            converter = TardisRows(preferred_depth(streams))
            for name, blocks, readable in feeds:
                progress = ReplayProgress(name, readable, 0, progress_every_s)
                replayer = Replayer()  # one per file or partition, as a replay
                lines = 0
                for block in blocks:
                    lines += len(block)
                    for record in replayer.feed_lines(block):
                        rows = converter.rows(record)
                        if rows and symbols is not None:
                            rows = [r for r in rows if r[1] in symbols]
                        writer.write(rows)
                    progress.tick(lines)
                progress.done(lines)
                done.lines += lines
        done.rows = writer.rows
        done.files = sorted(writer.files)
    return done


def _feeds(source: str) -> tuple[list[str], list[tuple[str, Any, Any]]]:
    """The streams a source names, and ``(name, blocks, readable)`` per part."""
    if source.startswith("kafka:"):
        from bpx_flows.connectors.kafka.lines import TopicLines, topic_header_streams
        from bpx_flows.connectors.kafka.spec import parse_kafka, topic_partitions

        spec = parse_kafka(source.removeprefix("kafka:"))
        count = topic_partitions(spec)
        if not count:
            msg = f"kafka: no topic {spec.topic!r} at {spec.where}"
            raise ConfigError(msg)
        parts = [TopicLines(spec, p, None) for p in range(count)]
        streams = topic_header_streams(spec) or []
        return streams, [(part.name, part.blocks(), part) for part in parts]
    reader = RecordingReader(source)
    return read_header(source).streams, [(Path(source).name, reader.blocks(), reader)]
