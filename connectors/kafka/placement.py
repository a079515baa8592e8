"""Where each line of the raw feed goes in a topic: sans-I/O, one rule per line kind.

A topic of the raw feed is a recording cut by market: partition ``p`` holds, in
receive order, every line of the markets hashed to ``p`` (frames of every stream,
REST answers, trade backfills), so one consumer of ``p`` sees exactly what a sharded
replay's worker sees of those markets. The rules are ``connectors.shard``'s:

- a line of a market (its stream's symbol, or the ``"s"`` inside an all-markets
  stream's data): partition ``crc32(symbol) % partitions``, keyed by the symbol;
- a line of no market (an RFQ, a raw frame that did not decode, an all-markets line
  without a symbol): partition 0, no key. Partition 0 is the topic's *default*
  partition, as the first shard of a sharded replay;
- a control line (the header, a disconnect): every partition, no key (each
  partition's replay starts from the header and resets its books at a disconnect).

Partition 0 also carries the clock. A flow with a clock (``account``: RFQs expire by
it) gets a ``Watermark`` each whole second of receive time from the default
partition of a replay, decided on every line of the recording. So that partition 0
alone decides the same seconds, a line of a new second that goes elsewhere is
preceded on partition 0 by ``{"recv_us":N,"clock":true}`` (the replayer emits
nothing for it).
"""

from __future__ import annotations

import re
import zlib

from ..clock import WATERMARK_EVERY_US
from ..shard import CONTROL, LineMarkets

__all__ = [
    "DEFAULT_PARTITION",
    "LinePlacement",
    "Placed",
    "clock_line",
    "partition_of",
]

DEFAULT_PARTITION = 0
_RECV_US = re.compile(rb'\{"recv_us":(\d{1,20})')

Placed = tuple[int, bytes | None, bytes]  # (partition, key, line)


def partition_of(symbol: str, partitions: int) -> int:
    """The partition a market's lines go to."""
    return zlib.crc32(symbol.encode()) % partitions


def clock_line(recv_us: int) -> bytes:
    """The line that carries receive time ``recv_us`` to the default partition."""
    return b'{"recv_us":%d,"clock":true}\n' % recv_us


class LinePlacement:
    """The partition (and key) of each line of a feed, in order.

    Args:
        partitions: the topic's partition count.
    """

    def __init__(self, partitions: int) -> None:
        if partitions < 1:
            msg = f"a topic has at least one partition, got {partitions}"
            raise ValueError(msg)
        self.partitions = partitions
        self._markets = LineMarkets()
        self._of_symbol: dict[str, int] = {}
        self._clock_second: int | None = None  # the default partition's last second

    def place(self, line: bytes) -> list[Placed]:
        """Where ``line`` goes: one or more ``(partition, key, line)``, in order."""
        market = self._markets.of(line)
        if market is CONTROL:
            self._clocked(line)
            return [(p, None, line) for p in range(self.partitions)]
        if market is None:
            self._clocked(line)
            return [(DEFAULT_PARTITION, None, line)]
        partition = self._of_symbol.get(market)
        if partition is None:
            partition = partition_of(market, self.partitions)
            self._of_symbol[market] = partition
        placed: Placed = (partition, market.encode(), line)
        if partition == DEFAULT_PARTITION:
            self._clocked(line)
            return [placed]
        found = _RECV_US.match(line)
        if found is None:
            return [placed]
        recv_us = int(found.group(1))
        second = recv_us // WATERMARK_EVERY_US
        if self._clock_second is not None and second <= self._clock_second:
            return [placed]
        self._clock_second = second
        return [(DEFAULT_PARTITION, None, clock_line(recv_us)), placed]

    def _clocked(self, line: bytes) -> None:
        """A line for the default partition: its time is that partition's now."""
        found = _RECV_US.match(line)
        if found is not None:
            second = int(found.group(1)) // WATERMARK_EVERY_US
            if self._clock_second is None or second > self._clock_second:
                self._clock_second = second
