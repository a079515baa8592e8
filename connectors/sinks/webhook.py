"""HTTP webhook sink for alerts: JSON POSTs from a bounded queue, with retries.

Market-data processing never waits on the webhook: ``write_batch`` only enqueues; a
background thread delivers. A full queue drops the oldest alert, and an alert that
fails every retry is dropped too; both are counted (``bpx_sink_dropped_total``) and
logged, never silent.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from .. import metrics as m
from ..backpack.retry import backoff
from ..backpack.text import printable

__all__ = ["WebhookConfig", "WebhookSink", "plain_line"]

log = logging.getLogger("bpx_flows.webhook")
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Where and how to POST.

    Attributes:
        url: the endpoint.
        format: ``json`` (the record itself) or ``slack`` (``{"text": "..."}``, which
            Slack and Discord-compatible webhooks accept; Discord uses ``content``,
            so ``discord`` sends that).
        timeout_s: per request, seconds.
        retries: attempts after the first, on network errors, timeouts, 429 and 5xx.
        backoff_initial_s: first retry delay ceiling, seconds (jittered, doubling).
        max_queue: alerts waiting; beyond it the oldest is dropped.
    """

    url: str
    format: str = "json"
    timeout_s: float = 5.0
    retries: int = 5
    backoff_initial_s: float = 0.5
    max_queue: int = 1_000


Render = Callable[[Any], str]


def plain_line(item: Any) -> str:
    """The line of an item when no presentation is given: its ``repr``, escaped."""
    return printable(repr(item))


def _body(item: Any, style: str, render: Render) -> tuple[bytes, str]:
    if style == "slack":
        return _encode({"text": render(item)}), "application/json"
    if style == "discord":
        return _encode({"content": render(item)}), "application/json"
    return _encode(item), "application/json"


class _WebhookPartition(StatelessSinkPartition[Any]):
    def __init__(self, config: WebhookConfig, name: str, render: Render) -> None:
        self._config = config
        self._name = name
        self._render = render
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=config.max_queue)
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=config.timeout_s)
        self.delivered = 0
        self._thread = threading.Thread(
            target=self._run, name="bpx-webhook", daemon=True
        )
        self._thread.start()

    def write_batch(self, items: list[Any]) -> None:
        for item in items:
            while True:
                try:
                    self._queue.put_nowait(item)
                    break
                except queue.Full:
                    self._drop(self._queue.get_nowait(), "queue full")
        m.SINK_QUEUE.labels(self._name).set(self._queue.qsize())

    def close(self) -> None:
        # Give queued alerts a bounded chance to go out, then stop.
        deadline = time.monotonic() + self._config.timeout_s * 2
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(timeout=self._config.timeout_s * 2)
        while not self._queue.empty():
            self._drop(self._queue.get_nowait(), "sink closed")
        self._client.close()

    # The delivery thread.

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self._deliver(item)
            m.SINK_QUEUE.labels(self._name).set(self._queue.qsize())

    def _deliver(self, item: Any) -> None:
        cfg = self._config
        body, content_type = _body(item, cfg.format, self._render)
        delays = backoff(cfg.backoff_initial_s, 30.0)
        for attempt in range(cfg.retries + 1):
            try:
                response = self._client.post(
                    cfg.url, content=body, headers={"Content-Type": content_type}
                )
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    break  # the endpoint refuses this payload: retrying will not help
            m.SINK_ERRORS.labels(self._name).inc()
            if attempt == cfg.retries or self._stop.is_set():
                break
            delay = next(delays)
            log.info("webhook POST failed (%s); retrying in %.2f s", problem, delay)
            if self._stop.wait(delay):
                break
        self._drop(item, problem)

    def _drop(self, item: Any, why: str) -> None:
        m.SINK_DROPPED.labels(self._name).inc()
        log.warning("webhook dropped an alert (%s): %s", why, self._render(item)[:200])


class WebhookSink(DynamicSink[Any]):
    """POSTs every item to a webhook (alerts), asynchronously and bounded.

    Partition: one per worker, each with its queue and delivery thread. Delivery:
    at-most-once beyond the retries (drops are counted and logged). Never stalls the
    flow: a slow or failing endpoint only fills the bounded queue.
    """

    def __init__(
        self, config: WebhookConfig, name: str = "webhook", render: Render = plain_line
    ) -> None:
        self.config = config
        self.name = name
        self._render = render  # an item's text line (slack, discord, log lines)
        self.partitions: list[_WebhookPartition] = []

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> _WebhookPartition:
        """Start this worker's delivery thread."""
        part = _WebhookPartition(self.config, self.name, self._render)
        self.partitions.append(part)
        return part
