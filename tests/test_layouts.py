"""Every flow gives the same records on 1 worker, 2 workers and 2 processes.

Each flow replays the same recordings with ``bpx-flows run FLOW --replay FILE --out
OUT`` on the three layouts and the outputs must be equal record for record (the emit
stamp aside). The recordings are the shipped session, a simulated session with every
all-markets stream beside its per-symbol copy, and a hand-written one holding the
cases that split across workers before: a liquidation cascade followed only by
heartbeats, margin use crossing levels on a position read from the all-markets
stream, and an RFQ that expires on a market nobody trades.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
from pathlib import Path

import pytest

from bpx_flows.connectors.sim import SimConfig
from bpx_flows.connectors.sim.session import write_session
from tests.cli import outputs, run_cli
from tests.scenarios import PERPS, T0, S, write_scenario

pytestmark = pytest.mark.e2e

SHIPPED = Path(__file__).parent.parent / "data" / "sessions" / "sim-session.jsonl.gz"
LAYOUTS = {
    "1 worker": ["--workers", "1"],
    "2 workers": ["--workers", "2"],
    "2 processes": ["--processes", "2"],
}


def _run(flow: list[str], recording: Path, layout: list[str], out: Path) -> None:
    result = run_cli(
        *["run", *flow, "--replay", str(recording), "--out", str(out), *layout],
        *["--batch", "50", "--quiet", "--log-level", "warning"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


def _on_every_layout(
    flow: list[str], recording: Path, tmp_path: Path
) -> collections.Counter[str]:
    """The flow's records, after checking that every layout gives the same."""
    outs = {name: tmp_path / f"{name.replace(' ', '-')}.jsonl" for name in LAYOUTS}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(_run, flow, recording, LAYOUTS[name], out)
            for name, out in outs.items()
        ]
        for done in runs:
            done.result()
    results = {name: outputs(out) for name, out in outs.items()}
    one = results["1 worker"]
    for name, got in results.items():
        missing, extra = one - got, got - one
        assert not missing and not extra, (
            f"{' '.join(flow)} on {name}: {sum(missing.values())} records missing, "
            f"{sum(extra.values())} extra; first missing: "
            f"{next(iter(missing), None)}; first extra: {next(iter(extra), None)}"
        )
    return one


def _kinds(records: collections.Counter[str]) -> collections.Counter[str]:
    """Record counts by a short kind (``phase`` of alerts, ``end`` of RFQs...)."""
    found: collections.Counter[str] = collections.Counter()
    for text, n in records.items():
        record = json.loads(text)
        kind = record.get("phase") or record.get("end") or record.get("kind")
        if kind is None and "level" in record and "margin_use" in record:
            kind = f"margin {record['level']}"
        found[str(kind)] += n
    return found


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 simulated seconds: account activity, cascades, every all-markets stream
    beside its per-symbol copy."""
    path = tmp_path_factory.mktemp("layouts") / "simulated.jsonl.gz"
    config = SimConfig(
        seed=11,
        account_every_s=0.3,
        liquidation_every_s=1.0,
        cascade_every_s=25.0,
    )
    streams = ["liquidation", "account.orderUpdate", "account.positionUpdate"]
    streams += ["account.rfqUpdate"]
    for symbol in PERPS:
        streams += [f"liquidation.{symbol}", f"markPrice.{symbol}"]
        streams += [f"account.orderUpdate.{symbol}", f"trade.{symbol}"]
        streams += [f"account.positionUpdate.{symbol}", f"openInterest.{symbol}"]
    streams += ["depth.SOL_USDC_PERP", "bookTicker.SOL_USDC_PERP", "trade.SOL_USDC"]
    write_session(path, 120.0, config, streams, start_us=T0)
    return path


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-written recording of ``tests.scenarios.write_scenario``."""
    return write_scenario(tmp_path_factory.mktemp("layouts") / "scenario.jsonl.gz")


@pytest.mark.parametrize(
    "flow",
    [
        ["market"],
        ["book"],
        ["candles"],
        ["derivatives"],
        ["liquidations"],
        ["account"],
        ["tape"],
        ["account", "SOL_USDC", "SOL_USDC_PERP", "--with-book"],
    ],
    ids=lambda flow: "-".join(f.lstrip("-") for f in flow),
)
def test_the_shipped_session_gives_the_same_records_on_every_layout(
    flow: list[str], tmp_path: Path
) -> None:
    records = _on_every_layout(flow, SHIPPED, tmp_path)
    assert sum(records.values()) >= 10


SMALL_BURSTS = ["--min-notional", "1000", "--min-count", "3", "--multiple", "2"]


@pytest.mark.parametrize(
    "flow",
    [["market", *SMALL_BURSTS], ["liquidations", *SMALL_BURSTS], ["account"]],
    ids=lambda flow: flow[0],
)
def test_all_markets_streams_beside_their_copies_give_the_same_records(
    flow: list[str], simulated: Path, tmp_path: Path
) -> None:
    records = _on_every_layout(flow, simulated, tmp_path)
    kinds = _kinds(records)
    if flow[0] == "account":
        assert sum(records.values()) > 100
    else:
        assert kinds["started"] >= 1  # (bursts still open at the end do not end)


def test_a_cascade_then_heartbeats_ends_every_burst_on_every_layout(
    scenario: Path, tmp_path: Path
) -> None:
    kinds = _kinds(_on_every_layout(["liquidations"], scenario, tmp_path))
    assert (kinds["started"], kinds["ended"]) == (3, 3)


def test_margin_levels_and_a_quiet_rfq_expiry_on_every_layout(
    scenario: Path, tmp_path: Path
) -> None:
    records = _on_every_layout(["account"], scenario, tmp_path)
    kinds = _kinds(records)
    # 0.8 and 0.9 at 40 s... see the fixture: 0.8 at 30 s, 0.9 at 40 s, 0.9 at 60 s.
    assert (kinds["margin 0.8"], kinds["margin 0.9"]) == (1, 2)
    assert (kinds["expired"], kinds["filled"]) == (1, 1)
    (expired,) = [json.loads(r) for r in records if '"expired"' in r]
    assert expired["engine_us"] == T0 + 20 * S  # its expiry, found by the watermark


def test_the_alerts_file_is_one_file_on_two_processes(
    scenario: Path, tmp_path: Path
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    layout = ["--processes", "2", "--alerts", str(alerts)]
    _run(["liquidations"], scenario, layout, tmp_path / "out.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.jsonl", "out.jsonl"]
    phases = collections.Counter(
        json.loads(line)["phase"] for line in alerts.read_text().splitlines()
    )
    assert phases == {"started": 3, "ended": 3}
