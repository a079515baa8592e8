"""Records to Kafka: keyed by symbol, tagged with their kind, every delivery counted.

``kafka:HOST:PORT[,HOST:PORT...]/TOPIC[,acks=all][,compression=zstd][,timeout_s=30]``

- **Key**: the record's market (``symbol``, or a frame's ``s``), so one market's
  records stay in order on one partition; records of no market have no key.
- **Headers**: ``kind``, the record's kind as ``--out`` and Parquet name it
  (``connectors.kinds``). ``{kind}`` in the topic name gives a topic per kind.
- **Value**: the record as JSON, byte for byte what ``--out`` writes.
- **Delivery**: an idempotent producer (``acks=all`` by default): retries never
  duplicate or reorder a partition. Each record is *delivered* or *failed*
  (``bpx_kafka_messages_total{outcome}``); a record the brokers have not taken
  within ``timeout_s`` (30 s) fails. The first failure asks the run to stop
  (``on_fatal``), and the run then ends non-zero with one line counting what was
  not delivered (``failures``). At-least-once across restarts: a resumed run may
  send records of its last epoch again.
- **Stop**: ``close`` flushes for at most ``FLUSH_S`` seconds; what is left fails.
- **Logs**: librdkafka's own lines go through ``bpx_flows.kafka`` at DEBUG, and a
  line of ours says once per episode that the brokers cannot be reached.

``check_brokers`` (run before the flow starts) asks the brokers for the topic's
metadata within seconds: no answer, or a topic that cannot be written, is a
``ConfigError``. Needs ``confluent-kafka`` (``pip install 'bpx-flows[kafka]'``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from .. import metrics as m
from ..backpack.text import printable
from ..backpack.wire import Frame
from ..errors import BpxError, ConfigError
from ..kafka.spec import (
    KafkaDeliveryError,
    KafkaSpec,
    LibrdkafkaLog,
    check_brokers,
    parse_kafka,
)
from ..kinds import kind_of, record_json

__all__ = [
    "FLUSH_S",
    "KafkaDeliveryError",
    "KafkaSink",
    "KafkaSpec",
    "check_brokers",
    "parse_kafka",
]

log = logging.getLogger("bpx_flows.kafka")

FLUSH_S = 5.0  # the longest a stopping sink waits for its last deliveries
_encode = record_json


class _Deliveries:
    """What one sink's partitions sent: counted from the producers' reports."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.last_error = ""
        self.episode = False  # a failure was seen and not yet followed by a delivery


class _KafkaPartition(StatelessSinkPartition[Any]):
    def __init__(
        self,
        spec: KafkaSpec,
        deliveries: _Deliveries,
        on_failure: Callable[[], None],
    ) -> None:
        from confluent_kafka import Producer

        self._spec = spec
        self._deliveries = deliveries
        self._on_failure = on_failure
        self._log = LibrdkafkaLog()
        self._producer = Producer({**spec.producer_config(), "logger": self._log})
        self._fixed_topic = None if "{kind}" in spec.topic else spec.topic

    def write_batch(self, items: list[Any]) -> None:
        produce, poll = self._producer.produce, self._producer.poll
        topic_of, fixed = self._spec.topic_of, self._fixed_topic
        for item in items:
            kind = kind_of(item)
            topic = fixed or topic_of(kind)
            value = _encode(item)
            key = _key_of(item)
            headers: list[tuple[str, str | bytes | None]] = [("kind", kind)]
            deadline = None
            while True:
                try:
                    produce(topic, value, key, headers=headers, on_delivery=self._done)
                    break
                except BufferError:  # the producer's queue is full: let it drain
                    deadline = deadline or time.monotonic() + self._spec.timeout_s
                    if time.monotonic() > deadline:
                        self._failed(f"queue full for {self._spec.timeout_s:g} s", 1)
                        break
                    poll(0.05)
            with self._deliveries.lock:
                self._deliveries.sent += 1
        poll(0)
        m.KAFKA_QUEUED.labels(self._spec.topic).set(len(self._producer))

    def _done(self, error: Any, message: Any) -> None:
        topic = message.topic() or self._spec.topic
        if error is None:
            deliveries = self._deliveries
            self._log.reset()
            with deliveries.lock:
                deliveries.delivered += 1
                if deliveries.episode:
                    deliveries.episode = False
                    log.info("kafka: %s delivering again", topic)
            m.KAFKA_MESSAGES.labels(topic, "delivered").inc()
            return
        self._failed(printable(error.str()), 1, topic)

    def _failed(self, why: str, count: int, topic: str | None = None) -> None:
        deliveries = self._deliveries
        with deliveries.lock:
            deliveries.failed += count
            deliveries.last_error = why
            first = not deliveries.episode
            deliveries.episode = True
        m.KAFKA_MESSAGES.labels(topic or self._spec.topic, "failed").inc(count)
        if first:
            log.warning(
                "kafka: records to %s not delivered (%s); stopping the run",
                topic or self._spec.topic,
                why,
            )
            self._on_failure()

    def close(self) -> None:
        left = self._producer.flush(min(FLUSH_S, self._spec.timeout_s))
        if left:
            self._failed(f"{left} still queued when the run stopped", left)
        m.KAFKA_QUEUED.labels(self._spec.topic).set(0)


def _key_of(record: Any) -> bytes | None:
    subject = record.data if type(record) is Frame else record
    symbol = getattr(subject, "symbol", None) or getattr(subject, "s", None)
    return symbol.encode() if isinstance(symbol, str) and symbol else None


class KafkaSink(DynamicSink[Any]):
    """Every record to Kafka (see the module doc for keys, headers and delivery).

    Partition: one producer per worker, all counting into one ``_Deliveries``.
    Constructing it does no I/O (``check_brokers`` does, before the run).

    Args:
        spec: brokers, topic and producer options.
        on_fatal: called once, at the first record that could not be delivered
            (the runner passes its ``StopSignal.set``); ``None``: keep going.
    """

    def __init__(
        self, spec: KafkaSpec, on_fatal: Callable[[], None] | None = None
    ) -> None:
        try:
            import confluent_kafka  # noqa: F401 (fail at the spec, not at the run)
        except ImportError:
            msg = "the kafka sink needs confluent-kafka: pip install 'bpx-flows[kafka]'"
            raise ConfigError(msg) from None
        self.spec = spec
        self._on_fatal = on_fatal or (lambda: None)
        self._deliveries = _Deliveries()

    @property
    def failures(self) -> list[BpxError]:
        """One error counting the records not delivered, or none."""
        d = self._deliveries
        if not d.failed:
            return []
        msg = (
            f"kafka: {d.failed:,} of {d.sent:,} records were not delivered to "
            f"{self.spec.topic} at {','.join(self.spec.brokers)} within "
            f"{self.spec.timeout_s:g} s ({d.last_error})"
        )
        return [KafkaDeliveryError(msg)]

    @property
    def delivered(self) -> int:
        """Records the brokers acknowledged so far."""
        return self._deliveries.delivered

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _KafkaPartition:
        """This worker's producer."""
        return _KafkaPartition(self.spec, self._deliveries, self._on_fatal)
