"""``bpx-flows top``: the state and the panels as pure code, the screen headless
(Textual's pilot) over the market flow, and the command in a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from decimal import Decimal
from pathlib import Path

import pytest

from bpx_flows.operators.book_state import BookLadder, BookLevel
from bpx_flows.operators.bursts import BurstAlert, BurstPhase, Severity
from bpx_flows.operators.candles import Candle
from bpx_flows.operators.sides import BookSide
from bpx_flows.top.app import TopApp, fit
from bpx_flows.top.health import Health
from bpx_flows.top.render import (
    book_panel,
    candle_panel,
    derivatives_panel,
    health_panel,
    liquidations_panel,
)
from bpx_flows.top.state import CANDLES_KEPT, TopState
from tests.cli import CLI, ENV, run_cli

ROOT = Path(__file__).resolve().parents[1]
SESSION = ROOT / "data" / "sessions" / "sim-session.jsonl.gz"


def candle(start_s: int, close: str, revision: int = 0) -> Candle:
    price = Decimal(close)
    return Candle(
        symbol="SOL_USDC", interval="1s", start_us=start_s * 10**6,
        end_us=(start_s + 1) * 10**6, open=price - 1, high=price + 1, low=price - 2,
        close=price, volume=Decimal(3), quote_volume=Decimal(300), vwap=price,
        trades=2, buy_volume=Decimal(2), buy_trades=1, sell_volume=Decimal(1),
        sell_trades=1, first_trade_id=1, last_trade_id=2, revision=revision,
    )  # fmt: skip


def test_a_revision_replaces_its_window_and_windows_are_bounded() -> None:
    state = TopState()
    state.apply([candle(1, "100"), candle(1, "101", revision=1)])
    assert [c.close for c in state.snapshot("SOL_USDC").candles["1s"]] == [101]
    state.apply([candle(s, "100") for s in range(2, CANDLES_KEPT + 10)])
    kept = state.snapshot("SOL_USDC").candles["1s"]
    assert len(kept) == CANDLES_KEPT and kept[-1].start_us > kept[0].start_us


def test_a_burst_is_active_from_its_start_to_its_end() -> None:
    def alert(phase: BurstPhase) -> BurstAlert:
        return BurstAlert(
            burst_id="x", phase=phase, symbol="P", side=BookSide.ASK, start_us=1,
            detected_us=2, end_us=None, peak_window_notional=Decimal(9),
            total_notional=Decimal(12_345), count=7, threshold=Decimal(5),
            baseline=None, severity=Severity.HIGH,
        )  # fmt: skip

    state = TopState()
    state.apply([alert(BurstPhase.STARTED)])
    shown = liquidations_panel(state.snapshot("P"), 40, 5).plain
    assert "BURST ask high: 7 liq., 12,345 notional" in shown
    state.apply([alert(BurstPhase.ENDED)])
    assert "BURST" not in liquidations_panel(state.snapshot("P"), 40, 5).plain


def test_the_ladder_puts_asks_above_bids_with_bars_sized_by_quantity() -> None:
    state = TopState()
    ladder = BookLadder(
        stream="depth.X", symbol="X", update_id=9, recv_us=1,
        bids=(BookLevel(Decimal("99"), Decimal("4")), BookLevel(Decimal("98"), Decimal("1"))),  # noqa: E501
        asks=(BookLevel(Decimal("101"), Decimal("2")),),
    )  # fmt: skip
    state.apply([ladder])
    from bpx_flows.top.render import _ladder

    lines = _ladder(ladder, 31, 10).plain.splitlines()  # bars of 24 columns at most
    assert lines[0].startswith("101") and lines[2].startswith(" 99")
    assert lines[2].count("█") == 4 * lines[3].count("█") > 0


@pytest.mark.parametrize(("width", "height"), [(1, 1), (8, 2), (20, 3), (200, 60)])
def test_no_panel_breaks_at_any_size(width: int, height: int) -> None:
    state = TopState()
    state.apply([candle(s, str(100 + s % 5)) for s in range(1, 50)])
    snap = state.snapshot("SOL_USDC")
    for text in (
        book_panel(snap, width, height),
        candle_panel(snap, "1s", width, height),
        derivatives_panel(snap, width, height),
        liquidations_panel(snap, width, height),
        health_panel({"connections": 2, "connections_up": 1}, width, height),
    ):
        fitted = fit(text, width, height)
        assert len(fitted.plain.splitlines()) <= max(height, 1)
        assert all(len(line) <= max(width, 1) for line in fitted.plain.splitlines())


def _last_outputs(tmp_path: Path) -> dict[str, dict[str, object]]:
    """The market flow over the shipped session, from the CLI: the last book stats
    and 1 s candle of SOL_USDC (what the screen must show at the end)."""
    out = tmp_path / "market.jsonl"
    result = run_cli(
        "market", "--replay", str(SESSION), "--out", str(out), "--quiet",
        "--every-ms", "250",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    last: dict[str, dict[str, object]] = {}
    for record in map(json.loads, out.read_text().splitlines()):
        if record.get("symbol") == "SOL_USDC":
            if record["type"] == "book_stats":
                last["book"] = record
            elif record["type"] == "candle" and record["interval"] == "1s":
                last["candle"] = record
    return last


def test_the_screen_shows_the_flows_values_switches_market_and_quits(
    tmp_path: Path,
) -> None:
    """Headless (Textual's pilot), the market flow replayed to its end first."""
    from bpx_flows.cli import _parser, top_settings
    from bpx_flows.top import FlowThread

    expected = _last_outputs(tmp_path)
    args = _parser().parse_args(["top", "--replay", str(SESSION), "--speed", "0"])
    state = TopState()
    health = Health(state, "replay")
    flow = FlowThread(top_settings(args), state, health)
    flow.start()
    flow.join(60)
    assert flow.error is None and not flow.is_alive()
    app = TopApp(
        state, health, ["1s", "1m"], "replay", finished=flow.finished, account=True
    )

    async def drive() -> list[str]:
        seen = []
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.5)
            while not app.sub_title.startswith("SOL_USDC "):
                await pilot.press("n")
            seen.append(app.sub_title)
            book, candles = app.shown["book"], app.shown["candles"]
            assert "valid" in book
            assert str(expected["book"]["best_bid"]) in book
            assert str(expected["book"]["best_ask"]) in book
            assert f"c {expected['candle']['close']}" in candles
            assert "open orders" in app.shown["account"]
            await pilot.press("n")
            seen.append(app.sub_title)
            await pilot.press("2")  # the candles alone
            assert not app.query_one("#book").display
            await pilot.press("escape")
            assert app.query_one("#book").display
            await pilot.press("q")
        return seen

    seen = asyncio.run(drive())
    assert seen[0] != seen[1]  # another market
    assert app.return_code in (0, None)


def _pty_run(
    argv: list[str],
    keys: list[tuple[float, bytes]],
    size: tuple[int, int],
    resize: tuple[int, int] | None = None,
) -> tuple[int, str]:
    """``argv`` in a pseudo-terminal of ``size`` (columns, rows): keys sent at their
    times, an optional resize half-way; the exit code and everything it wrote."""
    leader, follower = pty.openpty()
    _set_size(follower, *size)
    process = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env={**ENV, "TERM": "xterm-256color"},  # noqa: E501
        start_new_session=True,
    )  # fmt: skip
    os.close(follower)
    output = bytearray()
    started = time.monotonic()
    pending = sorted(keys)
    resized = resize is None
    try:
        while process.poll() is None and time.monotonic() - started < 60:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    output += os.read(leader, 65536)
                except OSError:
                    break
            elapsed = time.monotonic() - started
            while pending and pending[0][0] <= elapsed:
                os.write(leader, pending.pop(0)[1])
            if not resized and elapsed > 4:
                assert resize is not None
                _set_size(leader, *resize)
                os.killpg(process.pid, signal.SIGWINCH)
                resized = True
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        os.close(leader)
    return process.returncode, output.decode("utf-8", "replace")


def _set_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def test_top_in_a_real_terminal_at_80x24_then_tiny_quits_on_q() -> None:
    code, output = _pty_run(
        [*CLI, "top", "--replay", str(SESSION)],
        keys=[(3.0, b"n"), (8.0, b"q")],
        size=(80, 24),
        resize=(24, 6),
    )
    assert code == 0, output[-3000:]
    assert "Traceback" not in output
    assert "book" in output and "candles" in output
    assert "top: " in output and " records in " in output


def test_the_market_flow_tracks_the_account_as_the_account_flow_does(
    tmp_path: Path,
) -> None:
    """``account.in_market`` (what top sets): the account flow's very records."""
    kinds = {"order_state", "order_fill", "position_view", "rfq_outcome"}
    found = {}
    for name, argv in (
        ("market", ["market", "--in-market"]),
        ("account", ["account"]),
    ):
        out = tmp_path / f"{name}.jsonl"
        result = run_cli(*argv, "--replay", str(SESSION), "--out", str(out), "--quiet")
        assert result.returncode == 0, result.stderr[-2000:]
        found[name] = sorted(
            line
            for line in out.read_text().splitlines()
            if json.loads(line)["type"] in kinds
        )
    assert len(found["account"]) > 10
    assert found["market"] == found["account"]


def test_top_refuses_a_cluster_in_one_line() -> None:
    result = run_cli("top", "--processes", "2", "--seconds", "1")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "top draws the flow of its own process" in lines[0]


def test_the_feed_panel_says_what_waits_and_what_is_missing() -> None:
    health = {
        "connections": 2, "connections_up": 1, "frames_per_s": 1234.0,
        "resyncs": 2, "reconnects": 1, "backlog": 3, "queued": 5, "trade_gaps": 1,
        "records_per_s": 99.0, "integrity": 4, "latency_ms": (1.5, 9.25),
        "warnings": ["kafka: broker down"],
    }  # fmt: skip
    text = health_panel(health, 60, 12).plain
    for shown in (
        "connections 1/2 up", "frames/s 1,234", "resyncs 2  reconnects 1",
        "REST backlog 3  queued 5", "trade gaps open 1", "gaps/integrity 4",
        "receive latency p50 1.5 p99 9.2 ms", "kafka: broker down",
    ):  # fmt: skip
        assert shown in text, (shown, text)
