"""A topic partition read back as recording lines, for a replay from Kafka.

``TopicLines`` reads one partition from an explicit offset (the earliest kept, or
where a resumed run's snapshot left it) to the end the partition had when reading
began, or on and on with ``follow``. The end is the high watermark of the first
fetch answer (``get_watermark_offsets(cached=True)``): some brokers answer the
offset query itself with the start of the last batch (Tansu 0.6 does), which
would leave that batch out.

A broker that gives no message, no end and no answer to an offset query (asked
when the partition is quiet) for ``timeout_s`` is an error (``KafkaReadError``):
a replay does not wait forever for a dead bus, and a followed topic may be quiet.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from typing import Any

import msgspec

from .. import metrics as m
from ..backpack.text import printable
from ..errors import BpxError, ConfigError
from .placement import DEFAULT_PARTITION
from .spec import KafkaSpec, quiet_logger

__all__ = ["KafkaReadError", "TopicLines", "topic_header_streams"]

log = logging.getLogger("bpx_flows.kafka")

_POLL_S = 0.05  # the longest one call waits for messages (the flow keeps moving)


class KafkaReadError(BpxError):
    """The brokers stopped answering a replay."""


class TopicLines:
    """The lines of one partition of ``spec.topic``, a block at a time.

    ``blocks`` yields the lines of each fetch (``[]``: nothing arrived within
    ``_POLL_S``; with ``follow``, wait and ask again) and ends at the end; while a
    block is being used, ``position(at)`` is the offset after its first ``at``
    lines: the resume point a snapshot keeps.

    Args:
        spec: brokers and topic (``timeout_s``: the longest silence tolerated).
        partition: the partition read.
        start: the first offset (``None``: the earliest the broker keeps).
        follow: read on past the end (a live flow fed by the bus).
        batch: the most messages per block.
    """

    def __init__(
        self,
        spec: KafkaSpec,
        partition: int,
        start: int | None,
        follow: bool = False,
        batch: int = 10_000,
    ) -> None:
        self.name = f"kafka:{spec.topic}[{partition}]"
        self._spec = spec
        self._partition = partition
        self._start = start
        self._follow = follow
        self._batch = max(1, min(batch, 100_000))
        self._consumer: Any = None
        self._next = start if start is not None else 0  # the next offset to read
        self._first: int | None = start
        self._end: int | None = None
        self._offsets: list[int] = []  # of the current block's lines
        self._next_before_block = self._next
        self._lag = m.KAFKA_LAG.labels(spec.topic, str(partition))

    def position(self, at: int) -> int:
        """The offset after the first ``at`` lines of the current block."""
        if at <= 0 or not self._offsets:
            return self._next_before_block
        return self._offsets[at - 1] + 1

    def fraction_read(self) -> float:
        """0..1: the share of the partition (up to its end) read so far."""
        if self._end is None or self._first is None or self._end <= self._first:
            return 0.0 if self._end is None else 1.0
        return min(max((self._next - self._first) / (self._end - self._first), 0.0), 1)

    def blocks(self) -> Iterator[list[bytes]]:
        """Each fetch's lines, in offset order, to the end (see the class doc)."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        config = {**self._spec.consumer_config(), "logger": quiet_logger()}
        self._consumer = consumer = Consumer(config)
        start = self._start if self._start is not None else OFFSET_BEGINNING
        where = TopicPartition(self._spec.topic, self._partition, start)
        consumer.assign([where])
        self._next_before_block = self._next
        heard = probed = time.monotonic()
        try:
            while True:
                messages = consumer.consume(self._batch, _POLL_S)
                lines, offsets, ended = self._take(messages, where)
                now = time.monotonic()
                if lines or ended:
                    heard = now
                elif now - heard > self._probe_after_s and now - probed >= 1.0:
                    probed = now  # quiet: is the broker there at all?
                    if self._answers(where):
                        heard = now
                if now - heard > self._spec.timeout_s:
                    msg = (
                        f"kafka: no answer from {self._spec.where} for "
                        f"{self._spec.timeout_s:g} s reading {self.name}"
                    )
                    raise KafkaReadError(msg)
                self._next_before_block = self._next
                self._offsets = offsets
                if offsets:
                    self._next = offsets[-1] + 1
                    self._show_lag(where)
                if lines or not ended or self._follow:
                    yield lines
                if ended and not self._follow:
                    return
        finally:
            self.close()

    def _take(
        self, messages: list[Any], where: Any
    ) -> tuple[list[bytes], list[int], bool]:
        """The lines and offsets of one fetch, and whether the end is reached."""
        from confluent_kafka import KafkaError

        lines: list[bytes] = []
        offsets: list[int] = []
        reached = False
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._learn_end(message.offset())
                    reached = True
                    continue
                if error.fatal() or error.code() in _fatal_codes():
                    msg = f"kafka: cannot read {self.name} ({printable(error.str())})"
                    raise KafkaReadError(msg)
                log.debug("kafka: %s: %s", self.name, printable(error.str()))
                continue
            offset = message.offset()
            if self._first is None:
                self._first = offset
            if self._end is None:
                self._learn_end(self._cached_high(where))
            if self._end is not None and offset >= self._end and not self._follow:
                reached = True
                break
            value = message.value()
            if value:
                lines.append(value)
                offsets.append(offset)
        if not self._follow and self._end is not None:
            last = offsets[-1] + 1 if offsets else self._next
            reached = reached or last >= self._end
        return lines, offsets, reached

    @property
    def _probe_after_s(self) -> float:
        """Quiet this long (a followed topic, or a dead broker), ask the broker."""
        return min(self._spec.timeout_s / 3, 5.0)

    def _answers(self, where: Any) -> bool:
        """Whether the partition's leader answers an offset query within 1 s."""
        from confluent_kafka import KafkaException

        try:
            self._consumer.get_watermark_offsets(where, timeout=1.0)
        except KafkaException:
            return False
        return True

    def _show_lag(self, where: Any) -> None:
        """``bpx_kafka_replay_lag_messages``: from the last fetch's high watermark."""
        high = self._cached_high(where)
        if high is not None:
            self._lag.set(max(high - self._next, 0))

    def _learn_end(self, high: int | None) -> None:
        if self._end is None and high is not None and high >= 0:
            self._end = high
            log.debug("kafka: %s ends at offset %d", self.name, high)

    def _cached_high(self, where: Any) -> int | None:
        try:
            _, high = self._consumer.get_watermark_offsets(where, cached=True)
        except Exception:  # an unknown watermark: learnt at the EOF
            return None
        return int(high) if high is not None and high >= 0 else None

    def close(self) -> None:
        """Leave the broker (idempotent)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()


@functools.cache
def _fatal_codes() -> frozenset[int]:
    """Errors that do not heal by waiting: the topic or partition is not there."""
    from confluent_kafka import KafkaError

    return frozenset(
        {
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError._UNKNOWN_PARTITION,
            KafkaError._UNKNOWN_TOPIC,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
        }
    )


class _Header(msgspec.Struct):
    recorder: str | None = None
    streams: list[str] = msgspec.field(default_factory=list)


def topic_header_streams(spec: KafkaSpec, timeout_s: float = 5.0) -> list[str] | None:
    """The streams the first line of the default partition names, if a header.

    ``None``: the partition is empty (nothing was recorded into the topic); ``[]``:
    it does not start with a recording header (retention deleted it).

    Raises:
        ConfigError: no broker answered.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer({**spec.consumer_config(), "logger": quiet_logger()})
    try:
        consumer.assign(
            [TopicPartition(spec.topic, DEFAULT_PARTITION, OFFSET_BEGINNING)]
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return None
                continue
            try:
                header = msgspec.json.decode(message.value() or b"", type=_Header)
            except msgspec.DecodeError:
                return []
            return header.streams if header.recorder else []
        msg = f"kafka: no answer from {spec.where} within {timeout_s:g} s"
        raise ConfigError(msg)
    finally:
        consumer.close()
