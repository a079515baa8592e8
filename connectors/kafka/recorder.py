"""The raw feed into a topic: what a recording file holds, a line per message.

``KafkaRecorder`` is the ``Tap`` of ``record --out kafka:...`` (each frame and REST
answer as the connection sees it); ``copy_recording`` sends the lines of recording
files (``record --replay FILE --out kafka:...``). Both place lines by
``placement.LinePlacement``, so a topic written either way replays the same.

A message's value is the recording line without its newline. Delivery is as the
sink's: an idempotent producer (no duplicate, no reordering within a partition on
retries), every message counted delivered or failed; the first failure calls
``on_fatal`` (the run stops) and ``failures`` then holds one error counting what was
not delivered. ``close`` waits up to the spec's ``timeout_s`` for the last ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..backpack.text import printable
from ..errors import BpxError
from ..recording import LineRecorder, RecordingReader, header_line
from ..sources.progress import ReplayProgress
from .placement import LinePlacement
from .spec import KafkaDeliveryError, KafkaSpec, LibrdkafkaLog

__all__ = ["KafkaRecorder", "copy_recording"]

_POLL_EVERY_S = 0.1  # how often sending lines also serves the delivery reports

log = logging.getLogger("bpx_flows.kafka")


class KafkaRecorder(LineRecorder):
    """Recording lines into ``spec.topic`` (``partitions`` of them); thread-safe.

    Args:
        spec: brokers, topic and producer options.
        streams: the subscribed streams, for the header (``None``: no header, the
            lines copied bring their own).
        partitions: the topic's partition count (``spec.ensure_topic``).
        on_fatal: called once, at the first message that could not be delivered.
    """

    def __init__(
        self,
        spec: KafkaSpec,
        streams: Sequence[str] | None,
        partitions: int,
        on_fatal: Callable[[], None] | None = None,
    ) -> None:
        from confluent_kafka import Producer

        self.spec = spec
        self._on_fatal = on_fatal or (lambda: None)
        self._placement = LinePlacement(partitions)
        self._lock = threading.Lock()  # lines placed and sent in one order
        self._counts = threading.Lock()  # delivery reports come from any poller
        self._log = LibrdkafkaLog()
        self._producer = Producer({**spec.producer_config(), "logger": self._log})
        self.lines = 0
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self._last_error = ""
        self._closed = False
        self._polled = time.monotonic()
        if streams is not None:
            self._write(header_line(streams))

    def __enter__(self) -> KafkaRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_lines(self, lines: Sequence[bytes]) -> None:
        """Send recording lines as they are (a copy of a file)."""
        for line in lines:
            self._write(line)
        self._producer.poll(0)

    def _write(self, line: bytes) -> None:
        produce, poll = self._producer.produce, self._producer.poll
        topic = self.spec.topic
        with self._lock:
            self.lines += 1
            placed = self._placement.place(line)
            for partition, key, text in placed:
                value = text[:-1] if text.endswith(b"\n") else text
                deadline = None
                while True:
                    try:
                        produce(topic, value, key, partition, on_delivery=self._done)
                        break
                    except BufferError:  # the queue is full: let it drain
                        deadline = deadline or time.monotonic() + self.spec.timeout_s
                        if time.monotonic() > deadline:
                            self._failed(f"queue full for {self.spec.timeout_s:g} s")
                            break
                        poll(0.05)
                self.sent += 1
        now = time.monotonic()
        if now - self._polled >= _POLL_EVERY_S:  # delivery reports, failures too
            self._polled = now
            poll(0)

    def _done(self, error: Any, message: Any) -> None:
        if error is None:
            with self._counts:
                self.delivered += 1
            self._log.reset()
            return
        self._failed(printable(error.str()))

    def _failed(self, why: str, count: int = 1) -> None:
        with self._counts:
            first = not self.failed
            self.failed += count
            self._last_error = why
        if first:
            log.warning(
                "kafka: lines to %s not delivered (%s); stopping", self.spec.topic, why
            )
            self._on_fatal()

    @property
    def failures(self) -> list[BpxError]:
        """One error counting the messages not delivered, or none."""
        if not self.failed:
            return []
        msg = (
            f"kafka: {self.failed:,} of {self.sent:,} messages were not delivered to "
            f"{self.spec.topic} at {self.spec.where} within {self.spec.timeout_s:g} s "
            f"({self._last_error})"
        )
        return [KafkaDeliveryError(msg)]

    def flush(self) -> None:
        """Serve delivery reports (the ``Tap`` flushes now and then)."""
        self._producer.poll(0)

    def close(self) -> None:
        """Wait for the last deliveries, up to the spec's ``timeout_s``."""
        if self._closed:
            return
        self._closed = True
        left = self._producer.flush(self.spec.timeout_s)
        if left:
            self._failed(f"{left} still queued at the end", left)


def copy_recording(
    paths: Sequence[str | Path],
    recorder: KafkaRecorder,
    progress_every_s: float = 5.0,
    stopped: Callable[[], bool] = lambda: False,
) -> int:
    """Send every complete line of the recordings, in order; the lines sent.

    Stops early (between blocks) when ``stopped()`` or at the first failure.
    """
    total = 0
    for path in paths:
        reader = RecordingReader(path)
        progress = ReplayProgress(Path(path).name, reader, 0, progress_every_s)
        lines = 0
        for block in reader.blocks():
            if stopped() or recorder.failed:
                return total
            recorder.write_lines(block)
            lines += len(block)
            total += len(block)
            progress.tick(lines)
        progress.done(lines)
    return total
