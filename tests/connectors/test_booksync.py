from bpx_flows.connectors.backpack.booksync import (
    BookSnapshot,
    BookSync,
    Resync,
    ResyncReason,
)
from bpx_flows.connectors.backpack.wire import Depth, DepthSnapshot, Frame

STREAM = "depth.SOL_USDC"


def diff(first: int, last: int, bid: str = "1") -> Frame[Depth]:
    data = Depth(E=last, s="SOL_USDC", a=[], b=[("10", bid)], U=first, u=last, T=last)
    return Frame(STREAM, data, recv_us=last)


def snapshot(last_id: int) -> DepthSnapshot:
    return DepthSnapshot(
        asks=[("11", "1")], bids=[("10", "1")], lastUpdateId=last_id, timestamp=0
    )


def synced(last_id: int = 100) -> BookSync:
    sync = BookSync(STREAM, "SOL_USDC")
    sync.snapshot_started()
    out = sync.on_snapshot(snapshot(last_id), 1)
    assert isinstance(out[0], BookSnapshot) and sync.live
    return sync


def ids(records: list) -> list:
    return [
        (r.data.U, r.data.u) if isinstance(r, Frame) else type(r).__name__
        for r in records
    ]


def test_diffs_are_buffered_until_the_snapshot_and_old_ones_dropped() -> None:
    sync = BookSync(STREAM, "SOL_USDC")
    assert sync.needs_snapshot()
    for first in range(95, 105):
        assert sync.on_depth(diff(first, first)) == []
    sync.snapshot_started()
    assert not sync.needs_snapshot()
    out = sync.on_snapshot(snapshot(100), 1)
    assert ids(out) == ["BookSnapshot", (101, 101), (102, 102), (103, 103), (104, 104)]
    assert sync.stats.dropped_before_snapshot == 6
    assert sync.last_update_id == 104


def test_first_diff_may_straddle_the_snapshot() -> None:
    sync = BookSync(STREAM, "SOL_USDC")
    sync.on_depth(diff(95, 103))
    sync.snapshot_started()
    assert ids(sync.on_snapshot(snapshot(100), 1)) == ["BookSnapshot", (95, 103)]


def test_snapshot_older_than_the_buffer_asks_for_another() -> None:
    sync = BookSync(STREAM, "SOL_USDC")
    sync.on_depth(diff(110, 112))
    sync.snapshot_started()
    assert sync.on_snapshot(snapshot(100), 1) == []
    assert sync.needs_snapshot() and sync.stats.stale_snapshots == 1
    sync.snapshot_started()
    assert ids(sync.on_snapshot(snapshot(111), 2)) == ["BookSnapshot", (110, 112)]


def test_snapshot_ahead_of_the_socket_waits_for_the_straddling_diff() -> None:
    sync = BookSync(STREAM, "SOL_USDC")
    sync.on_depth(diff(90, 90))
    sync.snapshot_started()
    assert ids(sync.on_snapshot(snapshot(100), 1)) == ["BookSnapshot"]
    assert sync.on_depth(diff(95, 99)) == []  # contained in the snapshot
    assert ids(sync.on_depth(diff(100, 101))) == [(100, 101)]


def test_gap_emits_resync_and_needs_a_new_snapshot() -> None:
    sync = synced(100)
    out = sync.on_depth(diff(103, 103))
    assert len(out) == 1 and isinstance(out[0], Resync)
    assert (out[0].reason, out[0].expected, out[0].got) == (ResyncReason.GAP, 101, 103)
    assert sync.needs_snapshot() and not sync.live
    assert sync.stats.gaps == 1


def test_duplicate_range_after_newer_diffs_is_dropped() -> None:
    sync = synced(100)
    assert ids(sync.on_depth(diff(101, 102, bid="5"))) == [(101, 102)]
    assert ids(sync.on_depth(diff(103, 103, bid="6"))) == [(103, 103)]
    assert sync.on_depth(diff(101, 102, bid="5")) == []
    assert sync.on_depth(diff(103, 103, bid="6")) == []
    assert sync.stats.duplicates == 2
    assert ids(sync.on_depth(diff(104, 104))) == [(104, 104)]


def test_reconnect_resets_a_live_book() -> None:
    sync = synced(100)
    out = sync.reset(ResyncReason.RECONNECT, 5)
    assert isinstance(out[0], Resync) and out[0].reason is ResyncReason.RECONNECT
    assert sync.needs_snapshot()
    assert BookSync(STREAM, "SOL_USDC").reset(ResyncReason.RECONNECT, 5) == []


def test_late_snapshot_after_reset_is_ignored() -> None:
    sync = BookSync(STREAM, "SOL_USDC")
    sync.snapshot_started()
    sync.reset(ResyncReason.RECONNECT, 1)
    assert sync.on_snapshot(snapshot(100), 2) == []
    assert sync.needs_snapshot()


def test_failed_fetch_is_retried() -> None:
    sync = BookSync(STREAM, "SOL_USDC")
    sync.snapshot_started()
    sync.snapshot_failed()
    assert sync.needs_snapshot()


def test_gap_while_buffering_keeps_only_what_follows_it() -> None:
    sync = BookSync(STREAM, "SOL_USDC")
    sync.on_depth(diff(90, 90))
    sync.on_depth(diff(95, 95))
    sync.snapshot_started()
    assert ids(sync.on_snapshot(snapshot(94), 1)) == ["BookSnapshot", (95, 95)]


def test_buffer_is_bounded() -> None:
    sync = BookSync(STREAM, "SOL_USDC", max_buffer=10)
    for first in range(1, 100):
        sync.on_depth(diff(first, first))
    sync.snapshot_started()
    assert sync.on_snapshot(snapshot(50), 1) == []  # the kept diffs start after 51
    assert sync.needs_snapshot()


def test_a_gap_while_buffering_is_a_resync_and_a_counted_gap() -> None:
    sync = BookSync(STREAM, "SOL_USDC")
    sync.snapshot_started()
    assert sync.on_depth(diff(101, 102)) == []
    out = sync.on_depth(diff(110, 111))  # 103..109 never came
    assert [(r.reason, r.expected, r.got) for r in out] == [
        (ResyncReason.GAP, 103, 110)
    ]
    assert sync.stats.gaps == 1
    # Only the diffs after the gap are kept for the snapshot.
    records = sync.on_snapshot(snapshot(110), 2)
    assert ids(records) == ["BookSnapshot", (110, 111)]


def test_a_snapshot_ahead_of_the_stream_resyncs_instead_of_freezing() -> None:
    sync = synced(1_000_000)  # as after an exchange sequence reset
    out: list = []
    for n in range(1, 200):  # 0.1 s apart: 20 s behind the snapshot
        data = Depth(E=n * 100_000, s="SOL_USDC", a=[], b=[], U=n, u=n, T=n)
        out += sync.on_depth(Frame(STREAM, data, recv_us=n))
    resyncs = [r for r in out if isinstance(r, Resync)]
    assert [r.reason for r in resyncs] == [ResyncReason.SNAPSHOT_AHEAD]
    assert sync.stats.snapshots_ahead == 1
    assert sync.needs_snapshot()


def test_a_snapshot_slightly_ahead_is_caught_up_without_a_resync() -> None:
    sync = synced(150)  # the REST answer is fresher than the stream
    out: list = []
    for n in range(101, 200):  # 10 ms apart: the stream catches up in 0.5 s
        data = Depth(E=n * 10_000, s="SOL_USDC", a=[], b=[], U=n, u=n, T=n)
        out += sync.on_depth(Frame(STREAM, data, recv_us=n))
    assert not [r for r in out if isinstance(r, Resync)]
    assert ids(out)[0] == (151, 151)


def test_the_pre_snapshot_buffer_is_bounded_in_bytes() -> None:
    sync = BookSync(STREAM, "SOL_USDC", max_buffer_bytes=10_000)
    sync.snapshot_started()
    wide = [("10", "1")] * 100  # ~5 kB a diff, estimated
    for n in range(1, 50):
        data = Depth(E=n, s="SOL_USDC", a=wide, b=wide, U=n, u=n, T=n)
        sync.on_depth(Frame(STREAM, data, recv_us=n))
    assert sync.buffer_bytes <= 10_000
    assert sync.stats.buffer_overflows > 0
