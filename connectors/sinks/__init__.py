"""Where records go: console, files, and (later) Parquet, webhooks and Kafka."""

from .jsonl import JsonLinesSink
from .stdout import CountingSink, LineSink

__all__ = ["CountingSink", "JsonLinesSink", "LineSink"]
