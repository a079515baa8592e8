"""The one way a flow runs: ``Settings`` in, a Bytewax run out (G17).

Every command (``run``, ``book``, ``demo``, ``tail``, ``record``, ``replay``...) ends
here with settings. One process runs ``run.workers`` Bytewax workers (threads);
``run.processes > 1`` makes this process the parent of a local cluster
(``bpx_flows.cluster``). A process of a multi-machine cluster (``process_id`` and
``addresses``) serves its metrics on the base port + its process id.

This module orchestrates only: the source (``inputs``), the wiring (``wiring``),
the sinks (``console``, ``serving``), signals (``signals``), the collector
(``memory``) and the start-up checks (``resources``) each live in a module of their
own.

Keyed steps route each symbol to one worker of the whole cluster, so a symbol's books,
candles, bursts and account state live on exactly one worker; live connection groups
and replay shards are read on the worker that owns their symbols
(``connectors.routing``).

Stopping: SIGINT/SIGTERM end the sources and the run finishes cleanly (sinks
flushed). With a recovery directory the run is *aborted* instead: nothing after the
last snapshot is committed, so a resumed run writes exactly what an uninterrupted one
would (open windows are not flushed at the stop). A run that has not ended 10 s after
the signal (a cluster still forming, a sink that cannot deliver) exits hard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from bytewax.inputs import Source

from bpx_flows.connectors.backpack.signing import Credentials
from bpx_flows.connectors.backpack.streams import parse_streams
from bpx_flows.connectors.errors import ConfigError
from bpx_flows.connectors.kafka.lines import topic_header_streams
from bpx_flows.connectors.kafka.recorder import KafkaRecorder
from bpx_flows.connectors.kafka.spec import (
    KafkaSpec,
    check_brokers,
    ensure_topic,
    parse_kafka,
    topic_partitions,
)
from bpx_flows.connectors.preflight import preflight
from bpx_flows.connectors.recording import Recorder
from bpx_flows.connectors.sinks.jsonl import ResumableJsonLinesSink
from bpx_flows.connectors.sources import StopSignal
from bpx_flows.console import alert_sink, console_sink, metered
from bpx_flows.inputs import (
    kafka_replay,
    key_function,
    routes_for,
    source_for,
    streams_of,
)
from bpx_flows.memory import tune_gc
from bpx_flows.resources import Endpoint, endpoint_for, init_recovery, recovery_lock
from bpx_flows.serving import with_metrics
from bpx_flows.settings import Settings, validate
from bpx_flows.signals import stop_on_signals
from bpx_flows.wiring import Sinks, build_flow

__all__ = ["Outcome", "View", "preflight_for", "run", "sinks_for"]

log = logging.getLogger("bpx_flows.run")


@dataclasses.dataclass
class Outcome:
    """How a run ended: the exit code and the records counted by kind."""

    code: int
    counts: Counter[str] = dataclasses.field(default_factory=Counter)


@dataclasses.dataclass
class View:
    """A screen that shows a run instead of the console (``bpx-flows top``).

    Attributes:
        sink: takes every output and alert, in place of the console lines; it must
            be quick (a screen keeps the latest state and draws on its own time).
        stop: the screen ends the run with it (its own quit key, not signals).
        on_source: given the run's source once built (the feed's health).
    """

    sink: Any
    stop: StopSignal
    on_source: Any = None


def run(settings: Settings, view: View | None = None) -> Outcome:
    """Run the flow of ``settings`` to its end; ``Outcome.code`` is the exit code.

    With ``view`` the run prints nothing: the view shows it (and may run it from
    a thread other than the main one).

    Raises:
        ConfigError: settings the machine does not allow, an unreachable endpoint,
            unknown markets, a refused key (exit code 2 in the CLI).
    """
    validate(settings)
    _fresh_files(settings)
    if settings.run.processes > 1:
        from bpx_flows.cluster import run_cluster  # the parent of a local cluster

        return Outcome(run_cluster(settings))
    stop = (
        view.stop
        if view is not None
        else StopSignal(abort_on_stop=settings.run.recovery_dir is not None)
    )
    with (
        recovery_lock(settings),
        endpoint_for(settings) as endpoint,
        _recorder(settings, stop) as tap,
    ):
        preflight_for(settings, endpoint)
        if endpoint is not None and settings.source.kind == "simulator" and not view:
            # Only once the checks passed: a refused run says one line, no more.
            note = f"simulator: {endpoint.ws} (--live for the exchange)"
            print(note, file=sys.stderr, flush=True)
        return _run_process(settings, endpoint, tap, stop, view)


def _fresh_files(settings: Settings) -> None:
    """A fresh run starts ``--out`` and ``--alerts`` empty (recovery resumes them).

    Created here, before any worker: a run that writes nothing leaves an empty
    file, not the last run's records. A process of a multi-machine cluster leaves
    its files alone (one worker of the cluster writes them).
    """
    if settings.run.recovery_dir is not None or settings.run.process_id is not None:
        return  # resumed exactly once; or a process of a cluster (its parent did it)
    for path in (settings.outputs.file, settings.outputs.alerts):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(b"")


def preflight_for(settings: Settings, endpoint: Endpoint | None) -> None:
    """Check what the run reads and writes before it starts.

    The live streams of ``settings`` against ``endpoint`` (none: a replay), and the
    brokers of every Kafka sink.

    Raises:
        ConfigError: unknown markets, a missing or refused key, no endpoint, a
            Kafka broker that does not answer.
    """
    for spec in settings.outputs.sinks:
        name, _, argument = spec.partition(":")
        if name == "kafka":
            check_brokers(parse_kafka(argument))
    topic = kafka_replay(settings)
    if topic is not None:
        _check_topic(topic, settings.source.follow)
    if endpoint is None:
        return
    streams = parse_streams(streams_of(settings))
    preflight(streams, endpoint.ws, endpoint.rest, Credentials.from_env())


def _check_topic(spec: KafkaSpec, follow: bool) -> None:
    """A topic to replay exists and, unless followed, holds a recording."""
    if not topic_partitions(spec):
        msg = f"kafka: no topic {spec.topic!r} at {spec.where}"
        raise ConfigError(msg)
    if not follow and topic_header_streams(spec) is None:
        msg = (
            f"kafka: topic {spec.topic!r} at {spec.where} is empty: nothing to replay "
            f"(fill it with: bpx-flows record --out kafka:{spec.where}/{spec.topic} "
            "STREAM..., or add --follow to wait for it)"
        )
        raise ConfigError(msg)


def sinks_for(
    settings: Settings,
    source: Source[Any],
    counts: Counter[str],
    stop: StopSignal,
    made: list[Any] | None = None,
    view: View | None = None,
) -> Sinks:
    """The sinks ``settings`` ask for: console, ``--sink``s, files, metrics.

    ``counts`` collects the summary's counts; ``stop`` ends the run when the reader
    of stdout leaves (``| head``) or a sink cannot deliver; every ``--sink`` made is
    appended to ``made`` (their ``failures`` are the run's). A ``view`` takes the
    console's place (outputs and alerts).
    """
    outputs = settings.outputs
    console = (
        view.sink
        if view is not None
        else console_sink(counts, quiet=outputs.quiet, on_reader_gone=stop.set)
    )
    out = metered(console, outputs.sinks, stop.set, made)
    shown = (
        view.sink
        if view is not None
        else alert_sink(counts, outputs.webhook, outputs.webhook_format, stop.set)
    )
    alerts = metered(shown, outputs.sinks, stop.set, made)
    port = settings.metrics.port
    if port is not None:
        if port:
            port += settings.run.process_id or 0  # one port per process
        out, alerts = with_metrics(settings, source, port, out, alerts)
    record_file = ResumableJsonLinesSink(outputs.file) if outputs.file else None
    alerts_file = ResumableJsonLinesSink(outputs.alerts) if outputs.alerts else None
    return Sinks(out, alerts, record_file, alerts_file)


@contextlib.contextmanager
def _recorder(settings: Settings, stop: StopSignal) -> Iterator[Any]:
    path = settings.source.record
    if not path:
        yield None
        return
    if path.startswith("kafka:"):
        spec = parse_kafka(path.removeprefix("kafka:"))
        partitions = ensure_topic(spec)
        with KafkaRecorder(spec, streams_of(settings), partitions, stop.set) as tap:
            yield tap
        if tap.failures:
            raise tap.failures[0]
        where = f"{spec.topic} at {spec.where} ({partitions} partitions)"
        print(f"recorded {tap.lines:,} lines to {where}", file=sys.stderr)
        return
    with Recorder(path, streams_of(settings)) as recorder:
        yield recorder
        print(f"recorded {recorder.lines:,} lines to {path}", file=sys.stderr)


def _run_process(
    settings: Settings,
    endpoint: Endpoint | None,
    tap: Any,
    stop: StopSignal,
    view: View | None = None,
) -> Outcome:
    from bytewax._bytewax import cli_main  # the runner behind python -m bytewax.run

    run = settings.run
    route, owner = routes_for(settings)
    source = source_for(settings, endpoint, owner, tap, stop)
    counts: Counter[str] = Counter()
    made: list[Any] = []
    sinks = sinks_for(settings, source, counts, stop, made, view)
    if view is not None and view.on_source is not None:
        view.on_source(source)
    recovery = init_recovery(settings, settings.workers_total)
    # Without a recovery directory no snapshot is ever read: none is taken.
    snapshots = recovery is not None
    flow = build_flow(settings, source, sinks, key_function(route), snapshots=snapshots)
    _announce(settings, recovery is not None)
    started = time.monotonic()
    tune_gc()
    forming = _stdout_to_stderr_until_formed(stop) if run.addresses else None
    # A view runs the flow off the main thread, where no signal handler can be set.
    signals = stop_on_signals(stop) if view is None else contextlib.nullcontext()
    with signals, forming or contextlib.nullcontext():
        cli_main(  # type: ignore[no-untyped-call]
            flow,
            workers_per_process=run.workers,
            process_id=run.process_id,
            addresses=run.addresses or None,
            epoch_interval=timedelta(seconds=run.snapshot_every_s),
            recovery_config=recovery,
        )
    failures = [*getattr(source, "failures", [])]
    for sink in made:
        failures += getattr(sink, "failures", [])
    if failures:
        raise failures[0]
    if view is None:
        _summary(counts, time.monotonic() - started, settings)
    if recovery is not None and stop.is_set():
        print(
            f"stopped: resume with the same --recovery-dir ({run.recovery_dir})",
            file=sys.stderr,
            flush=True,
        )
    return Outcome(0, counts)


@contextlib.contextmanager
def _stdout_to_stderr_until_formed(stop: StopSignal) -> Iterator[None]:
    """Bytewax's lines while a cluster forms go to stderr: stdout is for records.

    Bytewax prints its connection retries on stdout (``worker 1: error connecting
    to worker 0 ... retrying``). Records start once a source partition is built
    (``stop.started``), and stdout is itself again from then on.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    restored = threading.Event()

    def restore() -> None:
        while not stop.started() and not restored.is_set():
            time.sleep(0.01)
        if not restored.is_set():
            restored.set()
            os.dup2(saved, 1)

    watcher = threading.Thread(target=restore, name="bpx-stdout", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        if not restored.is_set():
            restored.set()
            os.dup2(saved, 1)
        watcher.join(timeout=1)
        os.close(saved)


def _announce(settings: Settings, recovery: bool) -> None:
    run = settings.run
    process = (
        f"process {run.process_id} of {len(run.addresses)}, " if run.addresses else ""
    )
    log.info(
        "running %s: %s%d worker(s), source %s%s",
        settings.flow,
        process,
        run.workers,
        settings.source.kind,
        f", recovery in {run.recovery_dir}" if recovery else "",
    )
    if run.workers > 1:
        # Measured: market on 2 threads runs at 0.6-0.8x one (docs/benchmarks.md).
        log.info(
            "the %d workers of this process share one Python interpreter lock: "
            "for more CPU, run processes (--processes N, or --process-id/--addresses)",
            run.workers,
        )


def _summary(counts: Counter[str], seconds: float, settings: Settings) -> None:
    """Records per kind and the rate, on stderr: stdout carries records only."""
    total = sum(counts.values())
    who = f" (process {settings.run.process_id})" if settings.run.addresses else ""
    lines = [
        f"\nsummary{who}: {total:,} records in {seconds:.1f} s "
        f"({total / max(seconds, 1e-9):,.0f}/s)",
        *(f"  {kind:<34} {n:>10,}" for kind, n in counts.most_common()),
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
