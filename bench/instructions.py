"""Instructions per frame, counted by valgrind: a measure this VM's drift cannot move.

The machine's speed moves 2x between runs (docs/benchmarks.md), so a 10-20 % change
of the stats' cost hides in timed runs. Valgrind's callgrind counts the instructions
a run executes, the same in every run of the same code (hash seed fixed). This
counts the ``book`` flow from a recording (the first ``LINES`` lines of ``book-1``)
with stats once a second and after every update, less a run of its first line
(imports, building the flow): instructions per frame, and their ratio. And the
``market`` flow over the first ``LINES`` lines of the bench session (every public
stream of 8 markets): what a research replay costs per frame.

Instructions are not time: cycles per instruction vary with the work (allocation,
cache misses), so the timed ratio differs either way. The count says which way a
change moved the cost, exactly; the timed cases in ``bench.run`` say what it costs.

Skipped (``None``) without valgrind (``apt-get install valgrind``); each run takes
~45 s under it.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.cases import frame_count

LINES = 30_000
_COLLECTED = re.compile(r"Collected : (\d+)")


def head_of(path: Path, lines: int) -> Path:
    """The recording's header and its next ``lines`` lines, in a file beside it."""
    out = path.with_name(f"{path.name.split('.')[0]}-head-{lines}.jsonl.gz")
    if out.exists():
        return out
    with gzip.open(path, "rb") as src, gzip.open(out, "wb") as dst:
        for index, line in enumerate(src):
            if index > lines:
                break
            dst.write(line)
    return out


def instructions(path: Path, every_ms: str) -> int:
    """Instructions of the ``book_replay`` case over ``path`` (all threads)."""
    return counted(path, "book_replay", str(path), every_ms)


def counted(path: Path, case: str, *args: str) -> int:
    """Instructions of ``bench.cases`` ``case`` (over the recording ``path``)."""
    # The frames are counted by the caller: the count's own pass over the file is no
    # part of the case.
    frames = {"BENCH_FRAMES_COUNTED": str(frame_count(str(path)))}
    return valgrind_count("bench.cases", case, *args, env=frames)


def valgrind_count(module: str, *args: str, env: dict[str, str] | None = None) -> int:
    """Instructions (all threads) of ``python -m module args``, under callgrind."""
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            module,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={
            **os.environ,
            "PYTHONHASHSEED": "0",  # dicts alike in every run
            **(env or {}),
        },
    )
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        msg = f"valgrind {module} {' '.join(args[:1])} failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return int(found.group(1))


def bench_book_instructions(recording: Path) -> dict[str, Any] | None:
    """The book flow's instructions per frame, stats once a second / every update."""
    if shutil.which("valgrind") is None:
        print("book instructions: skipped (valgrind not installed)", flush=True)
        return None
    head = head_of(recording, LINES)
    base = instructions(head_of(recording, 1), "0")
    once = instructions(head, "1000") - base
    every = instructions(head, "0") - base
    frames = frame_count(str(head)) - frame_count(str(head_of(recording, 1)))
    row = {
        "frames": frames,
        "once_a_second_per_frame": round(once / frames),
        "every_update_per_frame": round(every / frames),
        "every_update_x": round(every / once, 2),
    }
    print(
        f"book flow, instructions per frame over the first {frames:,} frames of "
        f"{recording.name} (valgrind): stats once a second "
        f"{row['once_a_second_per_frame']:,}, after every update "
        f"{row['every_update_per_frame']:,} ({row['every_update_x']}x)",
        flush=True,
    )
    return row


def bench_market_instructions(recording: Path) -> dict[str, Any] | None:
    """The market flow's instructions per frame from a recording (research replay)."""
    if shutil.which("valgrind") is None:
        print("market instructions: skipped (valgrind not installed)", flush=True)
        return None
    head, first = head_of(recording, LINES), head_of(recording, 1)
    base = counted(first, "flow_replay", "market", str(first))
    total = counted(head, "flow_replay", "market", str(head)) - base
    frames = frame_count(str(head)) - frame_count(str(first))
    row = {"frames": frames, "per_frame": round(total / frames)}
    print(
        f"market flow from a recording, instructions per frame over the first "
        f"{frames:,} frames of {recording.name} (valgrind): {row['per_frame']:,}",
        flush=True,
    )
    return row
