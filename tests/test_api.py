"""The public Python API: every name imports, is documented, and the example runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bpx_flows.api

ROOT = Path(__file__).parent.parent


def test_every_public_name_is_documented() -> None:
    doc = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for name in bpx_flows.api.__all__:
        assert getattr(bpx_flows.api, name) is not None
        assert f"`{name}`" in doc, name


def test_the_example_flow_runs_on_the_simulator(tmp_path: Path) -> None:
    out = tmp_path / "candles.jsonl"
    example = ROOT / "docs" / "examples" / "custom_flow.py"
    result = subprocess.run(
        [sys.executable, str(example), "4", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    candles = [json.loads(line) for line in out.read_text().splitlines()]
    assert candles and all(c["interval"] == "1s" for c in candles)
    assert {c["symbol"] for c in candles} <= {"SOL_USDC", "BTC_USDC_PERP"}
    assert all(line.startswith("WIDE ") for line in result.stdout.splitlines())


def test_the_example_runs_under_bytewax_on_two_workers(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bytewax.run",
            f"docs.examples.custom_flow:dataflow(4, {str(tmp_path / 'c.jsonl')!r})",
            "-w",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted(tmp_path.glob("c.*.jsonl"))
    assert [f.name for f in files] == ["c.0.jsonl", "c.1.jsonl"]
    assert sum(len(f.read_text().splitlines()) for f in files) > 0
