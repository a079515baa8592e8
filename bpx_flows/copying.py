"""``record --replay FILE... --out kafka:BROKERS/TOPIC``: recordings into a topic.

The lines go as ``record --out kafka:`` sends them live (``connectors.kafka``), so a
flow replays the topic exactly as it replays the files. No Bytewax: a copy is one
producer reading files in order. Ctrl-C stops between blocks; what was handed to
the producer is still delivered (or counted as not delivered) before the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from bpx_flows.connectors.errors import ConfigError
from bpx_flows.connectors.kafka.recorder import KafkaRecorder, copy_recording
from bpx_flows.connectors.kafka.spec import ensure_topic, parse_kafka
from bpx_flows.connectors.recording import read_header
from bpx_flows.connectors.sources import StopSignal
from bpx_flows.signals import stop_on_signals

__all__ = ["copy_to_topic"]


def copy_to_topic(files: Sequence[str], out: str, progress_every_s: float = 5.0) -> int:
    """Copy recordings into the topic ``out`` names; the exit code.

    Raises:
        ConfigError: ``out`` is not a ``kafka:`` spec, a file is not a recording,
            no broker answers, lines were not delivered.
    """
    if not out.startswith("kafka:"):
        msg = (
            "record --replay copies recordings into a topic: --out "
            "kafka:BROKERS/TOPIC (a recording file is a copy already)"
        )
        raise ConfigError(msg)
    spec = parse_kafka(out.removeprefix("kafka:"))
    if "{kind}" in spec.topic:
        msg = "{kind} names topics of records, not of the raw feed"
        raise ConfigError(msg)
    for path in files:
        read_header(path)  # exists, and is a recording
    partitions = ensure_topic(spec)
    stop = StopSignal()
    started = time.monotonic()
    with stop_on_signals(stop), KafkaRecorder(spec, None, partitions, stop.set) as tap:
        lines = copy_recording(files, tap, progress_every_s, stop.is_set)
    if tap.failures:
        raise tap.failures[0]
    seconds = time.monotonic() - started
    print(
        f"copied {lines:,} lines ({tap.delivered:,} messages) to {spec.topic} at "
        f"{spec.where} ({partitions} partitions) in {seconds:.1f} s"
        + (" (stopped early)" if stop.is_set() else ""),
        file=sys.stderr,
    )
    return 0
