"""Bytewax input sources: live (the exchange), replay (a recording), and their stop.

- ``live.BackpackSource``: a worker's WebSocket connections, one partition per worker;
- ``replay.ReplaySource``: recording files, one partition per file (and shard);
- ``stop.StopSignal``: the flag a run's sources watch, passed in by the runner.
"""

from ..routing import partition
from .live import BackpackSource, SourceConfig
from .replay import KafkaReplaySource, ReplaySource, ReplayState, topic_parts
from .stop import StopSignal

__all__ = [
    "BackpackSource",
    "KafkaReplaySource",
    "ReplaySource",
    "ReplayState",
    "SourceConfig",
    "StopSignal",
    "partition",
    "topic_parts",
]
