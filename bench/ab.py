"""Before and after, side by side in one run: the same cases on two checkouts.

    python -m bench.ab BEFORE_DIR [ROUNDS]

``BEFORE_DIR`` is another checkout of this project (``make bench-ab BEFORE=<rev>``
makes one with ``git worktree``). Each case runs in its own process, alternating
before and after for ``ROUNDS`` rounds (3 by default), so drift of the machine hits
both alike; the best rate of each side and its peak RSS are printed and written to
``out/bench-ab.json``. Both sides read the same session, and the live cases the same
simulator (this checkout's), so only the client code differs.

Cases: the replay source and the live source over loopback (the connection, its
fetch loop, the replayer), the ``book``, ``candles``, ``derivatives`` and
``liquidations`` flows from a replay, and the ``market`` flow from a replay as
``bpx-flows run`` builds it (``bench.flows``). Last, the book flow under cProfile on
each side: Python function calls per frame, a count the machine's speed does not
change (best-of wall rates on this VM vary by 1.5x from run to run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.flows import MARKETS
from bench.harness import start_sim
from bench.run import OUT, SESSION, ensure_session

ROOT = Path(__file__).resolve().parents[1]
_MARKETS = ",".join(MARKETS)  # the 8 markets of the session


def _run(tree: Path, module: str, *args: str) -> dict[str, Any]:
    """One case of ``module`` run from ``tree`` (its code, its benchmarks)."""
    return _last_json(tree, ["-m", module, *args])


def _last_json(tree: Path, args: list[str]) -> dict[str, Any]:
    """``python ARGS`` from ``tree`` (its code first on the path): its last line."""
    env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_SYMBOLS": _MARKETS}
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
        cwd=tree,
    )
    if proc.returncode != 0:
        msg = f"{tree.name}: {args[:3]} failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# The book flow under cProfile: Python function calls per frame, a count that does
# not vary with the machine's speed (wall rates here vary by 1.5x between runs).
# Written against both layouts (before: per-flow ``build``; after: ``wiring``).
_CALLS = """
import cProfile, json, pstats, sys
from bytewax.testing import run_main
from bench.cases import TimingSink, _Clock, frame_count
try:
    from bpx_flows.connectors.sources import ReplaySource
except ImportError:
    from bpx_flows.connectors.source import ReplaySource
sink = TimingSink(_Clock())
try:
    from bench.cases import wired
    from bpx_flows.flows.book import BookSettings
    flow = wired("book", ReplaySource([sys.argv[1]]), sink, (BookSettings(),))
except ImportError:
    from bpx_flows.flows.book import build
    from bpx_flows.operators.book_state import BookConfig
    config = BookConfig(emit_every_us=1_000_000)
    flow = build(ReplaySource([sys.argv[1]]), sink, sink, config)
profile = cProfile.Profile()
profile.runcall(run_main, flow)
calls = pstats.Stats(profile).total_calls
frames = frame_count(sys.argv[1])
print(json.dumps({"calls": calls, "frames": frames, "peak_rss_mb": 0}))
"""


def _calls(tree: Path, session: str) -> dict[str, Any]:
    return _last_json(tree, ["-c", _CALLS, session])


def _rate(row: dict[str, Any]) -> float:
    if row.get("frames_per_s"):
        return float(row["frames_per_s"])
    seconds = row["end"] - row.get("first_output", row["start"])
    return float(row["frames"] / seconds)


def _cases(session: str, ws: str, rest: str) -> dict[str, tuple[str, ...]]:
    return {
        "replay source": ("bench.cases", "replay", session),
        "live source (loopback)": ("bench.cases", "live", ws, rest, session),
        "book flow, replay": ("bench.cases", "book_replay", session),
        "candles flow, replay": ("bench.cases", "candles_replay", session),
        "derivatives flow, replay": (
            "bench.cases",
            "flow_replay",
            "derivatives",
            session,
        ),
        "liquidations flow, replay": (
            "bench.cases",
            "flow_replay",
            "liquidations",
            session,
        ),
        "market flow (run), replay": (
            "bench.flows",
            "replay",
            "market",
            "1",
            "-",
            "-",
            session,
        ),
    }


def main(before: str, rounds: int = 3) -> int:
    """Run every case on both checkouts; print and write the table."""
    ensure_session()
    trees = {"before": Path(before).resolve(), "after": ROOT}
    sim, ws, rest = start_sim(SESSION)  # as make bench's live source case
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for name, (module, *args) in _cases(str(SESSION.resolve()), ws, rest).items():
            runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
            for _ in range(rounds):
                for side, tree in trees.items():
                    runs[side].append(_run(tree, module, *args))
            results[name] = runs
            _say(name, runs)
    finally:
        sim.terminate()
        sim.wait(timeout=20)
    table = {
        name: {
            side: {
                "best_frames_per_s": round(max(_rate(r) for r in rows)),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
            }
            for side, rows in runs.items()
        }
        for name, runs in results.items()
    }
    calls = {side: _calls(tree, str(SESSION.resolve())) for side, tree in trees.items()}
    for side, row in calls.items():
        table.setdefault("book flow, Python calls per frame", {})[side] = {
            "calls_per_frame": round(row["calls"] / row["frames"], 3)
        }
    before, after = (calls[k]["calls"] / calls[k]["frames"] for k in trees)
    print(
        f"book flow, Python calls per frame (cProfile): before {before:.3f}, "
        f"after {after:.3f} ({after / before:.4f}x)",
        flush=True,
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "bench-ab.json").write_text(json.dumps(table, indent=2))
    print(f"written: {OUT / 'bench-ab.json'}")
    return 0


def _say(name: str, runs: dict[str, list[dict[str, Any]]]) -> None:
    before = max(_rate(r) for r in runs["before"])
    after = max(_rate(r) for r in runs["after"])
    rss_before = max(r["peak_rss_mb"] for r in runs["before"])
    rss_after = max(r["peak_rss_mb"] for r in runs["after"])
    print(
        f"{name}: before {before:,.0f}/s, after {after:,.0f}/s "
        f"({after / before:.3f}x); peak RSS {rss_before} -> {rss_after} MB",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], *(int(a) for a in sys.argv[2:3])))
