"""Where a run's records come from: its source, its streams, and how symbols route."""

from __future__ import annotations

import contextlib
from typing import Any

from bytewax.inputs import Source

from bpx_flows.connectors.backpack.signing import Credentials
from bpx_flows.connectors.backpack.streams import parse_stream, parse_streams
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.errors import ConfigError
from bpx_flows.connectors.kafka.lines import topic_header_streams
from bpx_flows.connectors.kafka.placement import partition_of
from bpx_flows.connectors.kafka.spec import KafkaSpec, parse_kafka, topic_partitions
from bpx_flows.connectors.recording import read_header
from bpx_flows.connectors.routing import (
    balanced_routes,
    live_groups,
    part_readers,
    replay_plan,
    routes_to,
)
from bpx_flows.connectors.sources import (
    BackpackSource,
    KafkaReplaySource,
    ReplaySource,
    SourceConfig,
    StopSignal,
    topic_parts,
)
from bpx_flows.flows.keys import Route
from bpx_flows.registry import FLOWS
from bpx_flows.resources import Endpoint
from bpx_flows.settings import Settings, flow_context, history_s, wake_times

__all__ = [
    "kafka_replay",
    "key_function",
    "recorded_streams",
    "recorded_symbols",
    "routes_for",
    "source_for",
    "streams_of",
]


def source_for(
    settings: Settings,
    endpoint: Endpoint | None,
    owner: dict[str, int] | None = None,
    tap: Any = None,
    stop: StopSignal | None = None,
) -> Source[Any]:
    """The flow's source: a replay of recordings, or live on ``endpoint``.

    Replays keep only the selected symbols (all of them when none is selected).
    ``stop`` is the run's stop flag (``None``: the source's own, as ``.stop``).
    """
    src = settings.source
    workers = settings.workers_total
    topic = kafka_replay(settings)
    if topic is not None:
        return KafkaReplaySource(
            topic,
            topic_partitions(topic),
            speed=src.speed or None,
            batch_size=src.batch,
            only=frozenset(settings.symbols) or None,
            progress_every_s=settings.log.progress_every_s,
            watermarks=FLOWS[settings.flow].clock,
            follow=src.follow,
            seconds=src.seconds,
            stop=stop,
        )
    if src.kind == "replay":
        only = frozenset(settings.symbols) or None
        symbols = sorted(only) if only else list(owner or recorded_symbols(src.replay))
        plan = replay_plan(src.replay, symbols, workers, owner)
        return ReplaySource(
            src.replay,
            speed=src.speed or None,
            batch_size=src.batch,
            plan=plan,
            only=only,
            progress_every_s=settings.log.progress_every_s,
            watermarks=FLOWS[settings.flow].clock,
            stop=stop,
        )
    assert endpoint is not None
    streams = parse_streams(streams_of(settings))
    # At least one connection group per worker of the cluster (when there are
    # enough streams), so every worker decodes a share of the input.
    per_connection = max(1, min(src.per_connection, -(-len(streams) // workers)))
    config = SourceConfig(
        connection=ConnectionConfig(
            ws_url=endpoint.ws,
            compression=src.compression,
            backfill_trades=src.trade_backfill,
            kline_backfill_s=history_s(settings),
        ),
        rest_url=endpoint.rest,
        streams_per_connection=per_connection,
        run_for_s=src.seconds,
        end_on_fatal=True,
        watermarks=FLOWS[settings.flow].clock,
        wakes=wake_times(settings),
    )
    # Each connection group on the worker that owns its symbols' state.
    groups = live_groups(streams, workers, per_connection, owner)
    creds = Credentials.from_env()
    return BackpackSource(streams, config, creds, tap=tap, groups=groups, stop=stop)


def streams_of(settings: Settings) -> list[str]:
    """The stream names a live run of ``settings`` subscribes."""
    return FLOWS[settings.flow].streams(flow_context(settings))


def kafka_replay(settings: Settings) -> KafkaSpec | None:
    """The topic a replay reads (``--replay kafka:...``), if it reads one."""
    src = settings.source
    if src.kind == "replay" and src.replay and src.replay[0].startswith("kafka:"):
        return parse_kafka(src.replay[0].removeprefix("kafka:"))
    return None


def recorded_streams(paths: list[str]) -> list[str]:
    """The streams the recordings' headers name.

    A topic's header is the first line of its default partition (none: no streams
    known ahead).
    """
    names: list[str] = []
    for path in paths:
        if path.startswith("kafka:"):
            names += (
                topic_header_streams(parse_kafka(path.removeprefix("kafka:"))) or []
            )
        else:
            names += read_header(path).streams
    return names


def recorded_symbols(paths: list[str]) -> list[str]:
    """The symbols of the streams the recordings' headers name.

    None known: the run reads every market the recordings hold.
    """
    symbols: set[str] = set()
    for name in recorded_streams(paths):
        with contextlib.suppress(ConfigError):
            symbol = parse_stream(name).symbol
            if symbol is not None:
                symbols.add(symbol)
    return sorted(symbols)


class _Routes(dict[str, str]):
    """Symbol -> routing key; a symbol not in it is its own key (not stored)."""

    __slots__ = ()

    def __missing__(self, symbol: str) -> str:
        return symbol


def key_function(route: dict[str, str]) -> Route | None:
    """``route`` as the ``Route`` of ``flows.keys`` (``None`` when empty).

    A dict's own lookup, called from C: every keyed record of every part calls it
    (a lambda around ``get`` cost half as much again).
    """
    return _Routes(route).__getitem__ if route else None


def routes_for(settings: Settings) -> tuple[dict[str, str], dict[str, int] | None]:
    """Routing keys spreading the symbols evenly over the cluster's workers.

    Returns ``(symbol -> routing key, symbol -> worker)``; empty and ``None`` with
    one worker. A topic's partitions are spread by Bytewax, not by us: each market
    then goes to the worker that reads its partition.
    """
    workers = settings.workers_total
    if workers <= 1:
        return {}, None
    symbols = set(settings.symbols)
    if settings.source.kind == "replay" and not symbols:
        symbols = set(recorded_symbols(settings.source.replay))
    topic = kafka_replay(settings)
    if topic is not None:
        parts = topic_parts(topic, topic_partitions(topic))
        readers = part_readers(parts, workers)
        owner = {s: readers[parts[partition_of(s, len(parts))]] for s in symbols}
        return routes_to(owner, workers), owner
    return balanced_routes(sorted(symbols), workers)
