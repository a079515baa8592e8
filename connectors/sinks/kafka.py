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
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from .. import metrics as m
from ..backpack.text import printable
from ..backpack.wire import Frame
from ..errors import BpxError, ConfigError
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
_ACKS = ("all", "1", "0")
_COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:(\d{1,5})$")
_encode = record_json


class KafkaDeliveryError(BpxError):
    """Records the brokers did not take within the delivery timeout."""


@dataclass(frozen=True, slots=True)
class KafkaSpec:
    """Where and how records go.

    Attributes:
        brokers: ``host:port`` of each bootstrap broker.
        topic: the topic, or a pattern with ``{kind}`` (a topic per record kind).
        acks: ``all`` (the default: every in-sync replica), ``1`` or ``0``.
        compression: ``none``, ``gzip``, ``snappy``, ``lz4`` or ``zstd``.
        timeout_s: a record not delivered within this long fails, seconds.
    """

    brokers: tuple[str, ...]
    topic: str
    acks: str = "all"
    compression: str = "none"
    timeout_s: float = 30.0

    def topic_of(self, kind: str) -> str:
        """The topic a record of ``kind`` goes to."""
        return self.topic.replace("{kind}", kind)

    def producer_config(self) -> dict[str, Any]:
        """The producer's settings (librdkafka's names) for this spec."""
        return {
            "bootstrap.servers": ",".join(self.brokers),
            "enable.idempotence": self.acks == "all",
            "acks": self.acks,
            "compression.type": self.compression,
            "delivery.timeout.ms": int(self.timeout_s * 1000),
            "linger.ms": 5,
            "socket.connection.setup.timeout.ms": 5_000,
            "reconnect.backoff.max.ms": 2_000,
        }


def parse_kafka(argument: str) -> KafkaSpec:
    """The spec of ``kafka:ARGUMENT`` (see the module doc).

    Raises:
        ConfigError: a part that does not parse, with the fix.
    """
    brokers_text, slash, rest = argument.partition("/")
    topic, *options = rest.split(",")
    if not slash or not brokers_text or not topic:
        msg = "kafka needs BROKERS/TOPIC, e.g. kafka:127.0.0.1:9092/candles"
        raise ConfigError(msg)
    brokers = tuple(b.strip() for b in re.split(r"[,;]", brokers_text) if b.strip())
    for broker in brokers:
        found = _HOST_PORT.match(broker)
        if found is None or not 1 <= int(found.group(1)) <= 65535:
            msg = f"kafka broker {broker!r} is not HOST:PORT (port 1-65535)"
            raise ConfigError(msg)
    if not _TOPIC.match(topic.replace("{kind}", "kind")):
        msg = (
            f"kafka topic {topic!r}: use letters, digits, '.', '_', '-' "
            "(and {kind} for a topic per record kind)"
        )
        raise ConfigError(msg)
    values = _options(options)
    spec = KafkaSpec(
        brokers,
        topic,
        acks=values.pop("acks", "all"),
        compression=values.pop("compression", "none"),
        timeout_s=_seconds(values.pop("timeout_s", "30")),
    )
    if values:
        msg = f"unknown kafka option(s): {', '.join(sorted(values))}"
        raise ConfigError(msg)
    if spec.acks not in _ACKS:
        msg = f"kafka acks must be one of {', '.join(_ACKS)}, not {spec.acks!r}"
        raise ConfigError(msg)
    if spec.compression not in _COMPRESSION:
        names = ", ".join(_COMPRESSION)
        msg = f"kafka compression must be one of {names}, not {spec.compression!r}"
        raise ConfigError(msg)
    return spec


def _options(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            msg = f"kafka option {item!r} is not key=value"
            raise ConfigError(msg)
        out[key.strip()] = value.strip()
    return out


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 3600:  # NaN fails too
        msg = f"kafka timeout_s must be in (0, 3600] seconds, got {text!r}"
        raise ConfigError(msg)
    return value


class _LibrdkafkaLog:
    """The lines of librdkafka, through our logging.

    All at DEBUG; the first error of an episode once at WARNING too (an episode ends
    at the next delivery).
    """

    _lines = logging.getLogger("bpx_flows.kafka.librdkafka")

    EPISODE_S = 10.0  # deliveries in flight at an outage may still arrive this long

    def __init__(self, warn: bool = True) -> None:
        self._warn = warn
        self._warned_at: float | None = None  # monotonic time of this episode's line

    def log(self, level: int, fmt: str, *args: Any) -> None:
        """Called by confluent-kafka (``logger`` setting) from ``poll``/``flush``."""
        text = printable(fmt % args if args else fmt)
        self._lines.debug("%s", text)
        if self._warn and level >= logging.ERROR and self._warned_at is None:
            self._warned_at = time.monotonic()
            log.warning("kafka: %s (further lines at debug level)", text[:300])

    def reset(self) -> None:
        """A record was delivered: the next error starts a new episode.

        Only once the episode is ``EPISODE_S`` old: the reports of records taken just
        before an outage do not end it.
        """
        warned = self._warned_at
        if warned is not None and time.monotonic() - warned > self.EPISODE_S:
            self._warned_at = None


def _quiet_logger() -> _LibrdkafkaLog:
    """The library's lines at DEBUG only (the start-up check says it in one line)."""
    return _LibrdkafkaLog(warn=False)


def check_brokers(spec: KafkaSpec, timeout_s: float = 5.0) -> None:
    """Ask the brokers for the topic within ``timeout_s``: they answer, it is writable.

    Raises:
        ConfigError: no broker answered, or the topic cannot be written.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(spec.brokers),
        "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
        "logger": _quiet_logger(),
    }
    admin = AdminClient(config)
    topic = None if "{kind}" in spec.topic else spec.topic
    where = ",".join(spec.brokers)
    try:
        found = admin.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        msg = (
            f"kafka: no broker answered at {where} within {timeout_s:g} s "
            f"({printable(str(exc.args[0].str() if exc.args else exc))})"
        )
        raise ConfigError(msg) from None
    if topic is not None:
        error = found.topics[topic].error if topic in found.topics else None
        if error is not None or topic not in found.topics:
            msg = f"kafka: topic {topic!r} at {where} cannot be written ({error})"
            raise ConfigError(msg)


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
        self._log = _LibrdkafkaLog()
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
