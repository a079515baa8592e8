"""What a run prints: one line per record, alerts marked, counted for the summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from bytewax.outputs import DynamicSink

from bpx_flows.connectors.sinks import CountingSink, LineSink
from bpx_flows.connectors.sinks.tee import TeeSink
from bpx_flows.operators.positions import PositionView
from bpx_flows.presentation import describe, summary_key

__all__ = ["alert_sink", "console_sink", "counting_describe", "metered"]


def counting_describe(counts: Counter[str]) -> Callable[[Any], str | None]:
    """``describe`` that also counts each record by kind.

    A position's line is printed when it changes: the account emits a view at every
    mark and position event, and an unchanged position would repeat the same line
    (the records themselves all go to ``--out`` and the sinks).
    """
    last_position: dict[str, str] = {}

    def render(record: Any) -> str | None:
        counts[summary_key(record)] += 1
        line = describe(record)
        if type(record) is PositionView:
            if last_position.get(record.symbol) == line:
                return None
            last_position[record.symbol] = line
        return line

    return render


def console_sink(
    counts: Counter[str],
    quiet: bool = False,
    on_reader_gone: Callable[[], None] | None = None,
) -> DynamicSink[Any]:
    """One line per record on stdout (or, ``quiet``, only counted).

    ``on_reader_gone``: called when the reader of stdout left (``| head``).
    """
    if quiet:
        sink = CountingSink(summary_key)
        sink.counts = counts
        return sink
    return LineSink(counting_describe(counts), on_reader_gone=on_reader_gone)


def alert_sink(
    counts: Counter[str],
    webhook: str | None,
    webhook_format: str = "json",
    on_reader_gone: Callable[[], None] | None = None,
) -> DynamicSink[Any]:
    """Alerts on stdout (``ALERT`` lines, also when quiet) and to a hook.

    (``--alerts FILE`` is a sink of its own: one file written by one worker.)
    """
    sink: DynamicSink[Any] = LineSink(
        counting_describe(counts), prefix="ALERT ", on_reader_gone=on_reader_gone
    )
    if webhook:
        from bpx_flows.connectors.sinks.webhook import WebhookConfig, WebhookSink

        config = WebhookConfig(webhook, format=webhook_format)
        sink = TeeSink(sink, WebhookSink(config, render=describe))
    return sink


def metered(
    sink: DynamicSink[Any],
    specs: list[str],
    on_fatal: Callable[[], None] | None = None,
    made: list[DynamicSink[Any]] | None = None,
) -> DynamicSink[Any]:
    """``sink`` teed into every ``--sink SPEC``.

    ``on_fatal`` is given to sinks that can fail the run (Kafka); each sink made is
    appended to ``made``, so the runner can ask them how they ended.
    """
    from bpx_flows.connectors.sinks.registry import SinkContext, make_sink

    context = SinkContext(render=describe, on_fatal=on_fatal)
    for spec in specs:
        extra = make_sink(spec, context)
        if made is not None:
            made.append(extra)
        sink = TeeSink(sink, extra)
    return sink
