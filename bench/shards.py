"""What each process of a sharded replay pays for every line of the recording.

Each worker of an N-process replay reads the whole file and keeps the lines of the
markets it owns (``connectors/shard.py``): reading (inflating, splitting lines) and
the selection are the part that does not shrink with more processes, and what keeps
2 processes under twice one. Timed per line, the best of 3 passes, beside reading
alone in the same run, over both shapes of recording the benches replay: the bench
session (8 markets, the exchange's stream-last layout) and the derivatives session
(100 perps, two thirds of its lines liquidations: all-markets lines, each decided by
the symbol in its data). A shard owning none of the markets and one owning half.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

_PASSES = 3


def _symbols(path: Path) -> list[str]:
    from bpx_flows.connectors.backpack.streams import parse_stream
    from bpx_flows.connectors.recording import read_header

    found = {parse_stream(name).symbol for name in read_header(path).streams}
    return sorted(s for s in found if s is not None)


def _per_line(path: Path, shard: Any) -> tuple[float, float]:
    """µs per line: reading alone, and the shard's selection (best of the passes)."""
    from bpx_flows.connectors.recording import RecordingReader

    best_read = best_select = float("inf")
    for _ in range(_PASSES):
        lines = 0
        read = select = 0.0
        start = time.perf_counter()
        for block in RecordingReader(path).blocks():
            began = time.perf_counter()
            read += began - start
            shard.select(block)
            start = time.perf_counter()
            select += start - began
            lines += len(block)
        best_read = min(best_read, read / lines * 1e6)
        best_select = min(best_select, select / lines * 1e6)
    return round(best_read, 3), round(best_select, 3)


def bench_shards(recordings: dict[str, Path]) -> dict[str, Any]:
    """Read and select µs per line per recording, for a shard of none and of half."""
    from bpx_flows.connectors.shard import Shard

    results: dict[str, Any] = {}
    for name, path in recordings.items():
        symbols = _symbols(path)
        row: dict[str, Any] = {"markets": len(symbols)}
        for owned, label in ((frozenset(), "none"), (frozenset(symbols[::2]), "half")):
            shard = Shard(owned, frozenset(symbols), default=bool(owned))
            read, select = _per_line(path, shard)
            row["read_us_per_line"] = min(read, row.get("read_us_per_line", read))
            row[f"select_us_per_line_owning_{label}"] = select
        results[name] = row
        print(
            f"sharded replay, per line of {path.name} ({row['markets']} markets): "
            f"reading {row['read_us_per_line']} µs, a shard's selection "
            f"{row['select_us_per_line_owning_none']} µs (owning none) / "
            f"{row['select_us_per_line_owning_half']} µs (owning half)",
            flush=True,
        )
    return results
