"""Where Kafka is and how to talk to it: the ``kafka:`` spec, the start-up check, logs.

``kafka:HOST:PORT[,HOST:PORT...]/TOPIC[,option=value...]`` names brokers and a topic
for the ``--sink``, for ``record --out`` (the raw feed) and for ``--replay`` (a flow
from the topic). Everything here is shared by those three; none of it holds records.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from ..backpack.text import printable
from ..errors import BpxError, ConfigError

__all__ = [
    "DEFAULT_PARTITIONS",
    "KafkaDeliveryError",
    "KafkaSpec",
    "LibrdkafkaLog",
    "check_brokers",
    "ensure_topic",
    "parse_kafka",
    "quiet_logger",
    "topic_partitions",
]

log = logging.getLogger("bpx_flows.kafka")

DEFAULT_PARTITIONS = 8  # a topic ``record`` creates: room for 8 consuming workers
_ACKS = ("all", "1", "0")
_COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:(\d{1,5})$")


class KafkaDeliveryError(BpxError):
    """Messages the brokers did not take within the delivery timeout."""


@dataclass(frozen=True, slots=True)
class KafkaSpec:
    """Where and how records go.

    Attributes:
        brokers: ``host:port`` of each bootstrap broker.
        topic: the topic, or a pattern with ``{kind}`` (a topic per record kind).
        acks: ``all`` (the default: every in-sync replica), ``1`` or ``0``.
        compression: ``none``, ``gzip``, ``snappy``, ``lz4`` or ``zstd``.
        timeout_s: a record not delivered within this long fails, seconds (a
            replay: the longest the brokers may stay silent).
        partitions: the partitions of a topic ``record`` creates (an existing
            topic keeps its own).
    """

    brokers: tuple[str, ...]
    topic: str
    acks: str = "all"
    compression: str = "none"
    timeout_s: float = 30.0
    partitions: int = DEFAULT_PARTITIONS

    @property
    def where(self) -> str:
        """The brokers, as the user wrote them (for messages)."""
        return ",".join(self.brokers)

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

    def consumer_config(self) -> dict[str, Any]:
        """A consumer that reads assigned partitions from explicit offsets.

        No group commits: where a run is lives in Bytewax's recovery snapshots.
        """
        return {
            "bootstrap.servers": self.where,
            "group.id": "bpx-flows-replay",  # required by librdkafka, never joined
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",  # an offset retention deleted
            "socket.connection.setup.timeout.ms": 5_000,
            "reconnect.backoff.max.ms": 2_000,
            "fetch.wait.max.ms": 50,
            # Bounded prefetch: librdkafka's default queues up to 64 MiB per
            # partition consumer; a replay reads a block at a time anyway.
            "queued.max.messages.kbytes": 8192,
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
        partitions=_partitions(values.pop("partitions", str(DEFAULT_PARTITIONS))),
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


def _partitions(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        msg = f"kafka partitions must be a whole number in 1-10000, got {text!r}"
        raise ConfigError(msg)
    return int(text)


class LibrdkafkaLog:
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


def quiet_logger() -> LibrdkafkaLog:
    """The library's lines at DEBUG only (the start-up check says it in one line)."""
    return LibrdkafkaLog(warn=False)


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
        "logger": quiet_logger(),
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


def ensure_topic(spec: KafkaSpec, timeout_s: float = 5.0) -> int:
    """The topic's partition count; a missing topic is created with ``partitions``.

    Creating comes first: some brokers (Tansu) create a topic with their own
    default count as soon as its metadata is asked for.

    Raises:
        ConfigError: no broker answered, or the topic could not be created.
    """
    from confluent_kafka import KafkaException, admin as kafka_admin

    AdminClient = kafka_admin.AdminClient
    NewTopic = kafka_admin.NewTopic  # type: ignore[attr-defined]

    admin = AdminClient(_admin_config(spec, timeout_s))
    _partition_count(admin, None, spec, timeout_s)  # brokers answer (one line if not)
    created = admin.create_topics(
        [NewTopic(spec.topic, spec.partitions, 1)], request_timeout=timeout_s
    )
    try:
        created[spec.topic].result(timeout=timeout_s)
        log.info("kafka: created topic %s (%d partitions)", spec.topic, spec.partitions)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if error is None or error.name() != "TOPIC_ALREADY_EXISTS":
            why = printable(error.str() if error is not None else str(exc))
            msg = f"kafka: cannot create topic {spec.topic!r} at {spec.where} ({why})"
            raise ConfigError(msg) from None
    deadline = time.monotonic() + timeout_s
    while not (count := _partition_count(admin, spec.topic, spec, timeout_s)):
        if time.monotonic() > deadline:
            msg = f"kafka: topic {spec.topic!r} at {spec.where} has no partitions"
            raise ConfigError(msg)
        time.sleep(0.05)
    return count


def topic_partitions(spec: KafkaSpec, timeout_s: float = 5.0) -> int:
    """How many partitions the topic has (0: it does not exist).

    Raises:
        ConfigError: no broker answered.
    """
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(_admin_config(spec, timeout_s))
    return _partition_count(admin, spec.topic, spec, timeout_s)


def _admin_config(spec: KafkaSpec, timeout_s: float) -> dict[str, Any]:
    return {
        "bootstrap.servers": spec.where,
        "socket.connection.setup.timeout.ms": int(timeout_s * 1000),
        "logger": quiet_logger(),
    }


def _partition_count(
    admin: Any, topic: str | None, spec: KafkaSpec, timeout_s: float
) -> int:
    """Partitions of ``topic`` (0: none; ``None``: only check the brokers answer)."""
    from confluent_kafka import KafkaException

    try:
        found = admin.list_topics(topic, timeout=timeout_s)
    except KafkaException as exc:
        msg = (
            f"kafka: no broker answered at {spec.where} within {timeout_s:g} s "
            f"({printable(str(exc.args[0].str() if exc.args else exc))})"
        )
        raise ConfigError(msg) from None
    meta = found.topics.get(topic) if topic is not None else None
    if meta is None or meta.error is not None:
        return 0
    return len(meta.partitions)
