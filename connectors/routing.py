"""Where Bytewax puts keys and partitions, so a symbol is read where its state lives.

Bytewax routes each key of a stateful step to a worker by a hash of the key, and
assigns the partitions of a ``FixedPartitionedSource`` to workers by their order.
Neither is part of its API, so ``probe`` asks Bytewax itself: a tiny dataflow on the
same number of workers reports which worker got each key and each partition name. A
source whose partition for worker ``w`` reads only the symbols routed to ``w`` then
feeds every keyed step without sending a record to another worker (or process).

The answer depends only on the names and the total number of workers of the cluster,
so every process of a cluster computes the same one locally.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from .backpack.streams import StreamName
from .errors import ConfigError

__all__ = [
    "Routing",
    "ShardPlan",
    "balanced_routes",
    "live_groups",
    "part_readers",
    "partition",
    "probe",
    "replay_plan",
    "routes_to",
]


class _NamePart(StatefulSourcePartition[str, None]):
    def __init__(self, name: str) -> None:
        self._name: str | None = name

    def next_batch(self) -> list[str]:
        if self._name is None:
            raise StopIteration
        name, self._name = self._name, None
        return [name]

    def snapshot(self) -> None:
        return None


class _Names(FixedPartitionedSource[str, None]):
    def __init__(self, names: list[str]) -> None:
        self._names = names

    def list_parts(self) -> list[str]:
        return self._names

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _NamePart:
        return _NamePart(for_part)


class _WhereSink(DynamicSink[Any]):
    def __init__(self, found: dict[str, int]) -> None:
        self._found = found

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[Any]:
        found = self._found

        class _Part(StatelessSinkPartition[Any]):
            def write_batch(self, items: list[Any]) -> None:
                for item in items:
                    found[item if isinstance(item, str) else item[0]] = worker_index

        return _Part()


class Routing:
    """Which worker owns each key, and which worker reads each partition name."""

    def __init__(self, keys: dict[str, int], parts: dict[str, int]) -> None:
        self.keys = keys
        self.parts = parts


@functools.lru_cache(maxsize=16)
def probe(keys: tuple[str, ...], parts: tuple[str, ...], workers: int) -> Routing:
    """Run a probe dataflow on ``workers`` workers in this process."""
    from bytewax._bytewax import cli_main

    found_keys: dict[str, int] = {}
    found_parts: dict[str, int] = {}
    flow = Dataflow("bpx_routing_probe")
    keyed = op.input("keys", flow, _Names(list(keys)))
    owned = op.stateful_map(
        "owner", op.key_on("key", keyed, lambda k: k), lambda state, v: (state, v)
    )
    op.output("key_owners", owned, _WhereSink(found_keys))
    names = op.input("parts", flow, _Names(list(parts)))
    op.output("part_readers", names, _WhereSink(found_parts))
    cli_main(  # type: ignore[no-untyped-call]
        flow, workers_per_process=workers, epoch_interval=timedelta(seconds=1)
    )
    return Routing(found_keys, found_parts)


class ShardPlan:
    """Partitions of a sharded replay: which file each reads, and which symbols.

    ``parts`` maps a partition name to ``(file, symbols, default)``: the partition
    reads ``file`` and keeps the lines of ``symbols``; the ``default`` one of each file
    also keeps lines of no symbol (``liquidation``) and of symbols nobody owns.
    """

    def __init__(self, parts: dict[str, tuple[str, frozenset[str], bool]]) -> None:
        self.parts = parts


def balanced_routes(
    symbols: list[str], workers: int
) -> tuple[dict[str, str], dict[str, int]]:
    """A routing key per symbol that spreads the symbols evenly over the workers.

    Bytewax hashes keys to workers, so 8 symbols may split 5/3 or 6/2 on 2 workers.
    Each symbol gets the first of ``symbol``, ``symbol#1``, ``symbol#2``... that lands
    on the least loaded worker (asked of Bytewax in one probe). Returns
    ``(symbol -> routing key, symbol -> worker)``.
    """
    names = sorted(set(symbols))
    if workers <= 1:
        return {s: s for s in names}, dict.fromkeys(names, 0)
    salts = range(4 * workers)
    candidates = [_salted(s, k) for s in names for k in salts]
    owners = probe(tuple(sorted(candidates)), (), workers).keys
    load = [0] * workers
    route: dict[str, str] = {}
    owner: dict[str, int] = {}
    for symbol in names:
        options: dict[int, str] = {}
        for k in salts:  # the lowest salt reaching each worker
            options.setdefault(owners[_salted(symbol, k)], _salted(symbol, k))
        worker = min(options, key=lambda w: (load[w], w))
        route[symbol], owner[symbol] = options[worker], worker
        load[worker] += 1
    return route, owner


def routes_to(owner: dict[str, int], workers: int) -> dict[str, str]:
    """A routing key per symbol that Bytewax sends to the worker ``owner`` names.

    For a source whose partitions are not ours to shape (a Kafka topic): each
    market's state goes to the worker that reads its partition, so keyed steps send
    nothing across workers or processes. A symbol no salt brings to its worker
    (not seen with 8 salts per worker) keeps its own name.
    """
    if workers <= 1:
        return {s: s for s in owner}
    salts = range(8 * workers)
    candidates = [_salted(s, k) for s in sorted(owner) for k in salts]
    landed = probe(tuple(sorted(candidates)), (), workers).keys
    route: dict[str, str] = {}
    for symbol, worker in owner.items():
        keys = (_salted(symbol, k) for k in salts)
        route[symbol] = next((k for k in keys if landed[k] == worker), symbol)
    return route


def part_readers(names: list[str], workers: int) -> dict[str, int]:
    """Which worker Bytewax gives each partition name of a source."""
    if workers <= 1:
        return dict.fromkeys(names, 0)
    return probe((), tuple(names), workers).parts


def _salted(symbol: str, salt: int) -> str:
    return symbol if salt == 0 else f"{symbol}#{salt}"


def replay_plan(
    paths: list[str],
    symbols: list[str],
    workers: int,
    owner: dict[str, int] | None = None,
) -> ShardPlan | None:
    """One partition per (file, worker), each reading the symbols its worker owns.

    ``owner`` (symbol -> worker, e.g. from ``balanced_routes``) defaults to where
    Bytewax hashes the symbol itself. ``None`` when sharding cannot help (one worker)
    or Bytewax does not give each worker exactly one partition of every file (then
    each file is one partition).
    """
    if workers <= 1 or not symbols:
        return None
    names = [
        f"file-{n:03d}-{Path(path).name}-w{w:03d}"
        for n, path in enumerate(paths)
        for w in range(workers)
    ]
    routing = probe(tuple(sorted(set(symbols))), tuple(names), workers)
    owners = owner if owner is not None else routing.keys
    owned: dict[int, set[str]] = {w: set() for w in range(workers)}
    for symbol in set(symbols):
        owned[owners[symbol]].add(symbol)
    parts: dict[str, tuple[str, frozenset[str], bool]] = {}
    for n, path in enumerate(paths):
        mine = names[n * workers : (n + 1) * workers]
        readers = [routing.parts[name] for name in mine]
        if sorted(readers) != list(range(workers)):
            return None
        for index, name in enumerate(mine):
            parts[name] = (str(path), frozenset(owned[readers[index]]), index == 0)
    return ShardPlan(parts)


def live_groups(
    streams: list[StreamName],
    workers: int,
    per_connection: int,
    owner: dict[str, int] | None = None,
) -> dict[int, dict[str, list[StreamName]]]:
    """The connections of each worker, each carrying streams of symbols it owns.

    A worker's streams (those of the symbols it owns; all-markets streams such as
    ``liquidation`` go to the first worker) are cut into connection groups of at most
    ``per_connection``, named ``conn-<k>-<worker>``; a worker with no streams gets
    none. ``owner`` (symbol -> worker) defaults to where Bytewax hashes the symbol.
    One worker: ``partition`` of the streams.
    """
    if workers <= 1:
        return {0: partition(streams, per_connection)}
    symbols = sorted({s.symbol for s in streams if s.symbol is not None})
    first: dict[str, int] = {}
    if owner is not None:
        first = owner
    elif symbols:
        first = probe(tuple(symbols), (), workers).keys
    mine: dict[int, list[StreamName]] = {w: [] for w in range(workers)}
    # A symbol's streams side by side, so they tend to share one connection.
    for stream in sorted(streams, key=lambda s: (s.symbol or "", str(s))):
        reader = first.get(stream.symbol, 0) if stream.symbol is not None else 0
        mine[reader].append(stream)
    return {
        w: {
            f"conn-{k:03d}-{w:03d}": owned[i : i + per_connection]
            for k, i in enumerate(range(0, len(owned), per_connection))
        }
        for w, owned in mine.items()
    }


def partition(
    streams: Sequence[StreamName], per_connection: int
) -> dict[str, list[StreamName]]:
    """Split streams into connection groups with stable keys (``conn-000``...).

    The order is the sorted stream names, so the same list always gives the same
    groups, across workers, processes and restarts.
    """
    if per_connection < 1:
        msg = f"streams per connection must be >= 1, got {per_connection}"
        raise ConfigError(msg)
    ordered = sorted(streams, key=str)
    groups = [
        ordered[i : i + per_connection] for i in range(0, len(ordered), per_connection)
    ]
    return {f"conn-{n:03d}": group for n, group in enumerate(groups)}
