"""The metrics a run serves: one Prometheus endpoint per process."""

from __future__ import annotations

import sys
from typing import Any

from bpx_flows.connectors import metrics
from bpx_flows.connectors.sinks.tee import TeeSink
from bpx_flows.connectors.sources import BackpackSource
from bpx_flows.presentation import MetricsSink
from bpx_flows.settings import Settings

__all__ = ["with_metrics"]


def with_metrics(
    settings: Settings, source: Any, port: int, out: Any, alerts: Any
) -> tuple[Any, Any]:
    """``out`` and ``alerts`` teed into the metrics, served on ``port`` (0: any).

    A live source's connections are collected too (frames, reconnects, backlog).
    """
    if isinstance(source, BackpackSource):
        metrics.REGISTRY.register(metrics.ConnectionCollector(source.connections))
    bound = metrics.serve_metrics(port, settings.metrics.host)
    where = f"http://{settings.metrics.host}:{bound}/metrics"
    print(f"metrics: {where}", file=sys.stderr, flush=True)
    flow = settings.flow
    return TeeSink(out, MetricsSink(flow)), TeeSink(alerts, MetricsSink(flow))
