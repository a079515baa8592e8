"""Kafka as the bus: the raw feed into a topic, and every flow from it.

Against a real Kafka-protocol broker started here on 127.0.0.1
(``tests/e2e/kafka_broker.py``). A flow replayed from a topic must give exactly
what the same flow gives from the recording file the topic was filled from.
"""

from __future__ import annotations

import gzip
import json
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bpx_flows.connectors.sim import SimConfig
from bpx_flows.connectors.sim.session import write_session
from tests.cli import kill_once_written, outputs, run_cli
from tests.e2e.kafka_broker import Broker, broker, consume, free_port, killed_mid_run

__all__ = ["broker"]  # the fixture, imported for the tests here

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SESSION = ROOT / "data" / "sessions" / "sim-session.jsonl.gz"
FLOWS = ["market", "book", "candles", "derivatives", "liquidations", "account", "tape"]


def copy_into(broker: Broker, topic: str, *files: Path, options: str = "") -> str:
    """``record --replay FILES --out kafka:...``; the ``kafka:`` spec of the topic."""
    spec = f"kafka:{broker.address}/{topic}{options}"
    result = run_cli(
        "record", *(a for f in files for a in ("--replay", str(f))), "--out", spec
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "copied" in result.stderr
    return spec.split(",", maxsplit=1)[0]


def run_flow(flow: str, source: str, out: Path, *flags: str) -> Counter[str]:
    result = run_cli(
        "run", flow, "--replay", source, "--out", str(out), "--quiet", *flags
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return outputs(out)


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Counter[str]]:
    """Each flow's output replaying the shipped session from its file."""
    folder = tmp_path_factory.mktemp("file")
    return {
        flow: run_flow(flow, str(SESSION), folder / f"{flow}.jsonl") for flow in FLOWS
    }


def test_every_flow_from_the_topic_equals_the_file_replay(
    broker: Broker, tmp_path: Path, expected: dict[str, Counter[str]]
) -> None:
    topic = copy_into(broker, "feed", SESSION, options=",partitions=3")
    for flow in FLOWS:
        got = run_flow(flow, topic, tmp_path / f"{flow}.jsonl")
        assert sum(got.values()) > 0, flow
        assert got == expected[flow], flow


@pytest.mark.parametrize(
    ("partitions", "flags"),
    [
        pytest.param(3, ["--workers", "2"], id="2-workers"),
        pytest.param(3, ["--processes", "2"], id="2-processes"),
        pytest.param(1, ["--workers", "2"], id="1-partition-2-workers"),
    ],
)
def test_workers_and_processes_share_the_partitions(
    broker: Broker,
    tmp_path: Path,
    expected: dict[str, Counter[str]],
    partitions: int,
    flags: list[str],
) -> None:
    topic = copy_into(broker, "feed", SESSION, options=f",partitions={partitions}")
    for flow in ("market", "account"):
        got = run_flow(flow, topic, tmp_path / f"{flow}.jsonl", *flags)
        assert got == expected[flow], flow


def test_each_line_is_on_its_markets_partition_and_every_partition_has_the_header(
    broker: Broker,
) -> None:
    copy_into(broker, "feed", SESSION, options=",partitions=4")
    messages = consume(broker.address, "feed", 10**9, timeout_s=5)
    by_partition: dict[int, list[bytes]] = {}
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        by_partition.setdefault(message.partition(), []).append(message.value())
    assert sorted(by_partition) == [0, 1, 2, 3]
    for values in by_partition.values():
        assert json.loads(values[0])["recorder"] == "bpx-flows"
    owners: dict[bytes, set[int]] = {}
    for message in messages:
        if message.key():
            owners.setdefault(message.key(), set()).add(message.partition())
            assert message.key().decode() in message.value().decode()
    assert len(owners) >= 3
    assert all(len(p) == 1 for p in owners.values())  # a market stays in order


def test_a_session_recorded_live_into_kafka_replays(
    broker: Broker, tmp_path: Path
) -> None:
    topic = f"kafka:{broker.address}/live"
    streams = ["depth.SOL_USDC", "trade.SOL_USDC", "markPrice.SOL_USDC_PERP"]
    result = run_cli("record", *streams, "--out", topic, "--seconds", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "recorded" in result.stderr and "to live at" in result.stderr
    out = tmp_path / "tape.jsonl"
    run_flow("tape", topic, out)
    types = Counter(json.loads(line)["type"] for line in outputs(out))
    assert types["depth"] > 10 and types["trade"] > 0 and types["mark_price"] > 0
    assert types["book_snapshot"] >= 1  # the REST seed went through the topic too
    book = run_flow("book", topic, tmp_path / "book.jsonl", "SOL_USDC")
    assert sum(book.values()) > 0


@pytest.fixture(scope="module")
def long_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 simulated seconds of three markets: long enough to kill a run mid-way."""
    path = tmp_path_factory.mktemp("long") / "session.jsonl.gz"
    symbols = ["SOL_USDC", "SOL_USDC_PERP", "BTC_USDC_PERP"]
    streams = [f"trade.{s}" for s in symbols] + [
        "depth.SOL_USDC",
        "depth.SOL_USDC_PERP",
        "markPrice.SOL_USDC_PERP",
        "liquidation",
    ]
    config = SimConfig(seed=5, rate_scale=3.0, account_every_s=None)
    write_session(path, 90.0, config, streams)
    return path


def test_kill_9_then_resume_gives_every_record_exactly_once(
    broker: Broker, tmp_path: Path, long_session: Path
) -> None:
    topic = copy_into(broker, "long", long_session, options=",partitions=3")
    whole = run_flow("market", topic, tmp_path / "whole.jsonl")
    out = tmp_path / "resumed.jsonl"
    state = tmp_path / "state"
    recovery = ["--recovery-dir", str(state), "--snapshot-every", "0.3"]
    paced = ["run", "market", "--replay", topic, "--out", str(out), *recovery]
    code = kill_once_written([*paced, "--speed", "30", "--quiet"], out)
    assert code == -signal.SIGKILL
    partial = sum(outputs(out).values())
    resumed = run_flow("market", topic, out, *recovery)
    assert 0 < partial < sum(whole.values())
    assert resumed == whole


def test_follow_sees_what_is_recorded_after_the_start(
    broker: Broker, tmp_path: Path, expected: dict[str, Counter[str]]
) -> None:
    """A followed topic, empty at the start, filled 2 s later: the flow sees it all."""
    topic = f"kafka:{broker.address}/later"
    out = tmp_path / "candles.jsonl"
    filler = threading.Timer(2.0, copy_into, (broker, "later", SESSION))
    filler.start()
    try:
        got = run_flow("candles", topic, out, "--follow", "--seconds", "12")
    finally:
        filler.join(timeout=60)
    assert got == expected["candles"]


def test_no_broker_no_topic_and_an_empty_topic_are_one_line_and_exit_2(
    broker: Broker,
) -> None:
    copy_into(broker, "x", SESSION)
    dead = f"kafka:127.0.0.1:{free_port()}/feed"
    empty = f"kafka:{broker.address}/nothing"
    filled = f"kafka:{broker.address}/x"
    cases = [
        ("no broker answered", ("run", "candles", "--replay", dead)),
        ("is empty: nothing to replay", ("run", "candles", "--replay", empty)),
        ("no broker answered", ("record", "--replay", str(SESSION), "--out", dead)),
        (
            "kafka topic is replayed alone",
            ("run", "candles", "--replay", filled, "--replay", str(SESSION)),
        ),
        (
            "follow needs a topic",
            ("run", "candles", "--replay", str(SESSION), "--follow"),
        ),
    ]
    for message, argv in cases:
        started = time.monotonic()
        result = run_cli(*argv, timeout=60)
        assert time.monotonic() - started < 20, argv
        assert result.returncode == 2, (argv, result.stderr[-2000:])
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (argv, result.stderr)
        assert lines[0].startswith("error:") and message in lines[0], lines


def test_a_broker_killed_mid_replay_ends_the_run_in_one_line(
    broker: Broker, long_session: Path
) -> None:
    topic = copy_into(broker, "long", long_session)
    args = ["run", "market", "--replay", f"{topic},timeout_s=3", "--follow", "--quiet"]
    ended = killed_mid_run(broker, args, after_s=4)
    assert ended.after_kill_s < 30
    assert ended.code == 2, ended.stderr[-3000:]
    assert "Traceback" not in ended.stderr and "panic" not in ended.stderr.lower()
    assert len(ended.errors()) == 1, ended.stderr
    assert "kafka: no answer from" in ended.errors()[0]


def test_a_broker_killed_mid_record_ends_it_in_one_line(broker: Broker) -> None:
    topic = f"kafka:{broker.address}/rec,timeout_s=3"
    args = ["record", "trade.SOL_USDC", "depth.SOL_USDC", "--out", topic]
    ended = killed_mid_run(broker, args, after_s=5)
    assert ended.after_kill_s < 30
    assert ended.code == 2, ended.stderr[-3000:]
    assert "Traceback" not in ended.stderr
    assert len(ended.errors()) == 1, ended.stderr
    assert "messages were not delivered to rec" in ended.errors()[0]


def test_speed_paces_a_topic_as_a_file(broker: Broker, tmp_path: Path) -> None:
    """The shipped session spans 30 s of receive time: --speed 5 takes 6 s or more
    (unpaced, the whole command takes about 2 s here)."""
    topic = copy_into(broker, "paced", SESSION)
    stamps = [
        int(line.split(b",")[0].split(b":")[1])
        for line in gzip.decompress(SESSION.read_bytes()).splitlines()
        if line.startswith(b'{"recv_us":')
    ]
    span_s = (max(stamps) - min(stamps)) / 1e6
    started = time.monotonic()
    run_flow("tape", topic, tmp_path / "tape.jsonl", "--speed", "5")
    took = time.monotonic() - started
    assert span_s > 20
    assert took >= span_s / 5 * 0.95, (took, span_s)


def test_export_from_the_topic_writes_the_files_the_recording_gives(
    broker: Broker, tmp_path: Path
) -> None:
    topic = copy_into(broker, "exported", SESSION, options=",partitions=3")
    written = {}
    for name, source in (("file", str(SESSION)), ("kafka", topic)):
        folder = tmp_path / name
        result = run_cli("export", source, "--format", "tardis", "--out", str(folder))
        assert result.returncode == 0, result.stderr[-3000:]
        written[name] = {
            path.name: gzip.decompress(path.read_bytes())
            for path in folder.glob("*.csv.gz")
        }
    assert len(written["file"]) >= 6
    assert written["kafka"] == written["file"]
