"""The bpx-flows command line, run as a user would (subprocesses, loopback only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SHIPPED = (
    Path(__file__).resolve().parents[1] / "data" / "sessions" / "sim-session.jsonl.gz"
)


@pytest.fixture
def session() -> Path:
    """The shipped recording (a replay of every public stream of a few markets)."""
    return SHIPPED


CLI = [sys.executable, "-m", "bpx_flows"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("BPX_")}


def run_cli(
    *args: str, timeout: float = 60, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
        check=False,
    )


def test_sim_prints_its_urls_first_and_stops_on_sigterm() -> None:
    with subprocess.Popen(
        [*CLI, "sim", "--port", "0"], stdout=subprocess.PIPE, text=True, env=ENV
    ) as proc:
        try:
            assert proc.stdout is not None
            urls = json.loads(proc.stdout.readline())
            assert urls["ws"].startswith("ws://127.0.0.1:")
            assert urls["rest"].startswith("http://127.0.0.1:")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            proc.kill()


def test_sim_history_serves_klines_from_before_it_started() -> None:
    with subprocess.Popen(
        [*CLI, "sim", "--port", "0", "--history", "90"],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        try:
            assert proc.stdout is not None
            urls = json.loads(proc.stdout.readline())
            start_s = int(time.time()) - 120
            query = f"symbol=SOL_USDC&interval=1m&startTime={start_s}"
            with urllib.request.urlopen(
                f"{urls['rest']}/api/v1/klines?{query}", timeout=10
            ) as answer:
                rows = json.loads(answer.read())
            assert len(rows) >= 2  # the minute or two it simulated first, and now
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            proc.kill()
    refused = run_cli("sim", "--history", "99999")
    assert refused.returncode == 2
    assert "--history: history must be 0..21600 s" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["tail", "trade.NOPE_USDC"], "unknown market 'NOPE_USDC'", id="symbol"
        ),
        pytest.param(
            ["tail", "depth.100ms.SOL_USDC"], "unknown depth window", id="window"
        ),
        pytest.param(
            [
                "tail",
                "account.orderUpdate",
                "--ws",
                "ws://127.0.0.1:9",
                "--rest",
                "http://127.0.0.1:9",
            ],
            "BPX_API_SECRET",
            id="no-key",
        ),
        pytest.param(
            [
                "tail",
                "trade.SOL_USDC",
                "--ws",
                "ws://127.0.0.1:9",
                "--rest",
                "http://127.0.0.1:9",
            ],
            "cannot reach the REST API",
            id="unreachable",
        ),
        pytest.param(
            ["tail", "trade.SOL_USDC", "--ws", "ws://127.0.0.1:9"],
            "--ws needs --rest",
            id="no-rest",
        ),
        pytest.param(
            ["replay", "/nonexistent.jsonl"], "no such recording", id="no-file"
        ),
    ],
)
def test_bad_input_is_one_actionable_line(args: list[str], message: str) -> None:
    _one_line(args, message)


def _one_line(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_demo_runs_on_the_simulator_and_summarises() -> None:
    result = run_cli("demo", "--seconds", "4", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    # Notes for people on stderr; stdout carries records only (the alerts here).
    assert "summary:" in result.stderr
    assert "metrics: http://127.0.0.1:" in result.stderr
    assert "BookStats" in result.stderr and "Candle" in result.stderr
    assert "ALERT " in result.stdout and "BURST STARTED" in result.stdout
    assert "summary" not in result.stdout and "metrics:" not in result.stdout


def test_record_then_replay_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl.gz"
    recorded = run_cli(
        "record",
        "--out",
        str(out),
        "--seconds",
        "3",
        "trade.SOL_USDC",
        "depth.SOL_USDC",
    )
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    assert out.stat().st_size > 0
    replayed = run_cli("replay", str(out))
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    assert "snapshot" in replayed.stdout and "trade" in replayed.stdout


def test_ctrl_c_ends_a_tail_cleanly() -> None:
    with subprocess.Popen(
        [*CLI, "tail", "trade.SOL_USDC"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 30
            while "trade" not in proc.stdout.readline():  # the flow is running
                assert time.monotonic() < deadline
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err[-2000:]
            assert "Traceback" not in err
            assert "panicked" not in err
        finally:
            proc.kill()


def test_a_refused_key_is_one_line_and_exit_2(sim) -> None:
    from tests.conftest import OTHER_SECRET

    env = dict(ENV, BPX_API_SECRET=OTHER_SECRET)
    result = run_cli(
        "tail",
        "account.orderUpdate",
        "--ws",
        sim.ws_url,
        "--rest",
        sim.rest_url,
        "--seconds",
        "10",
        env=env,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: the exchange refused the private subscription: Unknown API key "
        "(code 4003); BPX_API_SECRET is not the secret of an API key of this "
        "account: set the secret of a key pair created for it"
    ]


def test_liquidations_on_a_simulated_cascade_writes_alerts(tmp_path: Path) -> None:
    # The built-in simulator's random cascades are too slow for a test; the flow is
    # covered end to end in tests/e2e/test_bursts_e2e.py. Here: the command runs, and
    # the alerts file exists even when nothing alerted.
    alerts = tmp_path / "alerts.jsonl"
    result = run_cli(
        "liquidations", "SOL_USDC_PERP", "--seconds", "2", "--alerts", str(alerts)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "summary:" in result.stderr


def test_derivatives_command_prints_joined_views() -> None:
    result = run_cli("derivatives", "SOL_USDC_PERP", "--seconds", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SOL_USDC_PERP" in result.stdout and "premium" in result.stdout


def test_metrics_are_served_while_a_flow_runs() -> None:
    import httpx

    with subprocess.Popen(
        [*CLI, "book", "SOL_USDC", "--seconds", "20", "--metrics-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        try:
            assert proc.stderr is not None
            url = None
            deadline = time.monotonic() + 30
            while url is None:
                assert time.monotonic() < deadline
                line = proc.stderr.readline()  # a note for people: stderr
                if line.startswith("metrics: "):
                    url = line.split()[1]
            text = ""
            depth = 'bpx_frames_total{stream="depth.SOL_USDC"}'
            while "bpx_book_best_bid" not in text or depth not in text:
                frames = [x for x in text.splitlines() if x.startswith("bpx_frames")]
                assert time.monotonic() < deadline, frames
                time.sleep(0.2)
                text = httpx.get(url, timeout=5).text
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
            assert proc.returncode == 0
        finally:
            proc.kill()


def test_version_and_help_show_every_default() -> None:
    import argparse

    from bpx_flows import __version__
    from bpx_flows.cli import _parser

    version = run_cli("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"bpx-flows {__version__}"
    parser = _parser()
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    seen = 0
    for name, command in subparsers.choices.items():
        for action in command._actions:
            if action.help == argparse.SUPPRESS or not action.option_strings:
                continue
            seen += 1
            assert action.help, f"{name} {action.option_strings} has no help"
        if name in ("run", "book", "candles"):
            text = command.format_help()
            assert "(default: 1000.0)" in text or name != "book"
            assert "(default: 1)" in text  # --workers
    assert seen > 200
    candles = run_cli("candles", "--help")
    assert "--intervals" in candles.stdout and "(1s,1m)" in candles.stdout


def test_replay_into_head_exits_quietly() -> None:
    session = Path(__file__).resolve().parents[1] / "data/sessions/sim-session.jsonl.gz"
    result = subprocess.run(
        [
            "bash",
            "-c",
            f"{' '.join(CLI)} replay {session} | head -3; "
            'echo "status ${PIPESTATUS[0]}"',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    assert lines[-1] == "status 0"
    assert "Traceback" not in result.stderr and "rror" not in result.stderr


def test_replay_shows_progress_on_long_files() -> None:
    session = Path(__file__).resolve().parents[1] / "data/sessions/sim-session.jsonl.gz"
    result = run_cli(
        "replay", str(session), "--batch", "20", "--progress-every", "0.001", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert "% read, ETA" in result.stderr
    assert f"replay {session.name}: done" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["sim", "--port", "70000"], "a port is 0-65535", id="port-big"),
        pytest.param(["sim", "--port", "-1"], "a port is 0-65535", id="port-negative"),
        pytest.param(["sim", "--speed", "nan"], "argument --speed", id="speed-nan"),
        pytest.param(["sim", "--speed", "0"], "needs --replay FILE", id="speed-zero"),
        pytest.param(["sim", "--rate-scale", "inf"], "--rate-scale", id="scale-inf"),
        pytest.param(["sim", "--ping-interval", "-5"], "--ping-interval", id="ping"),
        pytest.param(["sim", "--seed", "1.5"], "whole number", id="seed"),
        pytest.param(["sim", "--host", "10.99.99.99"], "cannot listen", id="host"),
        pytest.param(
            ["sim-session", "--out", "x.jsonl", "--seconds", "nan"],
            "--seconds",
            id="session-seconds",
        ),
        pytest.param(["demo", "--metrics-port", "99999"], "a port", id="demo-port"),
    ],
)
def test_simulator_and_tool_flags_are_checked_in_one_line(
    args: list[str], message: str
) -> None:
    _one_line(args, message)


def test_a_binary_secret_file_is_one_line(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(bytes(range(256)))
    result = subprocess.run(
        [*CLI, "tail", "account.orderUpdate", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, "BPX_API_SECRET_FILE": str(secret)},
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is not text" in lines[0], result.stderr


@pytest.mark.parametrize("sink", ["parquet", "jsonl"])
def test_a_sink_path_under_a_regular_file_is_refused_before_the_run(
    tmp_path: Path, session: Path, sink: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line(
        ["run", "candles", "--replay", str(session), "--sink", f"{sink}:{blocker}/x"],
        "is not a directory",
    )


def test_record_creates_the_directories_of_its_file(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir" / "rec.jsonl"
    result = run_cli("record", "--out", str(out), "--seconds", "2", "trade.SOL_USDC")
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.read_text().startswith('{"recorder":"bpx-flows"')


@pytest.mark.parametrize("flow", ["book", "market", "candles", "derivatives"])
def test_every_flow_command_replays_every_recorded_market_without_symbols(
    session: Path, flow: str
) -> None:
    result = run_cli(flow, "--replay", str(session), "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "summary:" in result.stderr


def test_stdout_json_carries_records_only(session: Path) -> None:
    """``--sink stdout:json --quiet`` pipes into jq: every stdout line is a record."""
    result = run_cli(
        "candles", "--replay", str(session), "--sink", "stdout:json", "--quiet"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) > 50
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert "summary:" in result.stderr


def test_the_simulator_line_goes_to_stderr() -> None:
    result = run_cli("book", "SOL_USDC", "--seconds", "2", "--sink", "stdout:json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "simulator: ws://127.0.0.1:" in result.stderr
    notes = ("simulator", "summary", "metrics", "  ")
    assert not [x for x in result.stdout.splitlines() if x.startswith(notes)]


def test_v_tells_our_story_and_vv_the_libraries_too() -> None:
    one = run_cli("-v", "book", "SOL_USDC", "--seconds", "2", "--quiet")
    assert one.returncode == 0, one.stderr[-2000:]
    assert "connected (1), 2 streams subscribed" in one.stderr
    assert "depth.SOL_USDC: depth snapshot fetched" in one.stderr
    ours = [x for x in one.stderr.splitlines() if " INFO " in x or " DEBUG " in x]
    assert all(" bpx_flows." in x for x in ours), ours
    two = run_cli("-vv", "book", "SOL_USDC", "--seconds", "2", "--quiet")
    assert two.returncode == 0, two.stderr[-2000:]
    assert " httpx: " in two.stderr or " websockets." in two.stderr


def test_markets_lists_the_simulators_markets() -> None:
    result = run_cli("markets")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SYMBOL", "TYPE", "TICK", "STEP", "STATE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["SOL_USDC"][1:] == ["SPOT", "0.01", "0.01", "Open"]
    assert rows["BTC_USDC_PERP"][1] == "PERP"
    as_json = run_cli("markets", "--json")
    symbols = {json.loads(line)["symbol"] for line in as_json.stdout.splitlines()}
    assert symbols == set(rows)


def test_markets_of_an_unreachable_endpoint_is_one_line() -> None:
    _one_line(["markets", "--rest", "http://127.0.0.1:9"], "/api/v1/markets")


def test_a_fresh_run_starts_its_alerts_file_empty_even_without_alerts(
    tmp_path: Path,
) -> None:
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text('{"from": "a previous run"}\n')
    result = run_cli(
        "liquidations", "SOL_USDC_PERP", "--seconds", "2", "--alerts", str(alerts)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "a previous run" not in alerts.read_text()
