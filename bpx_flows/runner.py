"""The one way a flow runs: ``Settings`` in, a Bytewax run out (G17).

Every command (``run``, ``book``, ``demo``, ``tail``, ``record``, ``replay``...) ends
here with settings. One process runs ``run.workers`` Bytewax workers (threads);
``run.processes > 1`` makes this process the parent of a local cluster
(``bpx_flows.cluster``). A process of a multi-machine cluster (``process_id`` and
``addresses``) serves its metrics on the base port + its process id.

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
import json
import logging
import os
import select
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from bpx_flows.connectors.backpack.signing import Credentials
from bpx_flows.connectors.backpack.streams import parse_stream, parse_streams
from bpx_flows.connectors.connection import ConnectionConfig
from bpx_flows.connectors.errors import ConfigError
from bpx_flows.connectors.recording import read_header
from bpx_flows.connectors.routing import balanced_routes, live_groups, replay_plan
from bpx_flows.connectors.source import StopSignal
from bpx_flows.flows.keys import Route
from bpx_flows.registry import FLOWS
from bpx_flows.resources import (
    STOP_GRACE_S,
    Endpoint,
    endpoint_for,
    init_recovery,
    recovery_lock,
)
from bpx_flows.settings import Settings, flow_context, history_s, validate

__all__ = [
    "Endpoint",
    "Outcome",
    "Sinks",
    "build_flow",
    "configure_logging",
    "dataflow",
    "endpoint_for",
    "key_function",
    "preflight_for",
    "recovery_lock",
    "run",
    "source_for",
    "stop_on_signals",
]

log = logging.getLogger("bpx_flows.run")

ABORT_GRACE_S = 3.0  # an aborted run (recovery) has nothing left worth waiting for


@dataclasses.dataclass
class Outcome:
    """How a run ended: the exit code and the records counted by kind."""

    code: int
    counts: Counter[str] = dataclasses.field(default_factory=Counter)


# Logging.


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (+ exception)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        entry = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    """Logs to stderr, one line per event, as text or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    chatty = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("websockets", "httpx", "httpcore"):  # a line per request otherwise
        logging.getLogger(name).setLevel(chatty)
    # Progress on long work (replays) shows at the default level too.
    progress = logging.getLogger("bpx_flows.progress")
    progress.setLevel(logging.ERROR if level == "error" else logging.INFO)


# Where records come from.


def source_for(
    settings: Settings,
    endpoint: Endpoint | None,
    owner: dict[str, int] | None = None,
    tap: Any = None,
) -> Source[Any]:
    """The flow's source: a replay of recordings, or live on ``endpoint``.

    Replays keep only the selected symbols (all of them when none is selected).
    """
    from bpx_flows.connectors.source import BackpackSource, ReplaySource, SourceConfig

    src = settings.source
    workers = settings.workers_total
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
    )
    # Each connection group on the worker that owns its symbols' state.
    groups = live_groups(streams, workers, per_connection, owner)
    creds = Credentials.from_env()
    return BackpackSource(streams, config, creds, tap=tap, groups=groups)


def streams_of(settings: Settings) -> list[str]:
    """The stream names a live run of ``settings`` subscribes."""
    return FLOWS[settings.flow].streams(flow_context(settings))


def recorded_symbols(paths: list[str]) -> list[str]:
    """The symbols of the streams named in the recordings' headers."""
    symbols: set[str] = set()
    for path in paths:
        for name in read_header(path).streams:
            with contextlib.suppress(ConfigError):
                symbol = parse_stream(name).symbol
                if symbol is not None:
                    symbols.add(symbol)
    return sorted(symbols)


def key_function(route: dict[str, str]) -> Route | None:
    """``route`` as the ``Route`` of ``flows.keys`` (``None`` when empty)."""
    return (lambda symbol: route.get(symbol, symbol)) if route else None


def routes_for(settings: Settings) -> tuple[dict[str, str], dict[str, int] | None]:
    """Routing keys spreading the symbols evenly over the cluster's workers.

    Returns ``(symbol -> routing key, symbol -> worker)``; empty and ``None`` with
    one worker.
    """
    if settings.workers_total <= 1:
        return {}, None
    symbols = set(settings.symbols)
    if settings.source.kind == "replay" and not symbols:
        symbols = set(recorded_symbols(settings.source.replay))
    return balanced_routes(sorted(symbols), settings.workers_total)


# The dataflow.


@dataclasses.dataclass(frozen=True)
class Sinks:
    """Where a flow's outputs go.

    Attributes:
        out: every record that is not an alert.
        alerts: every alert.
        file: a keyed sink that gets everything as ``("out", record)`` (the
            exactly-once ``--out`` file), or ``None``.
        alerts_file: a keyed sink that gets every alert the same way (``--alerts
            FILE``: one file, whatever the number of workers), or ``None``.
    """

    out: Sink[Any]
    alerts: Sink[Any]
    file: Sink[Any] | None = None
    alerts_file: Sink[Any] | None = None


def build_flow(
    settings: Settings, source: Source[Any], sinks: Sinks, route: Route | None = None
) -> Dataflow:
    """The flow of ``settings`` between ``source`` and ``sinks``.

    ``route`` maps a symbol to the key its state is stored under (``flows.keys``).
    Step ids are fixed per flow, so a recovery directory written by one run resumes
    in the next.
    """
    spec = FLOWS[settings.flow]
    context = flow_context(settings, route)
    flow = Dataflow(spec.name)
    records = op.input("feed", flow, source)
    outputs, alerts = spec.wire(records, context)
    if outputs:
        op.output("out", _merged("all", outputs), sinks.out)
    if alerts:
        all_alerts = _merged("all_alerts", alerts)
        op.output("alerts", all_alerts, sinks.alerts)
        if sinks.alerts_file is not None:
            one = op.key_on("key_for_alerts_file", all_alerts, lambda _alert: "out")
            op.output("alerts_file", one, sinks.alerts_file)
    if sinks.file is not None:
        everything = _merged("everything", outputs + alerts)
        keyed = op.key_on("key_for_file", everything, lambda _record: "out")
        op.output("out_file", keyed, sinks.file)
    return flow


def _merged(step_id: str, streams: list[Stream[Any]]) -> Stream[Any]:
    return streams[0] if len(streams) == 1 else op.merge(step_id, *streams)


def _sinks(settings: Settings, source: Any, counts: Counter[str]) -> Sinks:
    from bpx_flows.console import alert_sink, console_sink, metered

    outputs = settings.outputs
    out = metered(console_sink(counts, quiet=outputs.quiet), outputs.sinks)
    alerts = metered(
        alert_sink(counts, outputs.webhook, outputs.webhook_format),
        outputs.sinks,
    )
    port = settings.metrics.port
    if port is not None:
        if port:
            port += settings.run.process_id or 0  # one port per process
        out, alerts = _serve_metrics(settings, source, port, out, alerts)
    from bpx_flows.connectors.sinks.jsonl import ResumableJsonLinesSink

    record_file = ResumableJsonLinesSink(outputs.file) if outputs.file else None
    alerts_file = ResumableJsonLinesSink(outputs.alerts) if outputs.alerts else None
    return Sinks(out, alerts, record_file, alerts_file)


def _serve_metrics(
    settings: Settings, source: Any, port: int, out: Any, alerts: Any
) -> tuple[Any, Any]:
    from bpx_flows.connectors import metrics
    from bpx_flows.connectors.sinks.tee import TeeSink
    from bpx_flows.connectors.source import BackpackSource
    from bpx_flows.presentation import MetricsSink

    if isinstance(source, BackpackSource):
        metrics.REGISTRY.register(metrics.ConnectionCollector(source.connections))
    bound = metrics.serve_metrics(port, settings.metrics.host)
    print(f"metrics: http://{settings.metrics.host}:{bound}/metrics", flush=True)
    flow = settings.flow
    return TeeSink(out, MetricsSink(flow)), TeeSink(alerts, MetricsSink(flow))


def dataflow(path: str) -> Dataflow:
    """A settings file's flow, for ``python -m bytewax.run``.

    ``python -m bytewax.run "bpx_flows.runner:dataflow('market.toml')"``: the
    same settings, checks, source and sinks as ``bpx-flows run --config``; Bytewax's
    own runner takes the workers and cluster flags (``-w``, ``-i``, ``-a``). The
    built-in simulator, when it is the source, runs for the life of the process.
    """
    from bpx_flows.settings import load_settings

    settings = validate(load_settings(path))
    endpoint = _ENDPOINTS.enter_context(endpoint_for(settings))
    preflight_for(settings, endpoint)
    route, owner = routes_for(settings)
    source = source_for(settings, endpoint, owner)
    sinks = _sinks(settings, source, Counter())
    return build_flow(settings, source, sinks, key_function(route))


_ENDPOINTS = contextlib.ExitStack()  # simulators started for ``dataflow``


# Running.


def run(settings: Settings) -> Outcome:
    """Run the flow of ``settings`` to its end; ``Outcome.code`` is the exit code.

    Raises:
        ConfigError: settings the machine does not allow, an unreachable endpoint,
            unknown markets, a refused key (exit code 2 in the CLI).
    """
    validate(settings)
    if settings.run.processes > 1:
        from bpx_flows.cluster import run_cluster

        return Outcome(run_cluster(settings))
    with (
        recovery_lock(settings),
        endpoint_for(settings) as endpoint,
        _recorder(settings) as tap,
    ):
        preflight_for(settings, endpoint)
        return _run_process(settings, endpoint, tap)


def preflight_for(settings: Settings, endpoint: Endpoint | None) -> None:
    """Check the live streams of ``settings`` against ``endpoint`` (none: replay).

    Raises:
        ConfigError: unknown markets, a missing or refused key, no endpoint.
    """
    if endpoint is None:
        return
    from bpx_flows.connectors.preflight import preflight

    streams = parse_streams(streams_of(settings))
    preflight(streams, endpoint.ws, endpoint.rest, Credentials.from_env())


@contextlib.contextmanager
def _recorder(settings: Settings) -> Iterator[Any]:
    path = settings.source.record
    if not path:
        yield None
        return
    from bpx_flows.connectors.recording import Recorder

    with Recorder(path, streams_of(settings)) as recorder:
        yield recorder
        print(f"recorded {recorder.lines:,} lines to {path}", flush=True)


# Records are many small objects that die young and hold no cycles: Python's
# default generation-0 threshold (700 allocations) runs a collection every few
# frames, and each one walks the young objects the batch in flight still holds.
# Measured in ``make bench``: 20-25 % less CPU per frame at burst rates.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Collect less often while a flow runs (see ``GC_THRESHOLDS``).

    Everything built so far (modules, the dataflow) is moved out of the collector's
    way with ``gc.freeze``; cycles are still collected, in larger rounds.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _run_process(settings: Settings, endpoint: Endpoint | None, tap: Any) -> Outcome:
    from bytewax._bytewax import cli_main  # the runner behind python -m bytewax.run

    route, owner = routes_for(settings)
    source = source_for(settings, endpoint, owner, tap)
    counts: Counter[str] = Counter()
    sinks = _sinks(settings, source, counts)
    flow = build_flow(settings, source, sinks, key_function(route))
    run = settings.run
    recovery = init_recovery(settings, settings.workers_total)
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
    started = time.monotonic()
    tune_gc()
    with stop_on_signals(abort=recovery is not None):
        cli_main(  # type: ignore[no-untyped-call]
            flow,
            workers_per_process=run.workers,
            process_id=run.process_id,
            addresses=run.addresses or None,
            epoch_interval=timedelta(seconds=run.snapshot_every_s),
            recovery_config=recovery,
        )
    failures = getattr(source, "failures", [])
    if failures:
        raise failures[0]
    _summary(counts, time.monotonic() - started, settings)
    if recovery is not None and StopSignal.is_set():
        print(
            f"stopped: resume with the same --recovery-dir ({run.recovery_dir})",
            flush=True,
        )
    return Outcome(0, counts)


def _summary(counts: Counter[str], seconds: float, settings: Settings) -> None:
    total = sum(counts.values())
    who = f" (process {settings.run.process_id})" if settings.run.addresses else ""
    print(
        f"\nsummary{who}: {total:,} records in {seconds:.1f} s "
        f"({total / max(seconds, 1e-9):,.0f}/s)",
        flush=True,
    )
    for kind, n in counts.most_common():
        print(f"  {kind:<34} {n:>10,}")


# Signals.


@contextlib.contextmanager
def stop_on_signals(abort: bool = False) -> Iterator[None]:
    """SIGINT/SIGTERM end the sources, so the flow finishes cleanly.

    With ``abort`` (a recovery directory), the sources abort the run instead of
    ending it, so nothing after the last snapshot is committed. Python runs signal
    handlers only between bytecodes of the main thread, which sits in Bytewax's Rust
    loop (and, while a cluster forms, does not come back): a watcher thread reads
    the signal from a wakeup fd, sets the stop flag, and ends the process itself if
    the run has not ended ``STOP_GRACE_S`` later.
    """
    StopSignal.clear()
    StopSignal.abort_on_stop(abort)
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in signals}
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    for sig in signals:
        signal.signal(sig, lambda *_: StopSignal.set())
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch_signals, args=(read_fd, done), name="bpx-signals", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        done.set()
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(write_fd)  # ends the watcher's read
        watcher.join(timeout=1)
        os.close(read_fd)


def _watch_signals(read_fd: int, done: threading.Event) -> None:
    """Wait for a signal or the run's own end; then bound how long the stop takes.

    A run ends on a signal, on its deadline (``--seconds``) or when its reader left
    (``| head``); in each case the sinks then flush. A sink that cannot deliver (a
    Kafka broker that is down) must not hold the process forever: ``STOP_GRACE_S``
    after the stop began, the process exits with one line and a non-zero code.
    """
    signum = 0
    while not done.is_set():
        ready, _, _ = select.select([read_fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(read_fd, 16)
            except OSError:
                return
            if not data:
                return  # the write end closed: the run is over
            signum = data[0]
            StopSignal.set()
            break
        if StopSignal.is_set() or StopSignal.ending():
            break
    if done.is_set():
        return
    # Before any partition is built (a cluster forming) nothing is in flight.
    aborting = StopSignal.aborting() and signum != 0
    grace_s = ABORT_GRACE_S if aborting else STOP_GRACE_S
    grace_s = grace_s if StopSignal.started() else 0.5
    if done.wait(grace_s):
        return
    if aborting:
        # With recovery a stop is an abort: what counts is the last snapshot, and a
        # process of a cluster whose peer has already gone would wait for it
        # forever. Ending here loses nothing the next run does not write again.
        print(
            "stopped: resume with the same --recovery-dir (state as of the last "
            "snapshot)",
            flush=True,
        )
        os._exit(0)
    try:
        name = signal.Signals(signum).name if signum else "the end of its input"
    except ValueError:
        name = f"signal {signum}"
    print(
        f"error: the run did not stop within {grace_s:g} s of {name} (a sink "
        "that cannot deliver?); exiting without a clean stop",
        file=sys.stderr,
        flush=True,
    )
    os._exit(128 + signum if signum else 1)
