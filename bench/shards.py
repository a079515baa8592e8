"""What each process of a sharded replay pays for every line of the recording.

Each worker of an N-process replay reads the whole file and keeps the lines of the
markets it owns (``connectors/shard.py``): reading (inflating, splitting lines) and
the selection are the part that does not shrink with more processes, and what keeps
2 processes under twice one. Measured per line beside reading alone, over both shapes
of recording the benches replay: the bench session (8 markets, the exchange's
stream-last layout) and the derivatives session (100 perps, two thirds of its lines
liquidations: all-markets lines, each decided by the symbol in its data); for a shard
owning none of the markets and one owning half.

Two measures: time (the best of 3 passes) and instructions (valgrind's callgrind,
the same in every run of the same code: this VM's speed moves 2x within a run, more
than the selection's share). Instructions need valgrind; without it they are
``None``.

    python -m bench.shards PATH MODE    # one pass (what valgrind counts)

MODE: ``none`` (imports only), ``read``, ``select-none`` or ``select-half``.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

_PASSES = 3


def _symbols(path: Path) -> list[str]:
    from bpx_flows.inputs import recorded_symbols

    return recorded_symbols([str(path)])


def _shard(path: Path, owning: str) -> Any:
    """A shard owning none or half of the recording's markets (half: the default)."""
    from bpx_flows.connectors.shard import Shard

    symbols = _symbols(path)
    owned = frozenset(symbols[::2]) if owning == "half" else frozenset()
    return Shard(owned, frozenset(symbols), default=bool(owned))


def _per_line(path: Path, shard: Any) -> tuple[float, float, int]:
    """µs per line, reading alone and the shard's selection (best of the passes)."""
    from bpx_flows.connectors.recording import RecordingReader

    best_read = best_select = float("inf")
    lines = 0
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
    return round(best_read, 3), round(best_select, 3), lines


def _one_pass(path: Path, mode: str) -> None:
    """What ``_instructions`` counts: imports and a shard made (``none``), and
    reading, selecting. Every mode makes its shard, so the differences between
    modes are the reading and the selection alone."""
    from bpx_flows.connectors.recording import RecordingReader

    selecting = mode.startswith("select-")
    shard = _shard(path, mode.removeprefix("select-") if selecting else "none")
    if mode == "none":
        return
    for block in RecordingReader(path).blocks():
        if selecting:
            shard.select(block)


def _instructions(path: Path, mode: str) -> int:
    from bench.instructions import valgrind_count

    return valgrind_count("bench.shards", str(path), mode)


def _counted(path: Path, lines: int) -> dict[str, int] | None:
    """Instructions per line: reading, and each shard's selection on top."""
    if shutil.which("valgrind") is None:
        return None
    base = _instructions(path, "none")
    read = _instructions(path, "read")
    none = _instructions(path, "select-none")
    half = _instructions(path, "select-half")
    return {
        "read": round((read - base) / lines),
        "select_owning_none": round((none - read) / lines),
        "select_owning_half": round((half - read) / lines),
    }


def bench_shards(recordings: dict[str, Path]) -> dict[str, Any]:
    """Per line of each recording: reading, a shard's selection; timed and counted."""
    results: dict[str, Any] = {}
    for name, path in recordings.items():
        row: dict[str, Any] = {"markets": len(_symbols(path))}
        for owning in ("none", "half"):
            read, select, lines = _per_line(path, _shard(path, owning))
            row["read_us_per_line"] = min(read, row.get("read_us_per_line", read))
            row[f"select_us_per_line_owning_{owning}"] = select
        row["lines"] = lines
        row["instructions_per_line"] = counted = _counted(path, lines)
        results[name] = row
        print(
            f"sharded replay, per line of {path.name} ({row['markets']} markets): "
            f"reading {row['read_us_per_line']} µs, a shard's selection "
            f"{row['select_us_per_line_owning_none']} µs (owning none) / "
            f"{row['select_us_per_line_owning_half']} µs (owning half)"
            + (
                f"; instructions: reading {counted['read']:,}, selection "
                f"{counted['select_owning_none']:,} / {counted['select_owning_half']:,}"
                if counted
                else "; instructions: skipped (valgrind not installed)"
            ),
            flush=True,
        )
    return results


if __name__ == "__main__":
    _one_pass(Path(sys.argv[1]), sys.argv[2])
