"""Dashboards and alert rules, proven on a real Prometheus scraping a running flow."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import bytewax.operators as op
import httpx
import pytest
import yaml
from bytewax.dataflow import Dataflow
from bytewax.testing import run_main

from bpx_flows.connectors import metrics
from bpx_flows.connectors.backpack import Credentials, parse_streams
from bpx_flows.connectors.backpack.wire import Side
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.sim import (
    Fault,
    FaultKind,
    ScheduledCascade,
    ServerConfig,
    SimConfig,
    SimServer,
    SimThread,
)
from bpx_flows.connectors.sources import BackpackSource, SourceConfig
from bpx_flows.flows.account import account_streams, track_account
from bpx_flows.flows.market import MarketConfig, market_outputs, market_streams
from bpx_flows.operators.account import AccountConfig
from bpx_flows.operators.bursts import BurstConfig
from bpx_flows.presentation import MetricsSink
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.e2e

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
SYMBOLS = ["SOL_USDC", "SOL_USDC_PERP", "BTC_USDC_PERP"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _installed(tool: str) -> str:
    """The path of a tool of Debian's prometheus package (``make test`` installs it)."""
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing: make test installs the prometheus package")
        pytest.skip(f"{tool} is not installed (apt-get install prometheus)")
    return found


def _start_prometheus(
    tmp_path: Path, rules: str, target_port: int, web_port: int
) -> subprocess.Popen[bytes]:
    """A real Prometheus scraping ``target_port`` every second with ``rules``."""
    (tmp_path / "alerts.yml").write_text(rules)
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": ["alerts.yml"],
                "scrape_configs": [
                    {
                        "job_name": "bpx-flows",
                        "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    }
                ],
            }
        )
    )
    return _prometheus(config, tmp_path, web_port)


def _prometheus(config: Path, tmp_path: Path, web_port: int) -> subprocess.Popen[bytes]:
    """Prometheus with ``config``, its data in ``tmp_path``, its API on ``web_port``."""
    return subprocess.Popen(
        [
            _installed("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def dashboard_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted((DASHBOARDS / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((f"{board['uid']}: {panel['title']}", target["expr"]))
    return found


def rule_quantities() -> list[tuple[str, str]]:
    """Each rule is "<quantity> <op> <threshold>"; healthy, the whole is empty."""
    rules = yaml.safe_load((DASHBOARDS / "alerts.yml").read_text())
    found = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            quantity = re.split(r"\s(?:==|!=|>=|<=|>|<)\s", rule["expr"])[0]
            found.append((rule["alert"], quantity))
    return found


def test_dashboard_json_is_generated_from_the_panel_list(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build", DASHBOARDS / "build_dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for uid in module.DASHBOARDS:
        committed = json.loads(
            (DASHBOARDS / "grafana" / "dashboards" / f"{uid}.json").read_text()
        )
        assert committed == json.loads(json.dumps(module.dashboard(uid)))
        exprs = [t["expr"] for p in committed["panels"] for t in p["targets"]]
        assert not any(re.search(r"\brate\([^)]*\[\d+[smh]\]", e) for e in exprs)
        if uid in module.SYMBOL_SOURCE:
            (variable,) = committed["templating"]["list"]
            assert variable["name"] == "symbol"
            # The list comes from a metric the dashboard's panels filter by symbol.
            metric = module.SYMBOL_SOURCE[uid]
            assert any(metric in e and "$symbol" in e for e in exprs), uid
    readme = (DASHBOARDS / "README.md").read_text()
    assert all(module.TITLES[uid].split(": ")[1] in readme for uid in module.DASHBOARDS)


def test_promtool_accepts_the_config_and_rules() -> None:
    promtool = _installed("promtool")
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "config", "prometheus-docker.yml"],
        ["check", "rules", "alerts.yml"],
    ):
        result = subprocess.run(
            [promtool, *args],
            cwd=DASHBOARDS,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_panel_and_rule_expression_returns_data(tmp_path: Path) -> None:
    _installed("prometheus")
    # A market flow on a fast simulator, with the faults the health panels chart.
    cascade = ScheduledCascade(30.0, "SOL_USDC_PERP", Side.ASK)
    creds = Credentials.from_secret(TEST_SECRET)
    server = SimServer(
        SimConfig(seed=5, cascades_at=(cascade,), account_every_s=0.2),
        ServerConfig(speed=5.0, account_key=creds.public_key),
    )
    faults = [
        Fault(FaultKind.SKIP_DEPTH, after=100, count=2),
        Fault(FaultKind.MALFORMED, after=150),
        # Trades lost in a stall are fetched back and correct their candles.
        Fault(FaultKind.STALL, after=250, seconds=2.0),
        Fault(FaultKind.DROP, after=400),
    ]
    config = MarketConfig(bursts=BurstConfig(min_notional=Decimal(500), min_count=5))
    with SimThread(server):
        for fault in faults:
            server.arm(fault)
        streams = market_streams(SYMBOLS) + account_streams(None)
        source = BackpackSource(
            parse_streams(streams),
            SourceConfig(
                connection=ConnectionConfig(
                    ws_url=server.ws_url, backoff_initial_s=0.05, backfill_trades=True
                ),
                rest_url=server.rest_url,
                run_for_s=45.0,
            ),
            creds,
        )
        collector = metrics.ConnectionCollector(source.connections)
        metrics.REGISTRY.register(collector)
        port = metrics.serve_metrics(0)
        web = free_port()
        runner = threading.Thread(target=run_main, args=(_flow(source, config),))
        runner.start()
        rules = (DASHBOARDS / "alerts.yml").read_text()
        prometheus = _start_prometheus(tmp_path, rules, port, web)
        api = f"http://127.0.0.1:{web}/api/v1"
        try:
            missing = _wait_for_all(
                api, dashboard_expressions() + rule_quantities(), timeout_s=90
            )
            rules = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"][0][
                "rules"
            ]
            assert {r["health"] for r in rules} == {"ok"}, rules
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=20)
            source.stop.set()
            runner.join(timeout=60)
            metrics.REGISTRY.unregister(collector)
    assert missing == [], f"expressions without data: {missing}"


def _flow(source: BackpackSource, config: MarketConfig) -> Dataflow:
    """The market flow and the account flow on one connector, into metrics."""
    flow = Dataflow("dashboards")
    records = op.input("feed", flow, source)
    outputs, alerts = market_outputs(records, config)
    levels = AccountConfig(margin_alert_levels=(Decimal("0.5"),))
    account = track_account("account", records, levels, config.book)  # mids: books
    everything = [*outputs, *alerts, account.views, account.alerts]
    op.output("metrics", op.merge("all", *everything), MetricsSink())
    return flow


def _wait_for_all(
    api: str, expressions: list[tuple[str, str]], timeout_s: float
) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    missing = list(expressions)
    while missing and time.monotonic() < deadline:
        time.sleep(2)
        still = []
        for name, expr in missing:
            # What Grafana substitutes: every symbol, a rate window of 4 scrapes.
            query = expr.replace("$symbol", ".*").replace("$__rate_interval", "5s")
            try:
                answer = httpx.get(
                    f"{api}/query", params={"query": query}, timeout=5
                ).json()
            except httpx.HTTPError:
                still.append((name, expr))
                continue
            assert answer["status"] == "success", (name, answer)
            if not answer["data"]["result"]:
                still.append((name, expr))
        missing = still
    return missing


def _time_scaled_rules(text: str) -> str:
    """The alert rules with every duration shortened 20x (``for: 1m`` -> 3 s, rate
    windows ``[1m]`` -> 3 s): the same expressions, minutes of waiting made seconds."""

    def seconds(match: re.Match[str]) -> str:
        value, unit = int(match.group(2)), match.group(3)
        scaled = max(3, value * {"s": 1, "m": 60, "h": 3600}[unit] // 20)
        return f"{match.group(1)}{scaled}s{match.group(4)}"

    text = re.sub(r"(for: )(\d+)([smh])()", seconds, text)
    return re.sub(r"(\[)(\d+)([smh])(\])", seconds, text)


def _rule_states(api: str) -> dict[str, str]:
    try:
        groups = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
    except (httpx.HTTPError, KeyError, ValueError):
        return {}
    return {r["name"]: r["state"] for g in groups for r in g["rules"]}


def _start_flow(port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPX_")}
    command = [sys.executable, "-m", "bpx_flows", "market", "SOL_USDC"]
    return subprocess.Popen(
        [*command, "--seconds", "90", "--metrics-port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def test_the_feed_alerts_fire_when_the_flow_dies_and_resolve_when_it_returns(
    tmp_path: Path,
) -> None:
    _installed("prometheus")
    port, web = free_port(), free_port()
    api = f"http://127.0.0.1:{web}/api/v1"
    watched = ("BpxFeedDown", "BpxTargetDown")
    seen: dict[str, set[str]] = {name: set() for name in watched}

    def wait_until(states: set[str], timeout_s: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        now: dict[str, str] = {}
        while time.monotonic() < deadline:
            now = _rule_states(api)
            for name in watched:
                if name in now:
                    seen[name].add(now[name])
            if all(now.get(name) in states for name in watched):
                return now
            time.sleep(0.5)
        return now

    flow = _start_flow(port)
    rules = _time_scaled_rules((DASHBOARDS / "alerts.yml").read_text())
    prometheus = _start_prometheus(tmp_path, rules, port, web)
    try:
        # Healthy: frames flow, the target answers, nothing fires.
        time.sleep(8)  # several scrapes of a running flow
        healthy = wait_until({"inactive"}, timeout_s=60)
        assert all(healthy.get(n) == "inactive" for n in watched), healthy
        # The flow dies: both alerts go pending, then fire.
        flow.terminate()
        flow.wait(timeout=30)
        dead = wait_until({"firing"}, timeout_s=60)
        assert all(dead.get(n) == "firing" for n in watched), dead
        assert all("pending" in seen[n] for n in watched), seen
        # It comes back: both resolve.
        flow = _start_flow(port)
        back = wait_until({"inactive"}, timeout_s=90)
        assert all(back.get(n) == "inactive" for n in watched), back
    finally:
        for process in (flow, prometheus):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_the_shipped_host_config_raises_no_alert_next_to_a_healthy_flow(
    tmp_path: Path,
) -> None:
    """The shipped prometheus.yml and alerts.yml, only the port changed, scraping a
    flow that runs: no alert may even be pending (a target that never answers, as
    host.docker.internal on a host, would make BpxTargetDown pending at once)."""
    _installed("prometheus")
    flow_port, web = free_port(), free_port()
    shipped = (DASHBOARDS / "prometheus.yml").read_text()
    assert "127.0.0.1:9464" in shipped
    config = yaml.safe_load(shipped.replace("127.0.0.1:9464", f"127.0.0.1:{flow_port}"))
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "alerts.yml").write_text((DASHBOARDS / "alerts.yml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPX_")}
    flow = subprocess.Popen(
        [
            *(sys.executable, "-m", "bpx_flows", "market", "SOL_USDC_PERP", "BTC_USDC"),
            *("--seconds", "60", "--metrics-port", str(flow_port), "--quiet"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    prometheus = _prometheus(tmp_path / "prometheus.yml", tmp_path, web)
    api = f"http://127.0.0.1:{web}/api/v1"
    try:
        deadline = time.monotonic() + 60
        up: list[Any] = []
        while time.monotonic() < deadline and not up:
            time.sleep(1)
            try:
                answer = httpx.get(f"{api}/query", params={"query": "up"}, timeout=5)
                up = [
                    r for r in answer.json()["data"]["result"] if r["value"][1] == "1"
                ]
            except httpx.HTTPError:
                continue
        assert up, "the flow was never scraped"
        time.sleep(12)  # several evaluations with every target scraped
        targets = httpx.get(f"{api}/targets", timeout=5).json()["data"]
        assert [t["health"] for t in targets["activeTargets"]] == ["up"]
        alerts = httpx.get(f"{api}/alerts", timeout=5).json()["data"]["alerts"]
        assert alerts == [], alerts
    finally:
        for process in (prometheus, flow):
            process.terminate()
            process.wait(timeout=30)
