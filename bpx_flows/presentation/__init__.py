"""Presentation: what records look like to people (console lines) and to Prometheus.

A layer of its own, above ``operators`` and ``connectors`` (it imports both; neither
imports it) and below the program and the flows. One dispatch per record kind:
``functools.singledispatch`` tables, never ``isinstance`` chains.
"""

from bpx_flows.presentation.lines import describe, integrity_detail, summary_key
from bpx_flows.presentation.metrics import MetricsSink, observe

__all__ = ["MetricsSink", "describe", "integrity_detail", "observe", "summary_key"]
