"""Order books per symbol: exact L2 state, book analytics and integrity events.

    feed ─► book_records ─► by_symbol ─► apply_book ─► split ─► stamp_emit ─► stats
                                                           └──────────────► integrity

Input: the connector's records (``BookSnapshot``, ``Resync``, ``Frame[Depth]``,
``Frame[BookTicker]``; anything else is ignored). Keyed by symbol, so a symbol's books
and its bookTicker checks live on one worker. Settings: the ``[book]`` section
(``BookSettings``). ``python -m bytewax.run bpx_flows.entry:book`` runs it on the
live exchange for ``BPX_SYMBOLS`` (comma-separated, default SOL_USDC).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import bytewax.operators as op
import msgspec
from bytewax.dataflow import Stream, operator

from ..connectors.backpack.booksync import BookSnapshot, Resync
from ..connectors.backpack.wire import BookTicker, Depth, Frame
from ..connectors.clock import now_us
from ..connectors.connection import Record as SourceRecord
from ..operators.book_state import (
    BookConfig,
    BookIntegrity,
    BookLadder,
    BookStats,
    stepper,
)
from .batching import split_outputs, stateful_steps
from .keys import Route
from .spec import FlowContext, FlowSpec, Outputs, Section

__all__ = [
    "SPEC",
    "BookOut",
    "BookSettings",
    "analyze_books",
    "book_streams",
]


_BOOK = BookConfig()  # the operator's defaults, which the settings share


class BookSettings(Section, frozen=True, kw_only=True):
    """``[book]``: the book operator (see ``operators.book_state.BookConfig``)."""

    NAME = "book"

    # Defaults are the operator's (``BookConfig``), declared there once; only
    # ``every_ms`` differs on purpose: the operator alone emits after every update
    # (0), a run emits once a second unless asked.
    every_ms: Annotated[
        float,
        msgspec.Meta(
            ge=0,
            le=86_400_000,
            description="stats per book at most this often, ms of engine time "
            "(0: after every update)",
        ),
    ] = 1000.0
    window: Annotated[
        Literal["", "200ms", "600ms", "1000ms"],
        msgspec.Meta(
            description="the exchange's aggregated depth stream (200ms, 600ms, "
            "1000ms); empty: real time"
        ),
    ] = ""
    top_n: Annotated[
        int, msgspec.Meta(ge=1, le=1_000, description="levels per side in imbalance")
    ] = _BOOK.top_n
    bands_bps: Annotated[
        list[Annotated[int, msgspec.Meta(gt=0, le=10_000)]],
        msgspec.Meta(
            min_length=1,
            max_length=32,
            description="depth bands around the mid, basis points",
        ),
    ] = msgspec.field(default_factory=lambda: list(_BOOK.bands_bps))
    max_levels: Annotated[
        int | None,
        msgspec.Meta(description="levels kept per side (trimmed far from the touch)"),
    ] = _BOOK.max_levels
    checksum: Annotated[
        bool, msgspec.Meta(description="a CRC32 of the whole book in every stats line")
    ] = _BOOK.checksum

    ladder: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=1_000,
            description="best levels per side in a book_ladder record "
            "with every stats record (0: none)",
        ),
    ] = _BOOK.ladder_levels

    def problems(self) -> Iterator[tuple[str, str]]:
        """``max_levels`` bounds (msgspec cannot constrain an optional int)."""
        if self.max_levels is not None and not 1 <= self.max_levels <= 1_000_000:
            yield "max_levels", f"must be in [1, 1000000], got {self.max_levels}"

    def config(self, symbols: tuple[str, ...]) -> BookConfig:
        """The operator's configuration for these markets (none: any market)."""
        return BookConfig(
            symbols=frozenset(symbols) if symbols else None,
            emit_every_us=int(self.every_ms * 1000),
            top_n=self.top_n,
            bands_bps=tuple(self.bands_bps),
            max_levels=self.max_levels,
            checksum=self.checksum,
            ladder_levels=self.ladder,
        )


def book_records(key: Route, batch: list[Any]) -> list[tuple[str, Any]]:
    """``(key(symbol), record)`` for the book records of a batch, in order."""
    out = []
    for record in batch:
        kind = type(record)
        if kind is Frame:
            data = record.data
            if type(data) is Depth or type(data) is BookTicker:
                out.append((key(data.s), record))
        elif kind is BookSnapshot or kind is Resync:
            out.append((key(record.symbol), record))
    return out


def _stamp(batch: list[BookStats]) -> list[BookStats]:
    """The time the batch leaves the book step, on each of its stats.

    Set in place: each record was made by the book step for this batch and nothing
    has seen it yet (a copy per record cost more than the stamp).
    """
    emit_us = now_us()
    stamp = msgspec.structs.force_setattr
    for stats in batch:
        stamp(stats, "emit_us", emit_us)
    return batch


def book_streams(symbols: list[str], window: str = "") -> list[str]:
    """The streams the book flow needs: depth (``window`` e.g. ``"200ms."``) and top."""
    return [name for s in symbols for name in (f"depth.{window}{s}", f"bookTicker.{s}")]


@dataclass(frozen=True)
class BookOut:
    """The book step's outputs."""

    stats: Stream[BookStats]  # emit time stamped
    integrity: Stream[BookIntegrity | BookLadder]  # ladders only when configured


@operator
def analyze_books(
    step_id: str,
    records: Stream[SourceRecord],
    config: BookConfig,
    route: Route | None = None,
) -> BookOut:
    """Connector records in; book stats and integrity events out (keyed by symbol)."""
    # One call per batch selects and keys the records (see flows.keys).
    select = functools.partial(book_records, route or str)
    keyed: Any = op.flat_map_batch("book_records_by_symbol", records, select)
    outputs = stateful_steps("apply_book", keyed, stepper(config))
    split = split_outputs("split", outputs, BookStats, _stamp)
    return BookOut(split.matching, split.others)


def _streams(context: FlowContext) -> list[str]:
    window = context.section(BookSettings).window
    return book_streams(list(context.symbols), f"{window}." if window else "")


def _wire(records: Stream[SourceRecord], context: FlowContext) -> Outputs:
    config = context.section(BookSettings).config(context.symbols)
    books = analyze_books("books", records, config, context.route)
    return [books.stats, books.integrity], []


SPEC = FlowSpec(
    name="book",
    example_symbols=("SOL_USDC",),
    help="order books: top, spread, microprice, imbalance, depth bands, integrity",
    sections=(BookSettings,),
    streams=_streams,
    wire=_wire,
    produces=(BookStats, BookIntegrity, BookLadder),
)
