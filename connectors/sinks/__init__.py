"""Where records go: console, files, and (later) Parquet, webhooks and Kafka."""

from connectors.sinks.stdout import CountingSink, LineSink

__all__ = ["CountingSink", "LineSink"]
