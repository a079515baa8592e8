"""Routes decoded frames through the book sync of their depth stream, sans I/O.

Shared by the live connection (which fetches the snapshots it is asked for) and the
replayer (which finds them in the recording), so both emit the same records.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError
from .booksync import BookSync, ResyncReason, SyncRecord
from .streams import Channel, parse_stream
from .wire import Depth, DepthSnapshot, Frame

__all__ = ["BookRouter"]


class BookRouter:
    """One ``BookSync`` per depth stream; other frames pass straight through.

    Args:
        depth_streams: the depth streams to sync; ``None`` creates a sync for any
            depth stream on its first frame (replay of an unknown recording).
    """

    def __init__(self, depth_streams: Iterable[str] | None = None) -> None:
        self._on_demand = depth_streams is None
        self.syncs: dict[str, BookSync] = {}
        self._wanting: dict[str, BookSync] = {}  # syncs that may need a snapshot
        for stream in depth_streams or ():
            self._add(stream)

    def _add(self, stream: str) -> BookSync:
        name = parse_stream(stream)
        if name.channel is not Channel.DEPTH or name.symbol is None:
            msg = f"{stream} is not a depth stream"
            raise ConfigError(msg)
        sync = self.syncs[stream] = BookSync(stream, name.symbol)
        return sync

    def on_frame(self, frame: Frame[Any]) -> list[SyncRecord] | None:
        """Records for a depth frame, or ``None`` when the frame is not synced here."""
        if type(frame.data) is not Depth:
            return None
        sync = self.syncs.get(frame.stream)
        if sync is None:
            if not self._on_demand:
                return None
            sync = self._add(frame.stream)
        records = sync.on_depth(frame)
        if sync.needs_snapshot():  # not while its snapshot is on its way
            self._wanting[sync.stream] = sync
        return records

    @property
    def wanting(self) -> bool:
        """Whether some book may need a snapshot (``start_fetches`` has work)."""
        return bool(self._wanting)

    def start_fetches(self, most: int | None = None) -> list[BookSync]:
        """Syncs that need a snapshot now (at most ``most``); each marked fetching.

        Those beyond ``most`` keep waiting for a later call. A sync leaves the
        waiting ones when its fetch starts (or it is live): while a burst of diffs
        waits for the snapshots, each diff would otherwise walk every fetching book.
        """
        wanted: list[BookSync] = []
        for stream, sync in list(self._wanting.items()):
            if most is not None and len(wanted) >= most:
                break
            if not sync.needs_snapshot():  # live, or its snapshot is on its way
                del self._wanting[stream]
            elif sync.has_buffer:
                sync.snapshot_started()
                del self._wanting[stream]
                wanted.append(sync)
        return wanted

    def snapshot_failed(self, stream: str) -> None:
        """The fetch for ``stream`` failed; the next ``start_fetches`` retries it."""
        sync = self.syncs[stream]
        sync.snapshot_failed()
        self._wanting[stream] = sync

    def on_snapshot(
        self, stream: str, snapshot: DepthSnapshot, recv_us: int
    ) -> list[SyncRecord]:
        """Feed a snapshot fetched for ``stream``."""
        sync = self.syncs.get(stream)
        if sync is None:
            return []
        records = sync.on_snapshot(snapshot, recv_us)
        if not sync.live:
            self._wanting[stream] = sync
        return records

    def reset_all(self, reason: ResyncReason, recv_us: int) -> list[SyncRecord]:
        """Invalidate every book (a reconnect); ``Resync`` for each live one."""
        out: list[SyncRecord] = []
        for sync in self.syncs.values():
            out.extend(sync.reset(reason, recv_us))
            self._wanting[sync.stream] = sync
        return out
