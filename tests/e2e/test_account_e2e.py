"""The account flow end to end over a real socket: its state equals the simulator's."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bytewax.testing import run_main

from bpx_flows.connectors.backpack import Credentials, parse_streams
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.sim import ServerConfig, SimConfig, SimServer, SimThread
from bpx_flows.connectors.sources import BackpackSource, SourceConfig
from bpx_flows.flows.account import AccountSettings, account_streams
from bpx_flows.operators.account import AutoCloseAlert
from bpx_flows.operators.orders import OrderFill, OrderState
from bpx_flows.operators.positions import PositionView
from bpx_flows.operators.rfqs import RfqOutcome
from tests.conftest import TEST_SECRET
from tests.wired import book_settings, wired

pytestmark = pytest.mark.e2e

_ENTRY = Decimal("0.0001")


def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def busy_account_sim(credentials: Credentials) -> SimThread:
    exchange = SimConfig(seed=11, account_every_s=0.03, liquidation_every_s=None)
    server = ServerConfig(account_key=credentials.public_key, ping_interval_s=1.0)
    return SimThread(SimServer(exchange, server))


def sim_truth(
    server: SimServer, before: set[str]
) -> tuple[dict[str, Decimal], dict[str, tuple]]:
    """Open orders (id -> executed) and positions (symbol -> (qty, entry)).

    Orders placed ``before`` the flow subscribed are left out: the order stream has no
    snapshot, so nobody can know them until their next event.
    """
    assert server.exchange is not None
    account = server.exchange.account
    engines = server.exchange.engines
    orders = {
        order_id: engines[o.symbol].lots.to_decimal(o.filled)
        for order_id, o in account.orders.items()
        if order_id not in before
    }
    positions = {
        symbol: (
            engines[symbol].lots.to_decimal(p.lots),
            p.entry.quantize(_ENTRY),
        )
        for symbol, p in account.positions.items()
        if p.lots
    }
    return orders, positions


def flow_truth(
    outputs: list[Any], before: set[str]
) -> tuple[dict[str, Decimal], dict[str, tuple]]:
    orders: dict[str, OrderState] = {}
    positions: dict[str, PositionView] = {}
    for record in list(outputs):
        if isinstance(record, OrderState):
            orders[record.order_id] = record
        elif isinstance(record, PositionView) and record.source != "mark":
            positions[record.symbol] = record
    open_orders = {
        i: o.executed
        for i, o in orders.items()
        if not o.status.is_final and i not in before
    }
    open_positions = {
        s: (v.quantity, v.entry_price) for s, v in positions.items() if v.quantity
    }
    return open_orders, open_positions


def test_order_and_position_state_equal_the_simulated_account(
    credentials: Credentials,
) -> None:
    thread = busy_account_sim(credentials)
    with thread:
        server = thread.server
        assert server.exchange is not None
        account = server.exchange.account
        # Let positions open first, so the subscribe snapshot has rows to carry.
        wait_for(lambda: len(account.positions) >= 2, 20, "positions before subscribe")
        outputs: list[Any] = []
        alerts: list[Any] = []
        source = BackpackSource(
            parse_streams(account_streams(None)),
            SourceConfig(
                connection=ConnectionConfig(ws_url=server.ws_url),
                rest_url=server.rest_url,
                run_for_s=60.0,
            ),
            credentials,
        )
        runner = threading.Thread(
            target=run_main,
            args=(wired("account", source, outputs, alerts, replay=False),),
            daemon=True,
        )
        thread.call(server.pause)
        before = set(account.orders)
        runner.start()
        try:
            wait_for(
                lambda: any(isinstance(r, PositionView) for r in outputs),
                15,
                "the position snapshot",
            )
            thread.call(server.resume)
            for _ in range(3):
                time.sleep(1.0)
                thread.call(server.pause)
                try:
                    truth = thread.call(lambda: sim_truth(server, before))
                    wait_for(
                        lambda truth=truth: flow_truth(outputs, before) == truth,
                        15,
                        f"the flow to match the account {truth}",
                    )
                finally:
                    thread.call(server.resume)
        finally:
            source.stop.set()
            runner.join(timeout=30)
        assert not runner.is_alive()
    views = [r for r in outputs if isinstance(r, PositionView)]
    assert any(v.source == "snapshot" for v in views)
    assert any(v.source == "positionClosed" for v in views)
    fills = [r for r in outputs if isinstance(r, OrderFill)]
    assert fills
    assert all(f.fee >= 0 and f.quantity > 0 for f in fills)
    assert {f.maker for f in fills} == {True, False}
    # Fills count once per trade id, as the simulator reused public trade ids.
    assert len({(f.order_id, f.trade_id) for f in fills}) == len(fills)
    statuses = {r.status.value for r in outputs if isinstance(r, OrderState)}
    assert {"accepted", "filled", "cancelled", "trigger_placed"} <= statuses
    assert any(isinstance(r, RfqOutcome) for r in outputs)
    assert all(isinstance(a, AutoCloseAlert) or a.level for a in alerts)


ENV_KEYS = ("PATH", "HOME", "LANG", "PYTHONPATH", "SYSTEMROOT")


def test_no_output_of_a_run_contains_the_secret(tmp_path: Path) -> None:
    """Records, alerts, metrics, debug logs and a recording: no secret, in any form."""
    import os

    creds = Credentials.from_secret(TEST_SECRET)
    raw = base64.b64decode(TEST_SECRET)
    forbidden = {
        "base64": TEST_SECRET.encode(),
        "base64 without padding": TEST_SECRET.rstrip("=").encode(),
        "hex": raw.hex().encode(),
        "raw": raw,
    }
    env = {k: v for k, v in os.environ.items() if k in ENV_KEYS}
    env["BPX_API_SECRET"] = TEST_SECRET
    thread = busy_account_sim(creds)
    with thread:
        server = thread.server
        jsonl = tmp_path / "account.jsonl"
        alerts = tmp_path / "alerts.jsonl"
        recording = tmp_path / "account.jsonl.gz"
        common = ["--ws", server.ws_url, "--rest", server.rest_url, "--seconds", "4"]
        with subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bpx_flows",
                "-vv",  # debug logs, the libraries' too
                "account",
                *common,
                "--sink",
                f"jsonl:{jsonl}",
                "--alerts",
                str(alerts),
                "--metrics-port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        ) as proc:
            assert proc.stderr is not None
            # The metrics note is on stderr (stdout carries records only).
            seen: list[bytes] = []
            while not (seen and seen[-1].startswith(b"metrics: http://127.0.0.1:")):
                line = proc.stderr.readline()
                assert line, b"".join(seen)[-2000:]
                seen.append(line)
            url = seen[-1].decode().split(": ", 1)[1].strip()
            time.sleep(2.0)
            with urllib.request.urlopen(url, timeout=10) as response:
                metrics = response.read()
            rest_out, err = proc.communicate(timeout=60)
            err = b"".join(seen) + err
            first = ""
        assert proc.returncode == 0, err.decode()[-2000:]
        record = subprocess.run(
            [
                sys.executable,
                "-m",
                "bpx_flows",
                "-vv",
                "record",
                "account.orderUpdate",
                "account.positionUpdate",
                "account.rfqUpdate",
                *common,
                "--out",
                str(recording),
            ],
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert record.returncode == 0, record.stderr.decode()[-2000:]
    import gzip

    outputs = {
        "stdout": first.encode() + rest_out,
        "stderr (debug logs)": err,
        "jsonl sink": jsonl.read_bytes(),
        "alerts file": alerts.read_bytes() if alerts.exists() else b"",
        "metrics": metrics,
        "recording": gzip.decompress(recording.read_bytes()),
        "record logs": record.stdout + record.stderr,
    }
    assert b"OrderState" in outputs["stdout"] or b"order " in outputs["stdout"]
    assert json.loads(outputs["jsonl sink"].splitlines()[0])
    assert b"account.orderUpdate" in outputs["recording"]
    assert b"bpx_account_order_events_total{" in metrics
    for where, text in outputs.items():
        for form, secret in forbidden.items():
            assert secret not in text, f"the secret ({form}) is in the {where}"


def test_fills_are_priced_against_the_book_flows_mid(credentials: Credentials) -> None:
    from bpx_flows.operators.book_state import BookConfig

    symbols = ["SOL_USDC", "SOL_USDC_PERP", "BTC_USDC_PERP"]
    thread = busy_account_sim(credentials)
    with thread:
        server = thread.server
        outputs: list[Any] = []
        source = BackpackSource(
            parse_streams(account_streams(symbols, with_book=True)),
            SourceConfig(
                connection=ConnectionConfig(ws_url=server.ws_url),
                rest_url=server.rest_url,
                run_for_s=60.0,
            ),
            credentials,
        )
        book = book_settings(BookConfig(symbols=frozenset(symbols)))
        flow = wired(
            "account",
            source,
            outputs,
            [],
            sections=[AccountSettings(with_book=True), book],
            symbols=symbols,
            replay=False,
        )
        runner = threading.Thread(target=run_main, args=(flow,), daemon=True)
        runner.start()
        try:
            wait_for(
                lambda: (
                    sum(
                        isinstance(r, OrderFill) and r.slippage_bps is not None
                        for r in list(outputs)
                    )
                    >= 5
                ),
                30,
                "fills priced against a mid",
            )
        finally:
            source.stop.set()
            runner.join(timeout=30)
    priced = [r for r in outputs if isinstance(r, OrderFill) and r.mid is not None]
    assert {r.symbol for r in outputs if isinstance(r, OrderFill)} <= set(symbols)
    for fill in priced:
        assert fill.slippage_bps is not None
        assert abs(fill.slippage_bps) < 200  # fills print near the touch
        expected = (
            (fill.price - fill.mid if fill.side == "bid" else fill.mid - fill.price)
            / fill.mid
            * 10_000
        )
        assert fill.slippage_bps == expected.quantize(Decimal("0.01"))  # 2 places
