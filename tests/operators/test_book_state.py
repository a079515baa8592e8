import random
from decimal import Decimal as D

from hypothesis import given, settings, strategies as st

from bpx_flows.connectors.backpack.booksync import (
    BookSnapshot,
    BookSync,
    Resync,
    ResyncReason,
)
from bpx_flows.connectors.backpack.wire import BookTicker, Depth, DepthSnapshot, Frame
from bpx_flows.operators.book_state import (
    BookConfig,
    BookIntegrity,
    BookStats,
    IntegrityKind,
    book_checksum,
    step,
)

STREAM = "depth.SOL_USDC"
CFG = BookConfig()


def snap(
    uid: int, bids=(("10.0", "2"), ("10.1", "1")), asks=(("10.2", "3"), ("10.3", "4"))
) -> BookSnapshot:
    return BookSnapshot(STREAM, "SOL_USDC", uid, list(bids), list(asks), recv_us=1_000)


def diff(first: int, last: int, bids=(), asks=(), engine_us: int = 500) -> Frame[Depth]:
    data = Depth(
        E=engine_us,
        s="SOL_USDC",
        a=list(asks),
        b=list(bids),
        U=first,
        u=last,
        T=engine_us,
    )
    return Frame(STREAM, data, recv_us=engine_us + 100)


def ticker(
    uid: int, bid="10.1", bid_qty="1", ask="10.2", ask_qty="3"
) -> Frame[BookTicker]:
    data = BookTicker(E=1, s="SOL_USDC", a=ask, A=ask_qty, b=bid, B=bid_qty, u=uid, T=1)
    return Frame("bookTicker.SOL_USDC", data, recv_us=2)


def run(records, config=CFG):
    state, outs = None, []
    for record in records:
        state, out = step(state, record, config)
        outs.extend(out)
    return state, outs


def kinds(outs) -> list[IntegrityKind]:
    return [o.kind for o in outs if isinstance(o, BookIntegrity)]


def test_stats_are_exact() -> None:
    _, outs = run([snap(100)])
    stats = outs[-1]
    assert isinstance(stats, BookStats)
    assert (stats.best_bid, stats.bid_qty, stats.best_ask, stats.ask_qty) == (
        D("10.1"),
        D(1),
        D("10.2"),
        D(3),
    )
    assert stats.spread == D("0.1")
    assert stats.mid == D("10.15")
    assert stats.spread_bps == D("98.52")  # 0.1 / 10.15 x 10,000 = 98.522..., 2 places
    assert stats.microprice == D("10.1")  # 40.5 / 4 = 10.125, at the tick (0.1)
    assert stats.imbalance == (D(3) - D(7)) / D(10)  # top 5: bids 2+1, asks 3+4
    band_100 = next(b for b in stats.bands if b.bps == 100)  # ±0.1015 around 10.15
    assert (band_100.bid_base, band_100.ask_base) == (D(1), D(3))
    assert band_100.bid_quote == D("10.1") and band_100.ask_quote == D("30.6")
    assert (stats.bid_levels, stats.ask_levels, stats.update_id) == (2, 2, 100)


def test_stats_kept_between_updates_follow_the_level_as_printed() -> None:
    """The best bid leaves and comes back printed with another exponent: the
    microprice is rounded to the new one, as a fresh book would round it."""
    records = [snap(100, bids=[("10", "1")], asks=[("11", "3")])]
    records.append(diff(101, 101, bids=[("9", "1")]))  # top unchanged: stats reused
    # In one diff: gone, and back printed with one decimal (same value, same size).
    records.append(diff(102, 103, bids=[("10", "0"), ("10.0", "1")]))
    _, outs = run(records, BookConfig(emit_every_us=0))
    stats = [o for o in outs if isinstance(o, BookStats)]
    assert stats[0].microprice == D("10") and stats[1].microprice == D("10")
    assert str(stats[-1].microprice) == "10.2"  # 41 / 4 = 10.25, at 0.1, half even
    assert str(stats[-1].best_bid) == "10.0"
    fresh = run([snap(103, bids=[("10.0", "1"), ("9", "1")], asks=[("11", "3")])])
    assert str(fresh[1][-1].microprice) == str(stats[-1].microprice)


def test_diffs_update_the_book_and_zero_removes_levels() -> None:
    state, outs = run(
        [
            snap(100),
            diff(
                101,
                101,
                bids=[("10.1", "0.00000"), ("10.15", "5")],
                asks=[("10.20", "1")],
            ),
        ]
    )
    stats = outs[-1]
    assert (stats.best_bid, stats.bid_qty, stats.best_ask, stats.ask_qty) == (
        D("10.15"),
        D(5),
        D("10.2"),
        D(1),
    )
    assert stats.latency_us == 100
    book = state.books[STREAM].book
    assert dict(book.bids) == {D("10.0"): D(2), D("10.15"): D(5)}


def test_diff_before_snapshot_and_out_of_order_are_events_not_crashes() -> None:
    _, outs = run([diff(5, 5), snap(100), diff(103, 103), diff(104, 104)])
    assert kinds(outs) == [
        IntegrityKind.DIFF_BEFORE_SNAPSHOT,
        IntegrityKind.OUT_OF_ORDER,
        IntegrityKind.DIFF_BEFORE_SNAPSHOT,
    ]


def test_duplicates_are_ignored() -> None:
    state, outs = run(
        [
            snap(100),
            diff(101, 101, bids=[("9", "1")]),
            diff(100, 101, bids=[("9", "7")]),
        ]
    )
    assert not kinds(outs)
    assert state.books[STREAM].book.bids[D(9)] == D(1)


def test_gap_and_resync_events() -> None:
    gap = Resync(STREAM, "SOL_USDC", ResyncReason.GAP, 101, 105, 3)
    _, outs = run([snap(100), gap, snap(200)])
    assert kinds(outs) == [
        IntegrityKind.GAP,
        IntegrityKind.RESYNC_STARTED,
        IntegrityKind.RESYNC_FINISHED,
    ]


def test_every_crossed_and_locked_transition_is_flagged() -> None:
    _, outs = run(
        [
            snap(100),
            diff(101, 101, bids=[("10.2", "1")]),  # locked: bid == ask
            diff(102, 102, bids=[("10.25", "1")]),  # locked -> crossed
            diff(103, 103, bids=[("10.3", "1")]),  # still crossed: no new event
            diff(104, 104, bids=[("10.3", "0"), ("10.25", "0"), ("10.2", "0")]),
        ]
    )
    assert kinds(outs) == [
        IntegrityKind.LOCKED,
        IntegrityKind.CROSSED,
        IntegrityKind.UNCROSSED,
    ]
    _, outs = run([snap(100), diff(101, 101, bids=[("10.5", "1")])])
    assert kinds(outs) == [IntegrityKind.CROSSED]


def test_stats_say_whether_the_book_is_valid() -> None:
    config = BookConfig(emit_every_us=0)
    _, outs = run(
        [
            snap(100),
            diff(101, 101, bids=[("10.5", "1")]),  # crossed
            diff(102, 102, bids=[("10.5", "0")]),  # ordered again
        ],
        config,
    )
    stats = [o for o in outs if isinstance(o, BookStats)]
    assert [s.valid for s in stats][-2:] == [False, True]


def test_invalid_levels_are_skipped_and_reported() -> None:
    _, outs = run([snap(100), diff(101, 101, bids=[("abc", "1"), ("9.9", "-1")])])
    events = [o for o in outs if isinstance(o, BookIntegrity)]
    assert [e.kind for e in events] == [IntegrityKind.INVALID_LEVEL]
    assert events[0].skipped == 2  # "2 level(s)": tests/test_presentation.py


def test_unknown_symbol_is_an_event() -> None:
    _, outs = run([snap(100)], BookConfig(symbols=frozenset({"BTC_USDC"})))
    assert kinds(outs) == [IntegrityKind.UNKNOWN_SYMBOL]


def test_book_ticker_agrees_in_either_order() -> None:
    state, outs = run(
        [
            ticker(101, bid="10.1", bid_qty="1", ask="10.2", ask_qty="9"),
            snap(100),
            diff(101, 101, asks=[("10.2", "9")]),
        ]
    )
    assert not kinds(outs)
    assert (state.tickers_checked, state.tickers_mismatched) == (1, 0)
    state, outs = run(
        [
            snap(100),
            diff(101, 101, asks=[("10.2", "9")]),
            diff(102, 102),
            ticker(101, ask_qty="9"),
        ]
    )
    assert (state.tickers_checked, state.tickers_mismatched) == (1, 0)


def test_book_ticker_disagreement_is_reported_with_both_values() -> None:
    state, outs = run([snap(100), ticker(100, ask_qty="2.5")])
    events = [o for o in outs if isinstance(o, BookIntegrity)]
    assert [e.kind for e in events] == [IntegrityKind.TICKER_MISMATCH]
    ours, theirs = events[0].ours, events[0].theirs
    assert ours is not None and theirs is not None
    assert (ours.ask_qty, theirs.ask_qty) == (D(3), D("2.5"))
    assert state.tickers_mismatched == 1


def test_stats_can_be_throttled_by_engine_time() -> None:
    config = BookConfig(emit_every_us=1_000)
    records = [snap(100)] + [
        diff(100 + i, 100 + i, bids=[("9", str(i))], engine_us=2_000 + i * 100)
        for i in range(1, 31)
    ]
    _, outs = run(records, config)
    stats = [o for o in outs if isinstance(o, BookStats)]
    assert [s.update_id for s in stats] == [100, 101, 111, 121]


def test_trimming_far_levels_is_counted() -> None:
    bids = [(str(10 - i * 0.01)[:5], "1") for i in range(20)]
    _, outs = run([snap(100, bids=bids)], BookConfig(max_levels=5))
    stats = outs[-1]
    assert stats.bid_levels == 5 and stats.trimmed_levels == 15
    assert stats.best_bid == D("10")


def test_checksum_ignores_price_formatting() -> None:
    a = book_checksum([("86700", "1.50")], [("86701.0", "2")])
    b = book_checksum([(D("86700.0"), D("1.5"))], [(D("86701"), D("2.000"))])
    assert a == b
    assert a != book_checksum([("86700", "1.51")], [("86701", "2")])


# Property: random books with gaps and duplicates on the wire, through the connector's
# sync and this operator, against a plain dict reference.

PRICES = [f"{p / 100:.2f}" for p in range(900, 1100, 5)]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), n_updates=st.integers(50, 400))
def test_book_equals_the_reference_after_resyncs_and_top_after_every_update(
    seed: int, n_updates: int
) -> None:
    rng = random.Random(seed)
    truth: dict[str, dict[D, D]] = {"b": {}, "a": {}}
    history: dict[int, tuple[dict, dict]] = {}
    wire: list[Frame[Depth]] = []
    for uid in range(1, n_updates + 1):
        bids, asks = [], []
        for _ in range(rng.randint(1, 3)):
            side = rng.choice("ba")
            pool = PRICES[:20] if side == "b" else PRICES[20:]
            price, qty = rng.choice(pool), rng.choice(["0", "0.000", "1", "2.5", "10"])
            (bids if side == "b" else asks).append((price, qty))
            if D(qty):
                truth[side][D(price)] = D(qty)
            else:
                truth[side].pop(D(price), None)
        history[uid] = ({**truth["b"]}, {**truth["a"]})
        frame = diff(uid, uid, bids=bids, asks=asks)
        roll = rng.random()
        if roll < 0.03:
            continue  # lost on the wire: a gap
        wire.append(frame)
        if roll > 0.97 and len(wire) > 3:
            wire.extend(wire[-3:-1])  # a duplicated range
    sync = BookSync(STREAM, "SOL_USDC")
    state = None
    resyncs = updates = 0
    for position, frame in enumerate(wire):
        records = sync.on_depth(frame)
        if sync.needs_snapshot():
            sync.snapshot_started()
            # The REST answer: the true book as of a recent id.
            at = max(1, frame.data.u - rng.randint(0, 2))
            bids, asks = history[at]
            rest = DepthSnapshot(
                bids=[(str(p), str(q)) for p, q in sorted(bids.items())],
                asks=[(str(p), str(q)) for p, q in sorted(asks.items())],
                lastUpdateId=at,
                timestamp=0,
            )
            records += sync.on_snapshot(rest, position)
        for record in records:
            state, _ = step(state, record, BookConfig(emit_every_us=10**12))
            if isinstance(record, Resync):
                resyncs += 1
                continue
            entry = state.books[STREAM]
            if not entry.live:
                continue
            updates += 1
            bids, asks = history[entry.book.update_id]
            best_bid = max(bids.items()) if bids else None
            best_ask = min(asks.items()) if asks else None
            assert entry.book.best_bid() == best_bid
            assert entry.book.best_ask() == best_ask
            if isinstance(record, BookSnapshot):
                assert dict(entry.book.bids) == bids
                assert dict(entry.book.asks) == asks
    assert updates > 0
    final = state.books[STREAM]
    if final.live:
        bids, asks = history[final.book.update_id]
        assert dict(final.book.bids) == bids
        assert dict(final.book.asks) == asks


_STATS_OF_THE_BOOK = (
    "best_bid",
    "bid_qty",
    "best_ask",
    "ask_qty",
    "spread",
    "spread_bps",
    "mid",
    "microprice",
    "imbalance",
    "bid_levels",
    "ask_levels",
    "valid",
)


def _as_printed(stats: BookStats) -> tuple[object, ...]:
    # str, not ==: "10.1" and "10.10" are equal values printed differently. The
    # bands by value: their sums are in the units of the most decimals the book
    # has seen, which a fresh book may not have seen.
    printed = tuple(str(getattr(stats, name)) for name in _STATS_OF_THE_BOOK)
    return (*printed, stats.bands)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), n_updates=st.integers(20, 300))
def test_stats_on_every_update_equal_a_fresh_books(seed: int, n_updates: int) -> None:
    """Every cache the stats keep between updates (spread and mid, microprice, top
    sums, imbalance, bands) gives what a book fresh from a snapshot of the same
    levels, as printed, gives: sizes changed in place at the touch, levels coming
    and going, prices printed with another exponent."""
    rng = random.Random(seed)
    # Near the touch, a few prices each printed two or three ways; farther, more.
    bid_pool = [*PRICES[:10], "9.8", "9.9", "9.90", "10", "10.0", "10.00"]
    ask_pool = [*PRICES[30:], "10.1", "10.10", "10.2", "10.25", "11", "11.0"]
    config = BookConfig(emit_every_us=0, top_n=3)
    state, _ = step(None, snap(1), config)
    for uid in range(2, n_updates + 2):
        bids, asks = [], []
        for _ in range(rng.randint(1, 3)):
            side = rng.choice("ba")
            price = rng.choice(bid_pool if side == "b" else ask_pool)
            qty = rng.choice(["0", "0.5", "1", "1.50", "2.5", "7"])
            (bids if side == "b" else asks).append((price, qty))
        book = state.books[STREAM].book
        if book.bid_count and rng.random() < 0.2:
            # The best bid gone and back in one diff, printed with one more zero.
            price, qty = book.best_bid()
            more = f"{price}0" if "." in str(price) else f"{price}.0"
            if len(more) < 10:
                bids += [(str(price), "0"), (more, str(qty))]
        state, outs = step(state, diff(uid, uid, bids=bids, asks=asks), config)
        kept = [o for o in outs if isinstance(o, BookStats)]
        _, fresh = step(
            None,
            BookSnapshot(
                STREAM,
                "SOL_USDC",
                uid,
                [(str(p), str(q)) for p, q in book.bids.items()],
                [(str(p), str(q)) for p, q in book.asks.items()],
                recv_us=1_000,
            ),
            config,
        )
        expected = [o for o in fresh if isinstance(o, BookStats)]
        assert len(kept) == len(expected) == 1
        assert _as_printed(kept[0]) == _as_printed(expected[0])
