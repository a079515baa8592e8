"""The simulator's replay mode: serve a recording instead of the synthetic exchange.

Each WebSocket client gets its own cursor from the start of the file, paced by the
recorded receive times (``speed`` x real time) or as fast as the client reads. REST
depth answers the recorded snapshot of the symbol nearest before the furthest cursor.
When the file ends, the server closes the connection normally (1000).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from ..backpack.streams import parse_stream
from ..backpack.wire import (
    Market,
    MarketFilters,
    PriceFilter,
    QuantityFilter,
)
from ..errors import ConfigError
from ..recording import iter_lines, unsplice

__all__ = ["RecordedFrame", "RecordingFeed", "replay_markets"]


class _Line(msgspec.Struct):
    recv_us: int = 0
    stream: str | None = None
    rest: str | None = None
    params: dict[str, str] = msgspec.field(default_factory=dict)
    data: msgspec.Raw = msgspec.Raw()


_LINE = msgspec.json.Decoder(_Line)


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    """One frame as received, with its stream and receive time (microseconds)."""

    recv_us: int
    stream: str
    raw: bytes


@dataclass
class RecordingFeed:
    """A recording loaded into memory for serving."""

    frames: list[RecordedFrame] = field(default_factory=list)
    # symbol -> (frame index at which the snapshot arrived, body), in file order
    snapshots: dict[str, list[tuple[int, bytes]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @classmethod
    def load(cls, path: str | Path) -> RecordingFeed:
        """Read a recording (see ``connectors.recording``).

        Raises:
            ConfigError: the file is missing or holds no frames.
        """
        if not Path(path).is_file():
            msg = f"no such recording: {path}"
            raise ConfigError(msg)
        feed = cls()
        for line in iter_lines(path):
            try:
                item = _LINE.decode(line)
            except msgspec.DecodeError:
                continue
            if item.stream is not None:
                frame = RecordedFrame(item.recv_us, item.stream, unsplice(line))
                feed.frames.append(frame)
            elif item.rest == "/api/v1/depth" and "symbol" in item.params:
                at = len(feed.frames)
                feed.snapshots[item.params["symbol"]].append((at, bytes(item.data)))
        if not feed.frames:
            msg = f"{path} holds no frames to replay"
            raise ConfigError(msg)
        return feed

    def symbols(self) -> list[str]:
        """Markets that appear in the recording."""
        names = set(self.snapshots)
        for stream in {f.stream for f in self.frames}:
            symbol = parse_stream(stream).symbol
            if symbol:
                names.add(symbol)
        return sorted(names)

    def snapshot(self, symbol: str, position: int) -> bytes | None:
        """The snapshot body recorded last before ``position``, else the first one."""
        rows = self.snapshots.get(symbol)
        if not rows:
            return None
        index = bisect.bisect_right([at for at, _ in rows], position) - 1
        return rows[max(index, 0)][1]


def replay_markets(symbols: list[str]) -> list[Market]:
    """Market rows for a replay: names and types only (filters are not recorded).

    The tick and step sizes are placeholders (1e-8): a replay serves what was recorded
    and never checks prices against filters.
    """
    rows = []
    for symbol in symbols:
        parts = symbol.split("_")
        kind = "PERP" if symbol.endswith("_PERP") else "SPOT"
        filters = MarketFilters(PriceFilter("0.00000001"), QuantityFilter("0.00000001"))
        quote = parts[1] if len(parts) > 1 else "USDC"
        rows.append(Market(symbol, parts[0], quote, kind, filters, "Open"))
    return rows
