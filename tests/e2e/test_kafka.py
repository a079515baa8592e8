"""The Kafka sink against a real Kafka-protocol broker, started here on 127.0.0.1
(``tests/e2e/kafka_broker.py``)."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.cli import run_cli
from tests.e2e.kafka_broker import Broker, broker, consume, free_port, killed_mid_run

__all__ = ["broker"]  # the fixture, imported for the tests here

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SESSION = ROOT / "data" / "sessions" / "sim-session.jsonl.gz"


def candles_to_kafka(spec: str, tmp_path: Path) -> tuple[Any, list[bytes]]:
    """The candle flow over the shipped session into ``kafka:SPEC`` and ``--out``:
    the run, and the lines of its ``--out`` file."""
    out = tmp_path / "out.jsonl"
    result = run_cli(
        "run",
        "candles",
        "--replay",
        str(SESSION),
        "--sink",
        f"kafka:{spec}",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result, out.read_bytes().splitlines()


def test_records_arrive_keyed_by_symbol_with_their_kind_as_out_writes_them(
    broker: Broker, tmp_path: Path
) -> None:
    result, lines = candles_to_kafka(f"{broker.address}/candles", tmp_path)
    assert "rdkafka" not in result.stderr
    assert len(lines) > 50
    messages = consume(broker.address, "candles", len(lines))
    assert sorted(m.value() for m in messages) == sorted(lines)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    kinds: Counter[str] = Counter()
    for message in messages:
        record = json.loads(message.value())
        assert message.key() == record["symbol"].encode()
        partitions[message.key()].add(message.partition())
        (kind,) = [v.decode() for k, v in message.headers() if k == "kind"]
        kinds[kind] += 1
    assert all(len(p) == 1 for p in partitions.values())  # a market stays in order
    assert kinds["candle"] > 50
    assert set(kinds) <= {"candle", "historical_candle", "trade_gap", "trade"} | {
        "kline_mismatch",
        "kline_resolved",
        "trade_backfill",
    }


def test_a_topic_per_kind(broker: Broker, tmp_path: Path) -> None:
    spec = f"{broker.address}/bpx.{{kind}},acks=1,compression=zstd"
    _, lines = candles_to_kafka(spec, tmp_path)
    candles = [line for line in lines if line.startswith(b'{"type":"candle",')]
    messages = consume(broker.address, "bpx.candle", len(candles))
    assert sorted(m.value() for m in messages) == sorted(candles)


def test_no_broker_at_start_is_one_line_and_exit_2_within_seconds() -> None:
    started = time.monotonic()
    result = run_cli(
        "run",
        "candles",
        "--replay",
        str(SESSION),
        "--sink",
        f"kafka:127.0.0.1:{free_port()}/candles",
        "--quiet",
        timeout=60,
    )
    assert time.monotonic() - started < 20
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: kafka: no broker answered at 127.0.0.1:")


def test_a_broker_killed_mid_run_ends_the_run_non_zero_in_one_line(
    broker: Broker,
) -> None:
    """The records it never took are counted, and the run ends within its timeout."""
    args = ["run", "candles", "SOL_USDC", "BTC_USDC", "--seconds", "60"]
    sink = ["--sink", f"kafka:{broker.address}/live,timeout_s=3", "--quiet"]
    # 6 s: the simulator starts, candles flow to the broker.
    ended = killed_mid_run(broker, [*args, *sink], after_s=6)
    stderr = ended.stderr
    assert ended.after_kill_s < 30
    assert ended.code == 2, stderr[-3000:]
    assert "Traceback" not in stderr and "panic" not in stderr.lower()
    errors = ended.errors()
    assert len(errors) == 1, stderr
    assert "records were not delivered to live" in errors[0]
    assert stderr.count("rdkafka") <= 1, stderr  # once per episode, at most
