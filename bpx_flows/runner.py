"""``bpx-flows run``: a flow from ``Settings`` on Bytewax, in one process or a cluster.

One process runs ``workers`` Bytewax workers (threads). ``processes > 1`` makes this
process a parent: it starts the built-in simulator if the source is the simulator
(so every process reads the same exchange), initialises the recovery directory, and
starts one child per process with ``process_id``/``addresses`` set, forwarding
Ctrl-C/SIGTERM and returning the worst exit code. A child (or a process of a
multi-machine cluster started by hand with ``--process-id/--addresses``) serves its
metrics on the base port + its process id.

Keyed steps route each symbol to one worker of the whole cluster, so a symbol's books,
candles, bursts and account state live on exactly one worker; live connection groups
(``conn-000``...) and replay files are spread over the workers by Bytewax.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from bytewax.inputs import Source

from bpx_flows.connectors.backpack.signing import SECRET_ENV, Credentials
from bpx_flows.connectors.backpack.streams import parse_streams
from bpx_flows.connectors.connection import DEFAULT_WS_URL, ConnectionConfig
from bpx_flows.connectors.rest import DEFAULT_REST_URL
from bpx_flows.connectors.routing import balanced_routes, live_groups, replay_plan
from bpx_flows.settings import Settings, merge_overrides

__all__ = [
    "Endpoint",
    "configure_logging",
    "endpoint_for",
    "free_ports",
    "key_function",
    "routes_for",
    "run",
    "source_for",
]

log = logging.getLogger("bpx_flows.run")

_MAX_PER_CONNECTION = 50


class Endpoint(msgspec.Struct, frozen=True):
    """A WebSocket + REST pair to read from."""

    ws: str
    rest: str


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


# Sources.


def source_for(
    settings: Settings,
    endpoint: Endpoint | None,
    owner: dict[str, int] | None = None,
) -> Source[Any]:
    """The flow's source: a replay, or a live source on ``endpoint`` (or the settings').

    Raises:
        ConfigError: bad stream names, private streams without a key.
    """
    from bpx_flows.connectors.source import BackpackSource, ReplaySource, SourceConfig
    from bpx_flows.registry import streams_for

    src = settings.source
    if src.kind == "replay":
        workers = settings.run.workers * max(len(settings.run.addresses), 1)
        # The routing already names every symbol; read the headers only without it.
        symbols = list(owner) if owner else _recorded_symbols(src.replay)
        plan = replay_plan(src.replay, symbols, workers, owner)
        return ReplaySource(
            src.replay, speed=src.speed or None, batch_size=src.batch, plan=plan
        )
    if endpoint is None:
        endpoint = _fixed_endpoint(settings)
    streams = parse_streams(streams_for(settings))
    # At least one connection group per worker of the cluster (when there are
    # enough streams), so every worker decodes a share of the input.
    workers = settings.run.workers * max(len(settings.run.addresses), 1)
    per_connection = max(1, min(_MAX_PER_CONNECTION, -(-len(streams) // workers)))
    config = SourceConfig(
        connection=ConnectionConfig(ws_url=endpoint.ws),
        rest_url=endpoint.rest,
        streams_per_connection=per_connection,
        run_for_s=src.seconds,
        end_on_fatal=True,
    )
    # Each connection group on the worker that owns its symbols' state.
    groups = live_groups(streams, workers, per_connection, owner)
    return BackpackSource(streams, config, Credentials.from_env(), groups=groups)


def _recorded_symbols(paths: list[str]) -> list[str]:
    """The symbols of the streams named in the recordings' headers."""
    from bpx_flows.connectors.backpack.streams import parse_stream
    from bpx_flows.connectors.recording import iter_lines

    symbols: set[str] = set()
    for path in paths:
        header = msgspec.json.decode(next(iter_lines(path), b"{}"))
        for name in header.get("streams", []) if isinstance(header, dict) else []:
            symbol = parse_stream(name).symbol
            if symbol is not None:
                symbols.add(symbol)
    return sorted(symbols)


def _fixed_endpoint(settings: Settings) -> Endpoint:
    src = settings.source
    if src.kind == "live":
        return Endpoint(DEFAULT_WS_URL, DEFAULT_REST_URL)
    if src.kind == "endpoint" and src.ws and src.rest:
        return Endpoint(src.ws, src.rest)
    msg = "the simulator source is started by run(); use source_for inside it"
    raise RuntimeError(msg)


@contextlib.contextmanager
def endpoint_for(settings: Settings) -> Iterator[Endpoint | None]:
    """The endpoint to read from; starts the built-in simulator when asked for."""
    kind = settings.source.kind
    if kind == "replay":
        yield None
        return
    if kind != "simulator":
        yield _fixed_endpoint(settings)
        return
    import base64

    from bpx_flows.connectors.sim import ServerConfig, SimConfig, SimServer, SimThread

    creds = Credentials.from_env()
    if creds is None:
        # A throwaway key for the local simulator's account, in the environment so
        # this process and the processes of a local cluster sign with it.
        os.environ[SECRET_ENV] = base64.b64encode(os.urandom(32)).decode()
        creds = Credentials.from_env()
        assert creds is not None
    server = SimServer(SimConfig(), ServerConfig(account_key=creds.public_key))
    with SimThread(server):
        print(f"simulator: {server.ws_url} (--live for the exchange)", flush=True)
        yield Endpoint(server.ws_url, server.rest_url)


# Running.


def run(settings: Settings) -> int:
    """Run the flow of ``settings``; returns the exit code."""
    if settings.run.processes > 1:
        return _run_cluster(settings)
    with endpoint_for(settings) as endpoint:
        if endpoint is not None and settings.source.kind != "simulator":
            from bpx_flows.connectors.preflight import preflight
            from bpx_flows.registry import streams_for

            streams = parse_streams(streams_for(settings))
            preflight(streams, endpoint.ws, endpoint.rest, Credentials.from_env())
        return _run_process(settings, endpoint)


def _run_process(settings: Settings, endpoint: Endpoint | None) -> int:
    from bytewax._bytewax import cli_main  # the runner behind python -m bytewax.run

    from bpx_flows.console import stop_on_signals
    from bpx_flows.registry import build_flow

    route, owner = routes_for(settings)
    source = source_for(settings, endpoint, owner)
    counts: Counter[str] = Counter()
    out, alerts = _sinks(settings, source, counts)
    record_file = None
    if settings.outputs.file:
        from bpx_flows.connectors.sinks.jsonl import ResumableJsonLinesSink

        record_file = ResumableJsonLinesSink(settings.outputs.file)
    flow = build_flow(settings, source, out, alerts, record_file, key_function(route))
    run = settings.run
    recovery = _recovery(settings, run.workers * max(len(run.addresses), 1))
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
    with stop_on_signals():
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
    return 0


def routes_for(settings: Settings) -> tuple[dict[str, str], dict[str, int] | None]:
    """Routing keys spreading the symbols evenly over the cluster's workers.

    Returns ``(symbol -> routing key, symbol -> worker)``; empty and ``None`` with
    one worker.
    """
    workers = settings.run.workers * max(len(settings.run.addresses), 1)
    if workers <= 1:
        return {}, None
    symbols = set(settings.symbols)
    if settings.source.kind == "replay":
        symbols |= set(_recorded_symbols(settings.source.replay))
    route, owner = balanced_routes(sorted(symbols), workers)
    return route, owner


def key_function(route: dict[str, str]) -> Any:
    """``route`` as the ``Route`` of ``flows.keys`` (``None`` when empty)."""
    return (lambda symbol: route.get(symbol, symbol)) if route else None


def _recovery(settings: Settings, partitions: int) -> Any:
    if settings.run.recovery_dir is None:
        return None
    from bytewax.recovery import RecoveryConfig, init_db_dir

    path = Path(settings.run.recovery_dir)
    if not any(path.glob("part-*.sqlite3")):
        path.mkdir(parents=True, exist_ok=True)
        init_db_dir(path, partitions)  # type: ignore[no-untyped-call]
        log.info("initialised %d recovery partition(s) in %s", partitions, path)
    return RecoveryConfig(path)  # type: ignore[no-untyped-call]


def _sinks(settings: Settings, source: Any, counts: Counter[str]) -> tuple[Any, Any]:
    from bpx_flows.console import alert_sink, console_sink, metered

    out = console_sink(counts, quiet=settings.outputs.quiet)
    alerts = alert_sink(
        settings.outputs.alerts,
        settings.outputs.webhook,
        settings.outputs.webhook_format,
    )
    out = metered(out, settings.outputs.sinks)
    port = settings.metrics.port
    if port is not None:
        if port:
            port += settings.run.process_id or 0  # one port per process
        out, alerts = _serve_metrics(settings, source, port, out, alerts)
    return out, alerts


def _serve_metrics(
    settings: Settings, source: Any, port: int, out: Any, alerts: Any
) -> tuple[Any, Any]:
    from bpx_flows.connectors import metrics
    from bpx_flows.connectors.sinks.metrics import MetricsSink
    from bpx_flows.connectors.sinks.tee import TeeSink

    parts = getattr(source, "partitions", None)
    if parts is not None:
        metrics.REGISTRY.register(
            metrics.ConnectionCollector(lambda: [p.connection for p in parts.values()])
        )
    bound = metrics.serve_metrics(port, settings.metrics.host)
    print(f"metrics: http://{settings.metrics.host}:{bound}/metrics", flush=True)
    flow = settings.flow
    return TeeSink(out, MetricsSink(flow)), TeeSink(alerts, MetricsSink(flow))


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


# A local cluster.


def free_ports(count: int) -> list[int]:
    """``count`` loopback ports free right now (for a local cluster's addresses)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run_cluster(settings: Settings) -> int:
    run = settings.run
    with endpoint_for(settings) as endpoint:
        shared: dict[str, Any] = {"run.processes": 1}
        if endpoint is not None:
            shared.update(
                {
                    "source.kind": "endpoint",
                    "source.ws": endpoint.ws,
                    "source.rest": endpoint.rest,
                }
            )
        addresses = [f"127.0.0.1:{port}" for port in free_ports(run.processes)]
        _recovery(settings, run.processes * run.workers)
        print(
            f"cluster: {run.processes} processes x {run.workers} worker(s) on "
            f"{';'.join(addresses)}",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="bpx-run-") as tmp:
            children = []
            for process_id in range(run.processes):
                child = merge_overrides(
                    settings,
                    {
                        **shared,
                        "run.process_id": process_id,
                        "run.addresses": addresses,
                    },
                )
                path = Path(tmp) / f"process-{process_id}.json"
                path.write_bytes(msgspec.json.encode(child))
                children.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "bpx_flows.cli",
                            "run",
                            "--resolved",
                            str(path),
                        ]
                    )
                )
            return _wait_all(children)


def _wait_all(children: list[subprocess.Popen[bytes]]) -> int:
    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [c for c in codes if c != 0]
    return max(failed, key=abs) if failed else 0
