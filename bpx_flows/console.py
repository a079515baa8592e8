"""Console and alert sinks and signal handling, shared by the CLI and ``run``."""

from __future__ import annotations

import contextlib
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "alert_sink",
    "console_sink",
    "counting_describe",
    "metered",
    "stop_on_signals",
    "tee",
]


def counting_describe(counts: Counter[str]) -> Callable[[Any], str]:
    """``describe`` that also counts each record by kind."""
    from bpx_flows.connectors.sinks.describe import describe, kind_of

    def render(record: Any) -> str:
        counts[kind_of(record)] += 1
        return describe(record)

    return render


def console_sink(counts: Counter[str], quiet: bool = False, prefix: str = "") -> Any:
    """One line per record on stdout (or, ``quiet``, only counted)."""
    from bpx_flows.connectors.sinks import CountingSink, LineSink
    from bpx_flows.connectors.sinks.describe import kind_of

    if quiet:
        sink = CountingSink(kind_of)
        sink.counts = counts
        return sink
    return LineSink(counting_describe(counts), prefix=prefix)


def tee(first: Any, second: Any) -> Any:
    """Both sinks get every item."""
    from bpx_flows.connectors.sinks.tee import TeeSink

    return TeeSink(first, second)


def alert_sink(
    alerts_file: str | None,
    webhook: str | None,
    webhook_format: str = "json",
    console: Any = None,
) -> Any:
    """Alerts on stdout (``ALERT`` lines), plus a JSON Lines file and a webhook."""
    sink = console if console is not None else console_sink(Counter(), prefix="ALERT ")
    if alerts_file:
        from bpx_flows.connectors.sinks import JsonLinesSink

        sink = tee(sink, JsonLinesSink(alerts_file))
    if webhook:
        from bpx_flows.connectors.sinks.webhook import WebhookConfig, WebhookSink

        sink = tee(sink, WebhookSink(WebhookConfig(webhook, format=webhook_format)))
    return sink


def metered(sink: Any, specs: list[str]) -> Any:
    """``sink`` teed into every ``--sink SPEC``."""
    from bpx_flows.connectors.sinks.registry import make_sink

    for spec in specs:
        sink = tee(sink, make_sink(spec))
    return sink


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT/SIGTERM end the sources, so the flow finishes cleanly (exit 0)."""
    from bpx_flows.connectors.source import StopSignal

    StopSignal.clear()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: StopSignal.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
