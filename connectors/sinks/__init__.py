"""Where records go: console, files, and (later) Parquet, webhooks and Kafka."""

from bpx_flows.connectors.sinks.jsonl import JsonLinesSink
from bpx_flows.connectors.sinks.stdout import CountingSink, LineSink

__all__ = ["CountingSink", "JsonLinesSink", "LineSink"]
