"""The book rebuilt from the simulator's REST snapshot + diffs equals its own book."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings, strategies as st

from bpx_flows.connectors.backpack.booksync import BookSnapshot, BookSync, Resync
from bpx_flows.connectors.backpack.wire import Depth, Frame
from bpx_flows.connectors.sim import Exchange, SimConfig
from bpx_flows.connectors.sim.engine import MarketEngine, MarketSpec
from bpx_flows.operators.book import L2Book

START_US = 1_790_000_000_000_000
CHUNK_US = 20_000


def engine_book(engine: MarketEngine) -> tuple[dict, dict]:
    to_price, to_qty = engine.prices.to_decimal, engine.lots.to_decimal
    bids = {to_price(p): to_qty(q) for p, q in engine.bids.items()}
    asks = {to_price(p): to_qty(q) for p, q in engine.asks.items()}
    return bids, asks


def apply(book: L2Book, record: object) -> None:
    if isinstance(record, BookSnapshot):
        book.reset(record.bids, record.asks, record.lastUpdateId)
    elif isinstance(record, Frame):
        assert isinstance(record.data, Depth)
        book.apply(record.data.b, record.data.a, record.data.u)
    else:
        msg = f"unexpected {record!r}"
        raise AssertionError(msg)


def run_session(
    seed: int,
    stream: str,
    symbol: str,
    updates: int,
    snapshot_after_chunks: int,
    snapshot_ahead_chunks: int,
    checkpoint_every: int,
) -> int:
    """Drive the exchange; returns the number of checkpoints that matched."""
    specs = (
        MarketSpec(symbol, "SOL", "USDC", "PERP", "0.01", "0.01", "186.40", 2000.0),
    )
    exchange = Exchange(
        SimConfig(seed=seed, markets=specs, account_every_s=None), START_US
    )
    exchange.wanted = {stream}
    engine = exchange.engines[symbol]
    sync = BookSync(stream, symbol)
    book = L2Book()
    in_flight: list[Frame[Depth]] = []  # diffs "on the wire", not yet delivered
    pending_snapshot = None
    start_id = engine.update_id
    now = START_US
    chunks = 0
    checkpoints = 0
    while engine.update_id - start_id < updates:
        now += CHUNK_US
        chunks += 1
        for name, record in exchange.advance_to(now):
            assert name == stream and isinstance(record, Depth)
            in_flight.append(Frame(name, record))
        if chunks == snapshot_after_chunks:
            assert sync.needs_snapshot()
            sync.snapshot_started()
            # The REST answer reflects the engine *now*; the socket may lag behind it.
            pending_snapshot = exchange.depth_snapshot(symbol)
        if (
            pending_snapshot is not None
            and chunks == snapshot_after_chunks + snapshot_ahead_chunks
        ):
            # Deliver what the socket had before the snapshot answer arrives.
            for frame in in_flight[: len(in_flight) // 2]:
                for record in sync.on_depth(frame):
                    apply(book, record)
            del in_flight[: len(in_flight) // 2]
            for record in sync.on_snapshot(pending_snapshot, now):
                apply(book, record)
            pending_snapshot = None
        if pending_snapshot is None:
            for frame in in_flight:
                for record in sync.on_depth(frame):
                    assert not isinstance(record, Resync)
                    apply(book, record)
            in_flight.clear()
        else:
            for frame in in_flight:
                assert sync.on_depth(frame) == []  # buffered until the snapshot
            in_flight.clear()
        at_checkpoint = sync.live and chunks % checkpoint_every == 0
        if at_checkpoint and book.update_id == engine.update_id:
            bids, asks = engine_book(engine)
            assert dict(book.bids) == bids
            assert dict(book.asks) == asks
            checkpoints += 1
    assert sync.stats.gaps == 0
    return checkpoints


def test_book_equals_the_engine_at_every_checkpoint_of_100k_updates() -> None:
    matched = run_session(
        seed=3,
        stream="depth.SOL_USDC_PERP",
        symbol="SOL_USDC_PERP",
        updates=100_000,
        snapshot_after_chunks=5,
        snapshot_ahead_chunks=0,
        checkpoint_every=10,
    )
    assert matched >= 200


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    window=st.sampled_from(["", "200ms.", "600ms.", "1000ms."]),
    snapshot_after=st.integers(1, 40),
    ahead=st.integers(0, 3),
)
def test_any_snapshot_lag_and_window_reconstructs_the_book(
    seed: int, window: str, snapshot_after: int, ahead: int
) -> None:
    matched = run_session(
        seed=seed,
        stream=f"depth.{window}SOL_USDC_PERP",
        symbol="SOL_USDC_PERP",
        updates=4_000,
        snapshot_after_chunks=snapshot_after,
        snapshot_ahead_chunks=ahead,
        checkpoint_every=50 if window else 5,
    )
    assert matched >= 1


def test_prices_formatted_differently_are_one_level() -> None:
    book = L2Book()
    book.reset([("86700", "1.5")], [("86701", "2")], 10)
    book.apply([("86700.0", "2.5")], [("86701.00", "0.00000")], 11)
    assert dict(book.bids) == {Decimal("86700"): Decimal("2.5")}
    assert not book.asks
