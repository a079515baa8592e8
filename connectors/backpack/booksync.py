"""Order-book synchronisation for one depth stream, sans I/O.

The socket never sends a snapshot, so a book is seeded from ``GET /api/v1/depth`` and
continued with diffs (PROTOCOL.md section 4.2):

1. buffer diffs while a snapshot is fetched;
2. with ``L = lastUpdateId``, drop diffs with ``u <= L``;
3. the first diff kept must straddle the snapshot: ``U <= L + 1 <= u``; if it starts
   later, the snapshot is too old and another is fetched;
4. afterwards every diff must continue the previous one: ``U == previous u + 1``;
   ``u <= previous u`` is a duplicate and is dropped; anything else is a gap, which
   emits a ``Resync`` marker and starts again at 1.

Bounded against any server: a gap while diffs wait for a snapshot is a ``Resync``
(``gap``) like any other; the buffer is bounded in bytes (estimated from the levels
it holds); and a live book whose diffs keep arriving as "duplicates" for more than
``MAX_BEHIND_US`` of event time (the snapshot was ahead of the stream and the stream
never catches up, as after an exchange sequence reset) is resynced instead of
freezing silently. (A snapshot slightly ahead is normal: the stream catches up within
the REST latency, and those diffs are dropped as duplicates.)

The caller does the fetching: it asks ``needs_snapshot()``, calls ``snapshot_started()``
when it sends the request, and feeds the answer (or the failure) back.
"""

from __future__ import annotations

import enum

import msgspec

from .wire import Depth, DepthSnapshot, Frame, Level

__all__ = [
    "MAX_BEHIND_US",
    "BookSnapshot",
    "BookSync",
    "Resync",
    "ResyncReason",
    "SyncRecord",
    "SyncStats",
]


class ResyncReason(enum.StrEnum):
    """Why a book was invalidated."""

    GAP = "gap"  # a diff did not continue the previous one
    RECONNECT = "reconnect"  # the connection was lost; diffs in between are unknown
    STALE_SNAPSHOT = "stale_snapshot"  # the snapshot was older than the buffered diffs
    BUFFER_OVERFLOW = "buffer_overflow"  # too many diffs waited for a snapshot
    SNAPSHOT_AHEAD = "snapshot_ahead"  # diffs never caught up with the snapshot


class BookSnapshot(msgspec.Struct, frozen=True):
    """A REST snapshot aligned with the stream: the book as of ``lastUpdateId``.

    Levels are as the REST answer gives them (both sides ascending by price). The
    diffs that follow on ``stream`` continue it.
    """

    stream: str
    symbol: str
    lastUpdateId: int
    bids: list[Level]
    asks: list[Level]
    recv_us: int  # when the snapshot arrived, microseconds since the epoch


class Resync(msgspec.Struct, frozen=True):
    """The book of ``stream`` is invalid from here until the next ``BookSnapshot``.

    Attributes:
        expected: the update id that should have come next, if known.
        got: the first update id of the diff that broke the sequence, if any.
    """

    stream: str
    symbol: str
    reason: ResyncReason
    expected: int | None
    got: int | None
    recv_us: int


SyncRecord = BookSnapshot | Resync | Frame[Depth]


class SyncStats(msgspec.Struct):
    """Counters of one depth stream's synchronisation."""

    snapshots: int = 0
    resyncs: int = 0
    gaps: int = 0
    duplicates: int = 0
    stale_snapshots: int = 0
    dropped_before_snapshot: int = 0
    snapshots_ahead: int = 0
    buffer_overflows: int = 0


MAX_BEHIND_US = 5_000_000  # event time of duplicates in a row that means stuck
_LEVEL_BYTES = 48  # a level's share of a buffered diff, estimated
_DIFF_BYTES = 200  # a diff's own share


def _diff_bytes(diff: Depth) -> int:
    return _DIFF_BYTES + _LEVEL_BYTES * (len(diff.a) + len(diff.b))


class _State(enum.Enum):
    NEEDS_SNAPSHOT = 1
    FETCHING = 2
    LIVE = 3


class BookSync:
    """The synchronisation state machine of one depth stream.

    Args:
        stream: the depth stream name, e.g. ``depth.200ms.SOL_USDC``.
        symbol: its market.
        max_buffer: diffs kept while waiting for a snapshot; past it the oldest are
            dropped and the snapshot in flight will be found stale.
        max_buffer_bytes: the same bound in (estimated) bytes, whichever bites
            first: a flood of large diffs during a slow snapshot cannot fill memory.
    """

    def __init__(
        self,
        stream: str,
        symbol: str,
        max_buffer: int = 50_000,
        max_buffer_bytes: int = 64 << 20,
    ) -> None:
        self.stream = stream
        self.symbol = symbol
        self.stats = SyncStats()
        self._max_buffer = max_buffer
        self._max_buffer_bytes = max_buffer_bytes
        self._buffer: list[Frame[Depth]] = []
        self._buffer_bytes = 0
        self._behind_since_us: int | None = None  # E of the first duplicate in a row
        self._state = _State.NEEDS_SNAPSHOT
        self._last_u = 0

    @property
    def live(self) -> bool:
        """Whether diffs are flowing on top of a snapshot."""
        return self._state is _State.LIVE

    @property
    def last_update_id(self) -> int:
        """The last update id applied (0 before the first snapshot)."""
        return self._last_u

    @property
    def has_buffer(self) -> bool:
        """Whether diffs are waiting for a snapshot (the moment to fetch one)."""
        return bool(self._buffer)

    def needs_snapshot(self) -> bool:
        """Whether the caller should fetch a snapshot now."""
        return self._state is _State.NEEDS_SNAPSHOT

    def snapshot_started(self) -> None:
        """The caller sent the snapshot request."""
        self._state = _State.FETCHING

    def snapshot_failed(self) -> None:
        """The snapshot request failed for good; ask again."""
        if self._state is _State.FETCHING:
            self._state = _State.NEEDS_SNAPSHOT

    def continues(self, diff: Depth) -> bool:
        """The fast path: a live book's next diff in sequence is accepted as is.

        Returns ``False`` for anything else (not live, gap, duplicate, overlap), which
        the caller then passes to ``on_depth``.
        """
        if self._state is _State.LIVE and diff.U - self._last_u == 1:
            self._last_u = diff.u
            self._behind_since_us = None
            return True
        return False

    @property
    def buffer_bytes(self) -> int:
        """Estimated bytes of the diffs waiting for a snapshot."""
        return self._buffer_bytes

    def on_depth(self, frame: Frame[Depth]) -> list[SyncRecord]:
        """Feed one diff; returns what to emit downstream (often just the diff)."""
        if self._state is not _State.LIVE:
            return self._buffer_diff(frame)
        diff = frame.data
        if diff.u <= self._last_u:
            self.stats.duplicates += 1
            since = self._behind_since_us
            if since is None:
                self._behind_since_us = diff.E
                return []
            if diff.E - since <= MAX_BEHIND_US:
                return []
            # Diffs that never reach the snapshot: it was ahead of the stream.
            self.stats.snapshots_ahead += 1
            resync = self._invalidate(
                ResyncReason.SNAPSHOT_AHEAD, self._last_u + 1, diff.U, frame.recv_us
            )
            self._buffer_diff(frame)
            return [resync]
        self._behind_since_us = None
        if self._last_u + 1 < diff.U:
            self.stats.gaps += 1
            resync = self._invalidate(
                ResyncReason.GAP, self._last_u + 1, diff.U, frame.recv_us
            )
            self._buffer_diff(frame)
            return [resync]
        self._last_u = diff.u
        return [frame]

    def on_snapshot(self, snapshot: DepthSnapshot, recv_us: int) -> list[SyncRecord]:
        """Feed the REST answer; returns the snapshot and the buffered diffs after it.

        Returns an empty list when the snapshot cannot be aligned yet (it is ahead of
        every buffered diff: it is kept and aligned with the next ones) or is too old (a
        new fetch is requested: see ``needs_snapshot``).
        """
        if self._state is not _State.FETCHING:
            return []  # a late answer for a sync that was reset meanwhile
        last = snapshot.lastUpdateId
        kept = [f for f in self._buffer if f.data.u > last]
        self.stats.dropped_before_snapshot += len(self._buffer) - len(kept)
        if kept and last + 1 < kept[0].data.U:
            self.stats.stale_snapshots += 1
            self._buffer = kept
            self._buffer_bytes = sum(_diff_bytes(f.data) for f in kept)
            self._state = _State.NEEDS_SNAPSHOT
            return []
        self._buffer = []
        self._buffer_bytes = 0
        self._state = _State.LIVE
        self._last_u = last
        self._behind_since_us = None
        self.stats.snapshots += 1
        out: list[SyncRecord] = [
            BookSnapshot(
                self.stream, self.symbol, last, snapshot.bids, snapshot.asks, recv_us
            )
        ]
        for frame in kept:
            out.extend(self.on_depth(frame))
        return out

    def reset(self, reason: ResyncReason, recv_us: int) -> list[SyncRecord]:
        """Invalidate the book (e.g. on reconnect); a ``Resync`` if it was live."""
        was_live = self._state is _State.LIVE
        expected = self._last_u + 1 if was_live else None
        resync = self._invalidate(reason, expected, None, recv_us)
        return [resync] if was_live else []

    # Private helpers.

    def _invalidate(
        self, reason: ResyncReason, expected: int | None, got: int | None, recv_us: int
    ) -> Resync:
        self.stats.resyncs += 1
        self._buffer = []
        self._buffer_bytes = 0
        self._behind_since_us = None
        self._state = _State.NEEDS_SNAPSHOT
        return Resync(self.stream, self.symbol, reason, expected, got, recv_us)

    def _buffer_diff(self, frame: Frame[Depth]) -> list[SyncRecord]:
        buffer = self._buffer
        out: list[SyncRecord] = []
        if buffer and buffer[-1].data.u + 1 < frame.data.U:
            # A gap while buffering: only diffs after it can be used, and the
            # snapshot in flight (if any) may be stale. Said like any other gap.
            self.stats.gaps += 1
            self.stats.resyncs += 1
            expected = buffer[-1].data.u + 1
            out.append(
                Resync(
                    self.stream,
                    self.symbol,
                    ResyncReason.GAP,
                    expected,
                    frame.data.U,
                    frame.recv_us,
                )
            )
            buffer.clear()
            self._buffer_bytes = 0
        elif buffer and frame.data.u <= buffer[-1].data.u:
            self.stats.duplicates += 1
            return out
        buffer.append(frame)
        self._buffer_bytes += _diff_bytes(frame.data)
        if (
            len(buffer) > self._max_buffer
            or self._buffer_bytes > self._max_buffer_bytes
        ):
            self.stats.buffer_overflows += 1
            while buffer and (
                len(buffer) > self._max_buffer
                or self._buffer_bytes > self._max_buffer_bytes
            ):
                self._buffer_bytes -= _diff_bytes(buffer.pop(0).data)
        return out
