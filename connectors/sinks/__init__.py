"""Where records go: console, files, and (later) Parquet, webhooks and Kafka."""

from connectors.sinks.jsonl import JsonLinesSink
from connectors.sinks.stdout import CountingSink, LineSink

__all__ = ["CountingSink", "JsonLinesSink", "LineSink"]
