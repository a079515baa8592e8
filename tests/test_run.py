"""``bpx-flows run`` as a user runs it: settings, clusters, kill -9 and resume."""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpx_flows.connectors.errors import ConfigError
from bpx_flows.connectors.sim import SimConfig
from bpx_flows.connectors.sim.session import write_session
from bpx_flows.flows.book import BookSettings
from bpx_flows.settings import Settings, load_settings, merge_overrides
from tests.cli import CLI, ENV, kill_once_written, outputs, run_cli

pytestmark = pytest.mark.e2e

SYMBOLS = ["SOL_USDC", "SOL_USDC_PERP", "BTC_USDC_PERP"]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 simulated seconds: books, trades, marks, OI and liquidation cascades."""
    path = tmp_path_factory.mktemp("run") / "session.jsonl.gz"
    config = SimConfig(
        seed=3,
        rate_scale=3.0,
        account_every_s=None,
        liquidation_every_s=0.5,
        cascade_every_s=15.0,
    )
    streams = [f"trade.{s}" for s in SYMBOLS] + [
        "liquidation",
        "markPrice.SOL_USDC_PERP",
        "openInterest.SOL_USDC_PERP",
        "depth.SOL_USDC_PERP",
        "bookTicker.SOL_USDC_PERP",
        "depth.SOL_USDC",
        "bookTicker.SOL_USDC",
    ]
    write_session(path, 90.0, config, streams)
    return path


def settings_file(tmp_path: Path, session: Path) -> Path:
    path = tmp_path / "market.toml"
    path.write_text(
        f"""
flow = "market"
symbols = {json.dumps(SYMBOLS)}

[source]
kind = "replay"
replay = ["{session}"]

[book]
checksum = true  # the final books compare by checksum

[bursts]
min_notional = 1000
min_count = 3
multiple = 2

[outputs]
quiet = true
""",
        encoding="utf-8",
    )
    return path


def kinds(records: collections.Counter[str]) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    for text, n in records.items():
        record = json.loads(text)
        kind = (
            "candle"
            if "interval" in record and "open" in record
            else "burst"
            if "phase" in record
            else "book"
            if "checksum" in record
            else "other"
        )
        found[kind] += n
    return found


def test_one_worker_two_workers_and_two_processes_agree(
    tmp_path: Path, session: Path
) -> None:
    config = settings_file(tmp_path, session)
    results = {}
    for name, flags in {
        "1 worker": ["--workers", "1"],
        "2 workers": ["--workers", "2"],
        "2 processes": ["--processes", "2"],
    }.items():
        out = tmp_path / f"{name.replace(' ', '-')}.jsonl"
        result = run_cli("run", "--config", str(config), *flags, "--out", str(out))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        results[name] = outputs(out)
    one = results["1 worker"]
    found = kinds(one)
    assert found["candle"] > 100
    assert found["burst"] >= 1
    assert found["book"] > 50
    assert results["2 workers"] == one
    assert results["2 processes"] == one


def test_killed_run_resumes_from_the_recovery_dir_without_loss_or_duplicates(
    tmp_path: Path, session: Path
) -> None:
    config = settings_file(tmp_path, session)
    whole = tmp_path / "whole.jsonl"
    result = run_cli("run", "--config", str(config), "--out", str(whole))
    assert result.returncode == 0, result.stderr[-3000:]

    out = tmp_path / "resumed.jsonl"
    state = tmp_path / "state"
    recovery = ["--recovery-dir", str(state), "--snapshot-every", "0.3"]
    paced = ["run", "--config", str(config), "--out", str(out), *recovery]
    # Killed once part of the output is written: mid-way through the session.
    assert kill_once_written([*paced, "--speed", "30"], out) == -signal.SIGKILL
    partial = sum(outputs(out).values())
    result = run_cli("run", "--config", str(config), "--out", str(out), *recovery)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = outputs(whole)
    assert 0 < partial < sum(expected.values())
    assert outputs(out) == expected


@pytest.mark.parametrize("recovering", [False, True])
def test_state_is_snapshotted_only_when_a_recovery_dir_keeps_it(
    tmp_path: Path, session: Path, monkeypatch: pytest.MonkeyPatch, recovering: bool
) -> None:
    """Bytewax asks every key for a snapshot at each epoch's end, recovery or not:
    the runner's flows pickle their state only when a recovery directory keeps it."""
    from bpx_flows import runner
    from bpx_flows.flows import batching

    snapshots: list[bytes | None] = []
    take = batching._Steps.snapshot

    def counted(self: batching._Steps) -> bytes | None:
        snapshot = take(self)
        snapshots.append(snapshot)
        return snapshot

    monkeypatch.setattr(batching._Steps, "snapshot", counted)
    overrides: dict[str, object] = {
        "flow": "book",
        "symbols": ["SOL_USDC"],
        "source.kind": "replay",
        "source.replay": [str(session)],
        "source.speed": 30.0,  # 3 s: epochs of 0.2 s end on the way
        "run.snapshot_every_s": 0.2,
        "outputs.quiet": True,
    }
    if recovering:
        overrides["run.recovery_dir"] = str(tmp_path / "state")
    outcome = runner.run(merge_overrides(Settings(), overrides))
    assert outcome.code == 0
    assert len(snapshots) > 5  # asked either way
    if recovering:
        assert all(isinstance(s, bytes) for s in snapshots)
    else:
        assert snapshots == [None] * len(snapshots)


def test_a_recovery_dir_of_another_format_or_flow_is_refused_in_one_line(
    tmp_path: Path, session: Path
) -> None:
    """Resuming loads pickled state: a directory another version or another flow
    wrote is refused before anything runs (exit code 2), not half-loaded."""
    from bytewax.recovery import init_db_dir

    from bpx_flows.flows.batching import STATE_FORMAT
    from bpx_flows.resources import STATE_MARK, init_recovery, recovery_lock

    def settings(flow: str, state: Path) -> Settings:
        return merge_overrides(
            Settings(),
            {
                "flow": flow,
                "symbols": ["SOL_USDC"],
                "source.kind": "replay",
                "source.replay": [str(session)],
                "run.recovery_dir": str(state),
            },
        )

    fresh = tmp_path / "fresh"
    init_recovery(settings("book", fresh), 1)  # as a first run creates it
    with recovery_lock(settings("book", fresh)):
        pass  # the same flow in the same format: resumable
    mark = json.loads((fresh / STATE_MARK).read_text())
    assert mark == {"state_format": STATE_FORMAT, "flow": "book", "partitions": 1}
    with (
        pytest.raises(
            ConfigError, match="holds the state of the book flow, not candles"
        ),
        recovery_lock(settings("candles", fresh)),
    ):
        pass

    older = tmp_path / "older"
    older.mkdir()
    init_db_dir(older, 1)  # partitions, no mark: a version before the mark
    with (
        pytest.raises(ConfigError, match="state of an older bpx-flows"),
        recovery_lock(settings("book", older)),
    ):
        pass
    (older / STATE_MARK).write_text(
        json.dumps({"state_format": 1, "flow": "book", "partitions": 1})
    )
    with (
        pytest.raises(
            ConfigError, match=f"format 1, this bpx-flows reads format {STATE_FORMAT}"
        ),
        recovery_lock(settings("book", older)),
    ):
        pass
    result = run_cli(
        "book", "SOL_USDC", "--replay", str(session), "--recovery-dir", str(older)
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "format 1" in result.stderr


def test_bytewax_run_runs_a_settings_file(tmp_path: Path, session: Path) -> None:
    config = settings_file(tmp_path, session)
    config.write_text(config.read_text().replace("quiet = true", "quiet = false"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bytewax.run",
            f"bpx_flows.entry:dataflow('{config}')",
            "-w",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count(" candle ") > 100


@pytest.mark.parametrize(
    ("toml", "flags", "message"),
    [
        pytest.param(
            "[run]\nwokers = 2\n",
            [],
            "run.wokers: unknown key; did you mean 'workers'?",
            id="misspelt-key",
        ),
        pytest.param(
            '[run]\nworkers = "two"\n', [], "run.workers: expected int", id="type"
        ),
        pytest.param(
            '[candles]\nintervals = ["7m"]\n',
            [],
            "candles.intervals: '7m' is not an interval",
            id="interval",
        ),
        pytest.param("[run\n", [], "not valid TOML", id="toml"),
        pytest.param(
            "", ["--workers", "0"], "run.workers: expected int >= 1, got 0", id="flag"
        ),
        pytest.param(
            "", ["--batch", "0"], "source.batch: expected int >= 1", id="replay-batch"
        ),
        pytest.param(
            "",
            ["--replay", "/nonexistent.jsonl.gz"],
            "no such recording: /nonexistent.jsonl.gz",
            id="recording",
        ),
        pytest.param(
            "",
            ["--process-id", "1"],
            "addresses need|a process id needs the cluster's addresses",
            id="cluster",
        ),
        pytest.param(
            "", ["--rest", "http://127.0.0.1:1"], "--rest goes with --ws", id="rest"
        ),
    ],
)
def test_bad_settings_and_flags_fail_fast_in_one_line(
    tmp_path: Path, toml: str, flags: list[str], message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")
    started = time.monotonic()
    result = run_cli("run", "market", "SOL_USDC", "--config", str(config), *flags)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert any(part in lines[0] for part in message.split("|")), lines[0]
    assert time.monotonic() - started < 30


def test_config_check(tmp_path: Path, session: Path) -> None:
    good = run_cli("config", "check", str(settings_file(tmp_path, session)))
    assert good.returncode == 0, good.stderr
    assert "ok: flow market, 3 symbol(s)" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('flow = "market"\nsymbols = ["NOPE_USDC"]\n', encoding="utf-8")
    result = run_cli("config", "check", str(bad))
    assert result.returncode == 2
    assert "unknown market 'NOPE_USDC'" in result.stderr
    # The documented example lists every key: it must stay valid as keys are added.
    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "market.toml"
    shipped = run_cli("config", "check", str(example))
    assert shipped.returncode == 0, shipped.stderr


def test_flags_override_the_file_and_sources_switch_cleanly(
    tmp_path: Path, session: Path
) -> None:
    settings = load_settings(settings_file(tmp_path, session))
    live = merge_overrides(
        settings,
        {"source.kind": "live", "source.replay": ..., "run.workers": 3},
    )
    assert (live.source.kind, live.source.replay, live.run.workers) == ("live", [], 3)
    assert live.section(BookSettings).checksum  # untouched keys keep the file's value
    with pytest.raises(ConfigError, match=r"source.ws: an endpoint source needs"):
        merge_overrides(Settings(), {"source.kind": "endpoint"})


def test_bytewax_run_runs_the_market_flow_module_on_the_simulator(sim) -> None:
    env = dict(
        ENV,
        BPX_WS_URL=sim.ws_url,
        BPX_REST_URL=sim.rest_url,
        BPX_SECONDS="4",
        BPX_SYMBOLS="SOL_USDC_PERP",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "bpx_flows.entry:market", "-w", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert " book " in result.stdout
    assert " candle " in result.stdout


def test_the_bytewax_entry_refuses_an_unreachable_endpoint_in_one_line() -> None:
    """``python -m bytewax.run bpx_flows.entry:NAME`` checks as ``run`` does."""
    env = dict(
        ENV,
        BPX_WS_URL="ws://127.0.0.1:9",
        BPX_REST_URL="http://127.0.0.1:9",
        BPX_SYMBOLS="SOL_USDC_PERP",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "bpx_flows.entry:market"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "127.0.0.1:9" in lines[0]


def test_each_process_of_a_cluster_serves_metrics_on_base_port_plus_its_id(
    tmp_path: Path, session: Path
) -> None:
    import socket
    import urllib.request

    config = settings_file(tmp_path, session)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = min(probe.getsockname()[1], 65_000)  # base + 1 must be a port too
    with subprocess.Popen(
        [
            *CLI,
            "run",
            "--config",
            str(config),
            "--processes",
            "2",
            "--speed",
            "3",
            "--metrics-port",
            str(base),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        try:
            scraped = {}
            deadline = time.monotonic() + 60
            while len(scraped) < 2 and time.monotonic() < deadline:
                for port in (base, base + 1):
                    if port in scraped:
                        continue
                    url = f"http://127.0.0.1:{port}/metrics"
                    try:
                        with urllib.request.urlopen(url, timeout=2) as response:
                            text = response.read().decode()
                    except OSError:
                        continue
                    if "bpx_" in text:
                        scraped[port] = text
                time.sleep(0.2)
            assert set(scraped) == {base, base + 1}
            assert all("bpx_processing_lag_seconds" in t for t in scraped.values())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)


def test_run_account_on_the_simulator_makes_up_a_key_for_every_process() -> None:
    result = run_cli(
        "run", "account", "--processes", "2", "--seconds", "4", "--log-level", "warning"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BPX_API_SECRET" not in result.stderr
    assert "OrderState" in result.stderr or "order " in result.stdout


def test_symbols_may_follow_the_options(session: Path) -> None:
    result = run_cli("run", "candles", "--replay", str(session), "SOL_USDC", "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Candle" in result.stderr  # the summary
    bad = run_cli("run", "candles", "--replay", str(session), "--bogus")
    assert bad.returncode == 2
    assert "unrecognized arguments: --bogus" in bad.stderr


@pytest.mark.parametrize(
    ("flow", "symbol"),
    [("book", "SOL_USDC"), ("derivatives", "SOL_USDC_PERP"), ("candles", "SOL_USDC")],
)
def test_symbols_select_in_a_replay(flow: str, symbol: str, tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[1] / "data/sessions/sim-session.jsonl.gz"
    out = tmp_path / "out.jsonl"
    result = run_cli(flow, symbol, "--replay", str(shipped), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line[:1].isalpha()]
    records = [line for line in lines if not line.startswith(("summary", "  "))]
    assert records
    assert all(line.split()[0].endswith(symbol) for line in records), records[:5]
    assert "unknown_symbol" not in result.stdout


def test_the_docs_name_every_flow_of_the_registry() -> None:
    from bpx_flows.registry import FLOWS

    docs = (Path(__file__).resolve().parents[1] / "docs" / "run.md").read_text()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in FLOWS:
        assert f"`{name}`" in docs, name
        assert name in readme, name


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_bytewax_entry_stops_cleanly_on_ctrl_c_and_sigterm(
    tmp_path: Path, signum: int
) -> None:
    """``python -m bytewax.run "bpx_flows.entry:dataflow(...)"``: a signal ends the
    flow as it ends ``bpx-flows run`` (exit 0, no panic, no traceback)."""
    config = tmp_path / "book.toml"
    config.write_text('flow = "book"\nsymbols = ["SOL_USDC"]\n[source]\nseconds = 60\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "bytewax.run", f"bpx_flows.entry:dataflow('{config}')"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        time.sleep(6)  # the simulator started, books flowing
        proc.send_signal(signum)
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert time.monotonic() - started < 15
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "panic" not in err.lower(), err[-3000:]
    assert " book " in out
