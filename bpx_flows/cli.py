"""The ``bpx-flows`` command line: simulator, demo, tail, record, replay, flows.

Long because it is flat: one small ``_cmd_*`` function per command and its argument
definitions, sharing the endpoint, signal and sink helpers at the bottom.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bpx_flows.connectors.backpack.signing import Credentials
from bpx_flows.connectors.backpack.streams import StreamName, parse_streams
from bpx_flows.connectors.connection import DEFAULT_WS_URL, ConnectionConfig
from bpx_flows.connectors.errors import BpxError, ConfigError
from bpx_flows.connectors.rest import DEFAULT_REST_URL
from bpx_flows.console import (
    alert_sink,
    console_sink,
    counting_describe,
    metered,
    stop_on_signals,
    tee,
)

__all__ = ["main"]

log = logging.getLogger("bpx_flows.cli")

DEMO_STREAMS = [
    "trade.SOL_USDC",
    "depth.SOL_USDC",
    "bookTicker.SOL_USDC",
    "kline.1m.SOL_USDC",
    "ticker.SOL_USDC",
    "depth.200ms.SOL_USDC_PERP",
    "trade.SOL_USDC_PERP",
    "markPrice.SOL_USDC_PERP",
    "openInterest.SOL_USDC_PERP",
    "liquidation",
    "account.orderUpdate",
    "account.positionUpdate",
    "account.rfqUpdate",
]


@dataclass(frozen=True)
class Endpoints:
    """Where to connect, and the key to sign with."""

    ws_url: str
    rest_url: str
    credentials: Credentials | None


# Entry point.


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "names") and not any(x.startswith("-") for x in extra):
        args.names += extra  # `run FLOW --replay FILE SYMBOL...`: symbols after options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose
        else logging.INFO
        if args.log
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except BpxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a flow failed: report its root cause in one line
        root = _bpx_cause(exc)
        if root is None:
            raise
        print(f"error: {root}", file=sys.stderr)
        return 1


def _bpx_cause(exc: BaseException) -> BpxError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BpxError):
            return seen
        seen = seen.__cause__ or seen.__context__
    # Bytewax re-raises worker errors as new exceptions with the text of the original.
    text = str(exc)
    for name in ("AuthError", "ConfigError", "RestError", "ProtocolError"):
        if f"connectors.errors.{name}: " in text:
            message = text.split(f"connectors.errors.{name}: ", 1)[1].splitlines()[0]
            return BpxError(message)
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpx-flows",
        description="Backpack Exchange market data on Bytewax, with a local simulator.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    parser.add_argument("--log", action="store_true", help="info logs (reconnects...)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_simulator_commands(commands)
    _add_flow_commands(commands)
    _add_analytics_commands(commands)
    _add_account_command(commands)
    _add_run_commands(commands)
    return parser


def _add_simulator_commands(commands: Any) -> None:
    sim = commands.add_parser("sim", help="run the simulated exchange on loopback")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="0 picks a free port")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--speed", type=float, default=1.0, help="simulated s per wall s")
    sim.add_argument(
        "--rate-scale", type=float, default=1.0, help="x engine event rates"
    )
    sim.add_argument("--dialect", choices=["wire", "spec", "strings"], default="wire")
    sim.add_argument("--ping-interval", type=float, default=60.0, help="seconds")
    sim.add_argument("--ping-timeout", type=float, default=120.0, help="seconds")
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="arm a fault, e.g. drop:after=500 or rest_status:status=429,count=2",
    )
    sim.add_argument(
        "--replay",
        metavar="FILE",
        help="serve this recording instead of synthetic data (--speed 0: max speed)",
    )
    sim.add_argument(
        "--account-key",
        help="base64 public key of the simulated account "
        "(default: the key of BPX_API_SECRET, if set)",
    )
    sim.set_defaults(run=_cmd_sim)

    session = commands.add_parser(
        "sim-session", help="write a synthetic recording straight from the model"
    )
    session.add_argument("--out", required=True, help="file; .gz for gzip")
    session.add_argument(
        "--seconds", type=float, default=60.0, help="simulated seconds"
    )
    session.add_argument("--seed", type=int, default=7)
    session.add_argument("--rate-scale", type=float, default=1.0, help="x event rates")
    session.set_defaults(run=_cmd_sim_session)


def _add_flow_commands(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="the market flow on the built-in simulator, with metrics and alerts",
    )
    demo.add_argument("--seconds", type=float, default=15.0, help="how long to run")
    demo.add_argument(
        "--quiet", action="store_true", help="print alerts and the summary"
    )
    demo.add_argument(
        "--metrics-port", type=int, default=0, metavar="PORT", help="0: a free port"
    )
    demo.set_defaults(run=_cmd_demo)

    for name, helptext, func in (
        ("tail", "print decoded records of some streams", _cmd_tail),
        ("record", "record raw frames and snapshots to a file", _cmd_record),
    ):
        cmd = commands.add_parser(name, help=helptext)
        cmd.add_argument("streams", nargs="+", metavar="STREAM")
        _endpoint_args(cmd)
        cmd.add_argument(
            "--per-connection", type=int, default=50, help="streams/socket"
        )
        if name == "record":
            cmd.add_argument("--out", required=True, help="file; .gz for gzip")
        cmd.set_defaults(run=func)


def _add_analytics_commands(commands: Any) -> None:
    book = commands.add_parser("book", help="order books: stats and integrity events")
    book.add_argument("symbols", nargs="+", metavar="SYMBOL")
    _endpoint_args(book)
    _metrics_args(book)
    book.add_argument(
        "--window", choices=["200ms", "600ms", "1000ms"], help="aggregated depth stream"
    )
    book.add_argument(
        "--every-ms",
        type=float,
        default=1000.0,
        help="stats per book at most this often",
    )
    book.set_defaults(run=_cmd_book)

    deriv = commands.add_parser(
        "derivatives", help="mark price joined with open interest"
    )
    deriv.add_argument("symbols", nargs="+", metavar="PERP")
    _endpoint_args(deriv)
    _metrics_args(deriv)
    deriv.set_defaults(run=_cmd_derivatives)

    liq = commands.add_parser("liquidations", help="liquidation stats and burst alerts")
    liq.add_argument("symbols", nargs="*", metavar="PERP", help="heartbeat markets")
    _endpoint_args(liq)
    _metrics_args(liq)
    liq.add_argument("--min-notional", type=Decimal, default=Decimal(50_000))
    liq.add_argument("--min-count", type=int, default=5)
    liq.add_argument("--multiple", type=Decimal, default=Decimal(5))
    liq.add_argument("--quiet", action="store_true", help="print alerts only")
    _alert_args(liq)
    liq.set_defaults(run=_cmd_liquidations)

    market = commands.add_parser(
        "market", help="books + candles + derivatives + liquidations on one connector"
    )
    market.add_argument("symbols", nargs="+", metavar="SYMBOL")
    _endpoint_args(market)
    _metrics_args(market)
    _alert_args(market)
    market.add_argument("--quiet", action="store_true", help="print alerts only")
    market.set_defaults(run=_cmd_market)

    candles = commands.add_parser("candles", help="trades into OHLCV candles")
    candles.add_argument("symbols", nargs="+", metavar="SYMBOL")
    _endpoint_args(candles)
    _metrics_args(candles)
    candles.add_argument("--intervals", default="1s,1m,5m,1h", help="comma-separated")
    candles.add_argument(
        "--lateness-ms", type=int, default=2000, help="allowed lateness"
    )
    candles.add_argument(
        "--fill", action="store_true", help="forward-fill quiet intervals"
    )
    candles.add_argument(
        "--parquet", metavar="DIR", help="also write candles to Parquet"
    )
    candles.set_defaults(run=_cmd_candles)

    replay = commands.add_parser("replay", help="print the records of a recording")
    replay.add_argument("files", nargs="+", metavar="FILE")
    replay.add_argument(
        "--speed", type=float, help="pace by receive time (1 = real time)"
    )
    replay.set_defaults(run=_cmd_replay)


def _add_run_commands(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="run a flow on Bytewax: workers, processes, recovery, settings file",
        description="Run FLOW (market, book, candles, derivatives, liquidations, "
        "account, tape) for SYMBOLs (streams, for tape). Settings come from --config "
        "(TOML, see docs/run.md), then the flags. Without --live, --ws or --replay "
        "the built-in simulator is the source.",
    )
    run.add_argument("names", nargs="*", metavar="[FLOW] SYMBOL")
    run.add_argument("--config", metavar="FILE", help="TOML settings; flags override")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--live", action="store_true", help="the real exchange")
    where.add_argument("--ws", help="any WebSocket endpoint (with --rest)")
    where.add_argument(
        "--replay", action="append", metavar="FILE", help="a recording (repeatable)"
    )
    run.add_argument("--rest", help="REST base URL (with --ws)")
    run.add_argument("--speed", type=float, help="replay pacing (0: max speed)")
    run.add_argument("--batch", type=int, help="replay: records per batch (10000)")
    run.add_argument("--seconds", type=float, help="stop a live run after this long")
    run.add_argument("--workers", type=int, help="Bytewax workers per process")
    run.add_argument("--processes", type=int, help="local processes (a cluster)")
    run.add_argument("--process-id", type=int, help="this process in --addresses")
    run.add_argument("--addresses", help="every process: host:port;host:port...")
    run.add_argument("--recovery-dir", metavar="DIR", help="Bytewax state snapshots")
    run.add_argument(
        "--snapshot-every", type=float, metavar="S", help="snapshot interval, s"
    )
    # Unset defaults: a flag that is not given leaves the settings file's value.
    _metrics_args(run, unset=True)
    _alert_args(run, unset=True)
    run.add_argument(
        "--out", metavar="FILE", help="every output as JSON Lines, exactly once"
    )
    run.add_argument("--metrics-host", help="address to serve metrics on")
    run.add_argument(
        "--quiet", action="store_true", default=None, help="print alerts only"
    )
    run.add_argument("--log-format", choices=["text", "json"])
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    run.add_argument("--resolved", help=argparse.SUPPRESS)  # a cluster child
    run.set_defaults(run=_cmd_run)

    config = commands.add_parser("config", help="check a settings file")
    actions = config.add_subparsers(required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate a TOML settings file")
    check.add_argument("file")
    check.add_argument(
        "--online",
        action="store_true",
        help="also check markets and the key against a live or endpoint source",
    )
    check.set_defaults(run=_cmd_config_check)


def _add_account_command(commands: Any) -> None:
    account = commands.add_parser(
        "account",
        help="your orders, fills, positions and RFQs (signed private streams)",
        description="Signed with the ED25519 key in BPX_API_SECRET or the file named "
        "by BPX_API_SECRET_FILE (base64). On the built-in simulator a key is made up.",
    )
    account.add_argument(
        "symbols", nargs="*", metavar="SYMBOL", help="markets (default: every market)"
    )
    _endpoint_args(account)
    _metrics_args(account)
    _alert_args(account)
    account.add_argument(
        "--with-book",
        action="store_true",
        help="also keep the SYMBOLs' books: fill slippage against their mid",
    )
    account.add_argument(
        "--margin-alerts",
        default="0.8,0.9",
        metavar="LEVELS",
        help="margin use (maintenance / equity) levels that alert, comma-separated",
    )
    account.add_argument("--quiet", action="store_true", help="print alerts only")
    account.set_defaults(run=_cmd_account)


def _metrics_args(cmd: argparse.ArgumentParser, unset: bool = False) -> None:
    cmd.add_argument(
        "--sink",
        action="append",
        default=None if unset else [],
        metavar="SPEC",
        help="also send the outputs to a sink: stdout:json, jsonl:PATH[,max_mb=N], "
        "parquet:DIR, webhook:URL, kafka:BROKERS/TOPIC, or an installed plugin",
    )
    cmd.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT (0: a free port; in a "
        "cluster, process i serves PORT + i)",
    )


def _alert_args(cmd: argparse.ArgumentParser, unset: bool = False) -> None:
    cmd.add_argument(
        "--alerts", metavar="FILE", help="also append alerts as JSON Lines"
    )
    cmd.add_argument(
        "--webhook", metavar="URL", help="also POST alerts to this webhook"
    )
    cmd.add_argument(
        "--webhook-format",
        choices=["json", "slack", "discord"],
        default=None if unset else "json",
    )


def _alerts(args: argparse.Namespace, console: Any) -> Any:
    """``console`` plus the ``--alerts`` file and the ``--webhook``, when given."""
    return alert_sink(args.alerts, args.webhook, args.webhook_format, console)


def _endpoint_args(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--seconds", type=float, help="stop after this long")
    where = cmd.add_mutually_exclusive_group()
    where.add_argument("--live", action="store_true", help="the real exchange")
    where.add_argument("--ws", help="any WebSocket endpoint (e.g. a simulator)")
    cmd.add_argument("--rest", help="REST base URL (with --ws)")


# Commands.


def _cmd_sim(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.sim import (
        Dialect,
        ServerConfig,
        SimConfig,
        SimServer,
        parse_fault,
    )

    account_key = args.account_key
    if account_key is None:
        creds = Credentials.from_env()
        account_key = creds.public_key if creds else None
    config = ServerConfig(
        host=args.host,
        port=args.port,
        speed=args.speed,
        dialect=Dialect(args.dialect),
        ping_interval_s=args.ping_interval,
        ping_timeout_s=args.ping_timeout,
        account_key=account_key,
    )
    faults = [parse_fault(spec) for spec in args.fault]
    replay = None
    if args.replay:
        from bpx_flows.connectors.sim.replay import RecordingFeed

        replay = RecordingFeed.load(args.replay)
    exchange = SimConfig(seed=args.seed, rate_scale=args.rate_scale)
    server = SimServer(exchange, config, faults, replay)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.start()
        urls = {"ws": server.ws_url, "rest": server.rest_url, "pid": os.getpid()}
        print(json.dumps(urls), flush=True)  # the first line, for scripts
        await stop.wait()
        await server.stop()

    asyncio.run(serve())
    return 0


def _cmd_sim_session(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.sim import SimConfig
    from bpx_flows.connectors.sim.session import write_session

    config = SimConfig(seed=args.seed, rate_scale=args.rate_scale, account_every_s=None)
    frames = write_session(args.out, args.seconds, config)
    print(f"wrote {frames:,} frames ({args.seconds:g} simulated s) to {args.out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.backpack.wire import Side
    from bpx_flows.connectors.sim import (
        ScheduledCascade,
        ServerConfig,
        SimConfig,
        SimServer,
        SimThread,
    )
    from bpx_flows.connectors.sinks import LineSink
    from bpx_flows.flows.market import MarketConfig, build, market_streams
    from bpx_flows.operators.bursts import BurstConfig

    creds = Credentials.from_secret(base64.b64encode(os.urandom(32)).decode())
    # A cascade a few seconds in, so the demo shows a burst alert.
    cascade = ScheduledCascade(min(6.0, args.seconds / 3), "SOL_USDC_PERP", Side.ASK)
    exchange = SimConfig(cascades_at=(cascade,))
    server = SimServer(exchange, ServerConfig(account_key=creds.public_key))
    config = MarketConfig(bursts=BurstConfig(min_notional=Decimal(500), min_count=5))
    symbols = ["SOL_USDC", "SOL_USDC_PERP", "BTC_USDC_PERP"]
    streams = parse_streams(market_streams(symbols, config))
    counts: Counter[str] = Counter()
    with SimThread(server):
        print(f"simulator: {server.ws_url} (REST {server.rest_url})", flush=True)
        endpoints = Endpoints(server.ws_url, server.rest_url, creds)
        source = _live_source(streams, endpoints, args.seconds)
        out: Any = (
            console_sink(counts, quiet=True) if args.quiet else console_sink(counts)
        )
        out = _with_metrics(args, source, out)
        alerts = LineSink(counting_describe(Counter()), prefix="ALERT ")
        _run_flow(build(source, out, alerts, config), source)
    _print_summary(counts, args.seconds)
    return 0 if counts.get("BookStats") and counts.get("Candle") else 1


def _cmd_market(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.sinks import LineSink
    from bpx_flows.flows.market import build, market_streams

    streams = parse_streams(market_streams(args.symbols))
    counts: Counter[str] = Counter()
    alerts = _alerts(args, LineSink(counting_describe(Counter()), prefix="ALERT "))
    with _endpoints(args, streams) as endpoints:
        source = _live_source(streams, endpoints, args.seconds)
        out: Any = (
            console_sink(counts, quiet=True) if args.quiet else console_sink(counts)
        )
        out = _with_metrics(args, source, out)
        _run_flow(build(source, out, alerts), source)
    _print_summary(counts, args.seconds)
    return 0


def _cmd_account(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.sinks import LineSink
    from bpx_flows.flows.account import account_streams, build
    from bpx_flows.operators.book_state import BookConfig

    config = _account_config(args.margin_alerts)
    if args.with_book and not args.symbols:
        msg = "--with-book needs SYMBOLs: the book flow keeps a book per named market"
        raise ConfigError(msg)
    book = (
        BookConfig(symbols=frozenset(args.symbols), emit_every_us=0)
        if args.with_book
        else None
    )
    streams = parse_streams(account_streams(args.symbols, args.with_book))
    counts: Counter[str] = Counter()
    alerts = _alerts(args, LineSink(counting_describe(counts), prefix="ALERT "))
    with _endpoints(args, streams) as endpoints:
        if endpoints.credentials is None:
            msg = (
                "the account streams are signed: set BPX_API_SECRET (base64 ED25519 "
                "secret) or BPX_API_SECRET_FILE"
            )
            raise ConfigError(msg)
        source = _live_source(streams, endpoints, args.seconds)
        out: Any = (
            console_sink(counts, quiet=True) if args.quiet else console_sink(counts)
        )
        out = _with_metrics(args, source, out)
        alerts = _with_metrics(args, None, alerts, extra_sinks=False)
        _run_flow(build(source, out, alerts, config, book), source)
    _print_summary(counts, args.seconds)
    return 0


def _account_config(levels_text: str) -> Any:
    from bpx_flows.operators.account import AccountConfig

    def fail(problem: str) -> ConfigError:
        msg = (
            f"--margin-alerts {levels_text!r}: {problem}; give fractions, e.g. 0.8,0.9"
        )
        return ConfigError(msg)

    levels = []
    for text in (x.strip() for x in levels_text.split(",")):
        try:
            levels.append(Decimal(text))
        except ArithmeticError:
            msg = f"{text!r} is not a number"
            raise fail(msg) from None
    try:
        return AccountConfig(margin_alert_levels=tuple(levels))
    except ValueError as exc:
        raise fail(str(exc)) from None


def _cmd_run(args: argparse.Namespace) -> int:
    from bpx_flows.runner import configure_logging, run

    settings = _run_settings(args)
    level = "debug" if args.verbose else settings.log.level
    configure_logging(level, settings.log.format)
    return run(settings)


def _run_settings(args: argparse.Namespace) -> Any:
    import msgspec

    from bpx_flows.settings import (
        FLOWS,
        Settings,
        load_settings,
        merge_overrides,
        settings_from_builtins,
    )

    if args.resolved:
        data = msgspec.json.decode(Path(args.resolved).read_bytes())
        return settings_from_builtins(data, args.resolved)
    settings = load_settings(args.config) if args.config else Settings()
    names = list(args.names)
    flow = names.pop(0) if names and names[0] in FLOWS else None
    if flow is None and not args.config:
        first = f"{names[0]!r} is not a flow; " if names else ""
        msg = (
            f"{first}name a flow first: bpx-flows run FLOW [SYMBOL...] "
            f"({', '.join(FLOWS)})"
        )
        raise ConfigError(msg)
    if args.rest and not args.ws:
        msg = "--rest goes with --ws (the WebSocket URL of the same endpoint)"
        raise ConfigError(msg)
    overrides: dict[str, Any] = {"flow": flow}
    if names:
        target = "streams" if (flow or settings.flow) == "tape" else "symbols"
        overrides[target] = names
    if args.live or args.ws or args.replay:
        kind = "live" if args.live else "endpoint" if args.ws else "replay"
        overrides.update(
            {
                "source.kind": kind,
                "source.ws": args.ws or ...,
                "source.rest": args.rest or ...,
                "source.replay": args.replay or ...,
            }
        )
    overrides.update(
        {
            "source.speed": args.speed,
            "source.batch": args.batch,
            "source.seconds": args.seconds,
            "run.workers": args.workers,
            "run.processes": args.processes,
            "run.process_id": args.process_id,
            "run.addresses": args.addresses.split(";") if args.addresses else None,
            "run.recovery_dir": args.recovery_dir,
            "run.snapshot_every_s": args.snapshot_every,
            "outputs.sinks": args.sink,
            "outputs.file": args.out,
            "outputs.alerts": args.alerts,
            "outputs.webhook": args.webhook,
            "outputs.webhook_format": args.webhook_format,
            "outputs.quiet": args.quiet,
            "metrics.port": args.metrics_port,
            "metrics.host": args.metrics_host,
            "log.format": args.log_format,
            "log.level": args.log_level,
        }
    )
    return merge_overrides(settings, overrides)


def _cmd_config_check(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.backpack.streams import parse_streams as check_streams
    from bpx_flows.registry import streams_for
    from bpx_flows.settings import load_settings

    settings = load_settings(args.file)
    streams = [] if settings.source.kind == "replay" else streams_for(settings)
    names = check_streams(streams)  # bad names, intervals or windows
    kind = settings.source.kind
    if names and (kind == "simulator" or args.online):
        from bpx_flows.connectors.preflight import preflight
        from bpx_flows.runner import endpoint_for

        with endpoint_for(settings) as endpoint:
            assert endpoint is not None
            preflight(names, endpoint.ws, endpoint.rest, Credentials.from_env())
    run = settings.run
    print(
        f"{args.file}: ok: flow {settings.flow}, {len(settings.symbols)} symbol(s), "
        f"{len(streams)} stream(s), source {settings.source.kind}, "
        f"{run.processes} process(es) x {run.workers} worker(s)"
        + (f", recovery in {run.recovery_dir}" if run.recovery_dir else "")
    )
    return 0


def _cmd_tail(args: argparse.Namespace) -> int:
    streams = parse_streams(args.streams)
    with _endpoints(args, streams) as endpoints:
        counts = _run_tape(
            streams, endpoints, args.seconds, per_connection=args.per_connection
        )
    _print_summary(counts, args.seconds)
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.recording import Recorder
    from bpx_flows.flows.tape import build

    streams = parse_streams(args.streams)
    counter = console_sink(Counter(), quiet=True)
    with (
        _endpoints(args, streams) as endpoints,
        Recorder(args.out, [str(s) for s in streams]) as recorder,
    ):
        source = _live_source(
            streams, endpoints, args.seconds, args.per_connection, tap=recorder
        )
        _run_flow(build(source, counter, counter), source)
        print(f"recorded {recorder.lines} lines to {args.out}", flush=True)
    _print_summary(counter.counts, args.seconds)
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    from bpx_flows.flows.book import book_streams, build
    from bpx_flows.operators.book_state import BookConfig

    window = f"{args.window}." if args.window else ""
    streams = parse_streams(book_streams(args.symbols, window))
    counts: Counter[str] = Counter()
    config = BookConfig(
        symbols=frozenset(args.symbols), emit_every_us=int(args.every_ms * 1000)
    )
    with _endpoints(args, streams) as endpoints:
        source = _live_source(streams, endpoints, args.seconds)
        sink = _with_metrics(args, source, console_sink(counts))
        _run_flow(build(source, sink, sink, config), source)
    _print_summary(counts, args.seconds)
    return 0


def _cmd_derivatives(args: argparse.Namespace) -> int:
    from bpx_flows.flows.derivatives import build, derivative_streams

    streams = parse_streams(derivative_streams(args.symbols))
    counts: Counter[str] = Counter()
    with _endpoints(args, streams) as endpoints:
        source = _live_source(streams, endpoints, args.seconds)
        sink = _with_metrics(args, source, console_sink(counts))
        _run_flow(build(source, sink), source)
    _print_summary(counts, args.seconds)
    return 0


def _cmd_liquidations(args: argparse.Namespace) -> int:
    from bpx_flows.flows.liquidations import build, liquidation_streams
    from bpx_flows.operators.bursts import BurstConfig

    config = BurstConfig(
        min_notional=args.min_notional, min_count=args.min_count, multiple=args.multiple
    )
    streams = parse_streams(liquidation_streams(args.symbols))
    counts: Counter[str] = Counter()
    alerts = _alerts(args, console_sink(counts))
    stats = console_sink(counts, quiet=True) if args.quiet else console_sink(counts)
    with _endpoints(args, streams) as endpoints:
        source = _live_source(streams, endpoints, args.seconds)
        alerts = _with_metrics(args, source, alerts)
        stats = _with_metrics(args, None, stats, extra_sinks=False)
        _run_flow(build(source, alerts, stats, config), source)
    _print_summary(counts, args.seconds)
    return 0


def _cmd_candles(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.backpack.streams import KlineInterval
    from bpx_flows.flows.candles import CandleConfig, build, candle_streams

    try:
        intervals = tuple(KlineInterval(x.strip()) for x in args.intervals.split(","))
        config = CandleConfig(
            intervals=intervals,
            allowed_lateness_us=args.lateness_ms * 1000,
            forward_fill=args.fill,
        )
    except ValueError as exc:
        msg = f"--intervals {args.intervals!r}: {exc}"
        raise ConfigError(msg) from None
    streams = parse_streams(candle_streams(args.symbols, intervals))
    counts: Counter[str] = Counter()
    candle_sink: Any = console_sink(counts)
    if args.parquet:
        from bpx_flows.connectors.sinks.parquet import CandleParquetSink

        candle_sink = tee(candle_sink, CandleParquetSink(args.parquet))
    with _endpoints(args, streams) as endpoints:
        source = _live_source(streams, endpoints, args.seconds)
        candle_sink = _with_metrics(args, source, candle_sink)
        sink = console_sink(counts)
        _run_flow(build(source, candle_sink, sink, sink, config), source)
    _print_summary(counts, args.seconds)
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.sinks import LineSink
    from bpx_flows.connectors.source import ReplaySource
    from bpx_flows.flows.tape import build

    for path in args.files:
        if not Path(path).is_file():
            msg = f"no such recording: {path}"
            raise ConfigError(msg)
    counts: Counter[str] = Counter()
    source = ReplaySource(args.files, speed=args.speed)
    dead = LineSink(counting_describe(counts), prefix="DEAD LETTER ")
    _run_flow(build(source, console_sink(counts), dead), source)
    _print_summary(counts, None)
    return 0


# Helpers.


@contextlib.contextmanager
def _endpoints(
    args: argparse.Namespace, streams: list[StreamName]
) -> Iterator[Endpoints]:
    from bpx_flows.connectors.preflight import preflight

    creds = Credentials.from_env()
    if args.live:
        endpoints = Endpoints(DEFAULT_WS_URL, DEFAULT_REST_URL, creds)
    elif args.ws:
        if not args.rest:
            msg = "--ws needs --rest too (the REST base URL for depth snapshots)"
            raise ConfigError(msg)
        endpoints = Endpoints(args.ws, args.rest, creds)
    else:
        from bpx_flows.connectors.sim import (
            ServerConfig,
            SimConfig,
            SimServer,
            SimThread,
        )

        if creds is None:
            creds = Credentials.from_secret(base64.b64encode(os.urandom(32)).decode())
        server = SimServer(SimConfig(), ServerConfig(account_key=creds.public_key))
        with SimThread(server):
            print(
                f"simulator: {server.ws_url} (use --live for the exchange)", flush=True
            )
            endpoints = Endpoints(server.ws_url, server.rest_url, creds)
            preflight(
                streams, endpoints.ws_url, endpoints.rest_url, endpoints.credentials
            )
            yield endpoints
        return
    preflight(streams, endpoints.ws_url, endpoints.rest_url, endpoints.credentials)
    yield endpoints


def _source_config(
    endpoints: Endpoints, seconds: float | None, per_connection: int = 50
) -> Any:
    from bpx_flows.connectors.source import SourceConfig

    return SourceConfig(
        connection=ConnectionConfig(ws_url=endpoints.ws_url),
        rest_url=endpoints.rest_url,
        streams_per_connection=per_connection,
        run_for_s=seconds,
        end_on_fatal=True,
    )


def _with_metrics(
    args: argparse.Namespace, source: Any, sink: Any, extra_sinks: bool = True
) -> Any:
    """Tee ``sink`` into the ``--sink`` sinks and, with ``--metrics-port``, metrics."""
    if extra_sinks:
        sink = metered(sink, getattr(args, "sink", []))
    if args.metrics_port is None:
        return sink
    from bpx_flows.connectors import metrics
    from bpx_flows.connectors.sinks.metrics import MetricsSink

    if source is not None and not getattr(args, "_metrics_served", False):
        parts = source.partitions
        metrics.REGISTRY.register(
            metrics.ConnectionCollector(lambda: [p.connection for p in parts.values()])
        )
        port = metrics.serve_metrics(args.metrics_port)
        print(f"metrics: http://127.0.0.1:{port}/metrics", flush=True)
        args._metrics_served = True
    return tee(sink, MetricsSink())


def _live_source(
    streams: list[StreamName],
    endpoints: Endpoints,
    seconds: float | None,
    per_connection: int = 50,
    tap: Any = None,
) -> Any:
    from bpx_flows.connectors.source import BackpackSource

    config = _source_config(endpoints, seconds, per_connection)
    return BackpackSource(streams, config, endpoints.credentials, tap=tap)


def _run_flow(flow: Any, source: Any) -> None:
    from bytewax.testing import run_main

    with stop_on_signals():
        run_main(flow)  # type: ignore[no-untyped-call]
    failures = getattr(source, "failures", [])  # live sources keep fatal errors
    if failures:
        raise failures[0]


def _run_tape(
    streams: list[StreamName],
    endpoints: Endpoints,
    seconds: float | None,
    quiet: bool = False,
    per_connection: int = 50,
) -> Counter[str]:
    from bpx_flows.connectors.sinks import LineSink
    from bpx_flows.flows.tape import build

    counts: Counter[str] = Counter()
    source = _live_source(streams, endpoints, seconds, per_connection)
    sink = console_sink(counts, quiet=True) if quiet else console_sink(counts)
    dead = LineSink(counting_describe(counts), prefix="DEAD LETTER ")
    _run_flow(build(source, sink, dead), source)
    return counts


def _print_summary(counts: Counter[str], seconds: float | None) -> None:
    total = sum(counts.values())
    rate = f", {total / seconds:,.0f}/s" if seconds else ""
    print(f"\nsummary: {total:,} records{rate}", flush=True)
    for kind, n in counts.most_common():
        print(f"  {kind:<34} {n:>10,}")


if __name__ == "__main__":
    sys.exit(main())
