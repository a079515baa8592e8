"""The ``bpx-flows`` command line: flags in, settings out, one runner.

(Over 450 lines: every command's flags in one parser, so their names cannot clash;
the simulator's commands live in ``sim_commands``.)

Every flow command (``run FLOW``, ``market``, ``book``... from the registry, and
``demo``, ``tail``, ``record``, ``replay``) only translates its flags into settings
overrides and calls ``bpx_flows.runner.run``. The flags and their help (with the
defaults) are derived from the settings' fields, so a setting has one name, one
default and one check everywhere. ``config check`` is a tool around the same
validation; ``sim`` and ``sim-session`` (``bpx_flows.sim_commands``) run the simulator.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from bpx_flows import __version__
from bpx_flows.arguments import OneLineParser, number, port
from bpx_flows.connectors.errors import BpxError, ConfigError
from bpx_flows.registry import FLOWS, flag_fields
from bpx_flows.settings import (
    Settings,
    load_settings,
    merge_overrides,
    settings_from_data,
    validate,
)
from bpx_flows.sim_commands import add_sim_commands

__all__ = ["main"]

log = logging.getLogger("bpx_flows.cli")

DEMO_SYMBOLS = ["SOL_USDC", "SOL_USDC_PERP", "BTC_USDC_PERP"]

# Flags of every flow command: flag -> dotted settings key.
_RUN_FLAGS: dict[str, str] = {
    "--speed": "source.speed",
    "--batch": "source.batch",
    "--seconds": "source.seconds",
    "--follow": "source.follow",
    "--per-connection": "source.per_connection",
    "--record": "source.record",
    "--compression": "source.compression",
    "--trade-backfill": "source.trade_backfill",
    "--workers": "run.workers",
    "--processes": "run.processes",
    "--process-id": "run.process_id",
    "--addresses": "run.addresses",
    "--recovery-dir": "run.recovery_dir",
    "--snapshot-every": "run.snapshot_every_s",
    "--sink": "outputs.sinks",
    "--out": "outputs.file",
    "--alerts": "outputs.alerts",
    "--webhook": "outputs.webhook",
    "--webhook-format": "outputs.webhook_format",
    "--quiet": "outputs.quiet",
    "--metrics-port": "metrics.port",
    "--metrics-host": "metrics.host",
    "--log-format": "log.format",
    "--log-level": "log.level",
    "--progress-every": "log.progress_every_s",
    "--seed": "simulator.seed",
    "--fault": "simulator.faults",
}
_SEPARATORS = {"run.addresses": ";"}  # list flags split here (default: commas)
_REPEATED = {"outputs.sinks", "simulator.faults"}  # list flags given once per item


# Entry point.


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "names") and not any(x.startswith("-") for x in extra):
        args.names += extra  # `run FLOW --replay FILE SYMBOL...`: symbols after options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.command(args))
    except BrokenPipeError:
        # The reader of our output left (``| head``): that is the end, not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
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
        marker = f"connectors.errors.{name}: "
        if marker in text:
            return BpxError(text.split(marker, 1)[1].splitlines()[0])
    return None


# The parser.


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help that keeps the descriptions' line breaks."""


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="bpx-flows",
        description="Backpack Exchange market data on Bytewax, with a local simulator."
        " Without --live, --ws or --replay every flow runs on the built-in simulator.",
        formatter_class=_Formatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: bpx-flows' own story (connections, snapshots, resyncs, "
        "backfills); -vv: debug logs, the libraries' too",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    run = _command(commands, "run", "run any flow: workers, clusters, recovery, TOML")
    run.add_argument(
        "names",
        nargs="*",
        metavar="FLOW [SYMBOL]",
        help=f"the flow ({', '.join(FLOWS)}), then markets (streams for the tape)",
    )
    _flow_flags(run, None)
    run.add_argument("--resolved", help=argparse.SUPPRESS)  # a cluster's child
    run.set_defaults(command=_cmd_run, flow=None)
    for spec in FLOWS.values():
        if spec.symbols == "streams":
            continue  # the tape is `tail`, `record` and `replay`
        cmd = _command(commands, spec.name, spec.help)
        what = "PERP" if spec.markets == "perp" else "SYMBOL"
        # Symbols are checked with the settings: a replay without them reads every
        # recorded market, a live run of a flow that needs them says so.
        cmd.add_argument(
            "names",
            nargs="*",
            metavar=what,
            help="markets"
            + (
                " (none: every recorded market of a replay)"
                if spec.symbols == "required"
                else " (none: all)"
            ),
        )
        _flow_flags(cmd, spec.name)
        cmd.set_defaults(command=_cmd_run, flow=spec.name)
    _tool_commands(commands)
    return parser


def _command(commands: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=text, description=text, formatter_class=_Formatter
    )
    return parser


def _flow_flags(
    cmd: argparse.ArgumentParser, flow: str | None, skip: tuple[str, ...] = ()
) -> None:
    """The flags of a flow command: source, run, outputs, and its sections' fields."""
    cmd.add_argument("--config", metavar="FILE", help="TOML settings; flags override")
    where = cmd.add_mutually_exclusive_group()
    where.add_argument("--live", action="store_true", help="the real exchange")
    where.add_argument("--ws", metavar="URL", help="any WebSocket endpoint (+ --rest)")
    where.add_argument(
        "--replay",
        action="append",
        metavar="FILE",
        help="a recording (repeatable), or one kafka:BROKERS/TOPIC",
    )
    cmd.add_argument("--rest", metavar="URL", help="REST base URL (with --ws)")
    cmd.add_argument(
        "--parquet",
        metavar="DIR",
        help="also write every output to Parquet, a dataset per kind (a sink)",
    )
    defaults = Settings()
    for flag, dotted in _RUN_FLAGS.items():
        if flag in skip:
            continue
        table, name = dotted.split(".")
        _add_field_flag(cmd, flag, dotted, getattr(defaults, table), name)
    sections = FLOWS[flow].sections if flow else None
    for flag, (kind, name) in flag_fields().items():
        if sections is None or kind in sections:
            _add_field_flag(cmd, flag, f"{kind.NAME}.{name}", kind(), name)


def _add_field_flag(
    cmd: argparse.ArgumentParser, flag: str, dotted: str, table: Any, name: str
) -> None:
    """A flag for one settings field: its help, choices and default come from it."""
    hint = typing.get_type_hints(type(table), include_extras=True)[name]
    description, choices, is_bool, is_list = _describe_type(hint)
    default = getattr(table, name)
    shown = _show(default)
    text = f"{description} (default: {shown})" if description else f"default {shown}"
    if dotted in _REPEATED:
        text = f"{description} (repeatable)"
    elif is_list:
        text = f"{description}, {_SEPARATORS.get(dotted, ',')}-separated ({shown})"
    kwargs: dict[str, Any] = {"dest": _dest(dotted), "default": None, "help": text}
    if is_bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif dotted in _REPEATED:
        kwargs.update(action="append", metavar="SPEC")
    else:
        kwargs["metavar"] = name.upper().removesuffix("_S").removesuffix("_MS")
        if choices:
            kwargs.update(choices=choices, metavar=None)
    cmd.add_argument(flag, **kwargs)


def _describe_type(hint: Any) -> tuple[str, list[str] | None, bool, bool]:
    """(description, choices, is a bool, is a list) of an ``Annotated`` field type."""
    description = ""
    base = hint
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        for extra in extras:
            if isinstance(extra, msgspec.Meta) and extra.description:
                description = extra.description
    if typing.get_origin(base) is typing.Literal:
        return description, [str(x) for x in typing.get_args(base) if x], False, False
    return description, None, base is bool, typing.get_origin(base) is list


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(getattr(v, "value", v)) for v in value) or "none"
    if value is None or value == "":
        return "none"
    return str(value)


def _dest(dotted: str) -> str:
    return "set_" + dotted.replace(".", "__")


def _tool_commands(commands: Any) -> None:
    demo = _command(
        commands, "demo", "the market flow on the simulator: metrics, alerts, summary"
    )
    demo.add_argument("--seconds", type=float, default=15.0, help="how long (15)")
    demo.add_argument("--quiet", action="store_true", help="print alerts and summary")
    demo.add_argument(
        "--metrics-port", type=port, default=0, metavar="PORT", help="0: a free port"
    )
    demo.set_defaults(command=_cmd_demo)
    for name, text in (
        ("tail", "print every decoded record of some streams"),
        ("record", "record raw frames and REST answers to a file"),
    ):
        cmd = _command(commands, name, text)
        record = name == "record"
        cmd.add_argument(
            "names",
            nargs="*" if record else "+",
            metavar="STREAM",
            help="stream names" + (" (none with --replay: a copy)" if record else ""),
        )
        if record:
            cmd.add_argument(
                "--out",
                required=True,
                help="file (.gz for gzip), or kafka:BROKERS/TOPIC[,partitions=N]",
            )
        _flow_flags(cmd, "tape", skip=("--out", "--record") if record else ())
        cmd.set_defaults(
            command=_cmd_record if record else _cmd_run, flow="tape", tool=name
        )
    top = _command(commands, "top", "the market flow live in the terminal (q quits)")
    top.add_argument("names", nargs="*", metavar="SYMBOL", help="markets (demo's)")
    top.add_argument(
        "--seconds",
        type=number(0, 86_400, low_open=True),
        metavar="S",
        help="quit after this long (never)",
    )
    _flow_flags(top, "market", skip=("--seconds",))
    top.set_defaults(command=_cmd_top, flow="market")
    export = _command(
        commands, "export", "recordings as files backtesters read (Tardis' CSV)"
    )
    export.add_argument(
        "sources",
        nargs="+",
        metavar="RECORDING",
        help="recording files, or kafka:BROKERS/TOPIC",
    )
    export.add_argument(
        "--format", choices=["tardis"], default="tardis", help="tardis (the only one)"
    )
    export.add_argument("--out", required=True, metavar="DIR", help="output folder")
    export.add_argument("--symbols", metavar="A,B", help="only these markets (all)")
    export.set_defaults(command=_cmd_export)
    report = _command(
        commands, "report", "charts of what --parquet DIR wrote, in one HTML file"
    )
    report.add_argument("folder", metavar="DIR", help="what --parquet DIR wrote")
    report.add_argument(
        "--out", default="report.html", metavar="FILE", help="(report.html)"
    )
    report.set_defaults(command=_cmd_report)
    replay = _command(commands, "replay", "print the records of recordings")
    replay.add_argument("files", nargs="+", metavar="FILE", help="recordings")
    replay.add_argument(
        "--speed", type=float, help="pace by receive time (1 = real time; default max)"
    )
    replay.add_argument("--batch", type=int, help="records per batch (10000)")
    replay.add_argument(
        "--quiet", action="store_true", default=None, help="count only, print summary"
    )
    replay.add_argument(
        "--progress-every", type=float, metavar="S", help="progress log period (5)"
    )
    replay.set_defaults(command=_cmd_replay)
    add_sim_commands(commands)
    markets = _command(
        commands, "markets", "list the markets: symbol, type, tick, step, state"
    )
    where = markets.add_mutually_exclusive_group()
    where.add_argument("--live", action="store_true", help="the exchange's markets")
    where.add_argument("--rest", metavar="URL", help="another endpoint's REST URL")
    markets.add_argument("--json", action="store_true", help="one JSON row per line")
    markets.set_defaults(command=_cmd_markets)
    config = _command(commands, "config", "check a settings file")
    actions = config.add_subparsers(required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate a TOML settings file")
    check.add_argument("file", help="the TOML file")
    check.add_argument(
        "--online",
        action="store_true",
        help="also check markets and the key against a live or endpoint source",
    )
    check.set_defaults(command=_cmd_config_check)


# Flags -> settings.


def _settings(
    args: argparse.Namespace, base: Settings, overrides: dict[str, Any]
) -> Settings:
    """``base`` (the file's settings, or the defaults), the flags, ``overrides``."""
    flags: dict[str, Any] = {}
    for dotted in [*_RUN_FLAGS.values(), *_section_keys()]:
        value = (
            getattr(args, _dest(dotted), None) if hasattr(args, _dest(dotted)) else None
        )
        if value is None:
            continue
        if isinstance(value, str) and dotted not in _REPEATED and _is_list(dotted):
            sep = _SEPARATORS.get(dotted, ",")
            value = [x.strip() for x in value.split(sep) if x.strip()]
        flags[dotted] = value
    if getattr(args, "parquet", None):
        sinks = flags.get("outputs.sinks", base.outputs.sinks)
        flags["outputs.sinks"] = [*sinks, f"parquet:{args.parquet}"]
    rest, ws = getattr(args, "rest", None), getattr(args, "ws", None)
    if rest and not ws:
        msg = "--rest goes with --ws (the WebSocket URL of the same endpoint)"
        raise ConfigError(msg)
    if ws and not rest:
        msg = "--ws needs --rest too (the REST base URL for depth snapshots)"
        raise ConfigError(msg)
    replay = getattr(args, "replay", None)
    if getattr(args, "live", False) or ws or replay:
        flags.update(
            {
                "source.kind": "live" if args.live else "endpoint" if ws else "replay",
                "source.ws": ws or ...,
                "source.rest": rest or ...,
                "source.replay": replay or ...,
            }
        )
    return merge_overrides(base, {**flags, **overrides})


def _section_keys() -> list[str]:
    return [f"{kind.NAME}.{name}" for kind, name in flag_fields().values()]


def _is_list(dotted: str) -> bool:
    table, name = dotted.split(".")
    from bpx_flows.registry import SECTIONS

    owner: Any = (
        SECTIONS[table] if table in SECTIONS else type(getattr(Settings(), table))
    )
    hint = typing.get_type_hints(owner, include_extras=True)[name]
    return _describe_type(hint)[3]


def _selection(args: argparse.Namespace, settings_flow: str | None) -> dict[str, Any]:
    """``flow`` and the symbols (or, for the tape, streams) named on the line."""
    names = list(getattr(args, "names", []))
    flow = args.flow
    if flow is None and names and names[0] in FLOWS:
        flow = names.pop(0)
    if flow is None and not getattr(args, "config", None):
        first = f"{names[0]!r} is not a flow; " if names else ""
        msg = (
            f"{first}name a flow first: bpx-flows run FLOW [SYMBOL...] "
            f"({', '.join(FLOWS)})"
        )
        raise ConfigError(msg)
    out: dict[str, Any] = {"flow": flow}
    if names:
        target = "streams" if (flow or settings_flow) == "tape" else "symbols"
        out[target] = names
    return out


# Commands.


def _execute(settings: Settings, verbose: int = 0) -> int:
    from bpx_flows.logs import configure_logging
    from bpx_flows.runner import run

    level = {0: settings.log.level, 1: "info"}.get(verbose, "debug")
    configure_logging(level, settings.log.format, libraries=verbose >= 2)
    return run(settings).code


def _cmd_run(args: argparse.Namespace) -> int:
    if getattr(
        args, "resolved", None
    ):  # a child of a local cluster: settings made by the parent
        from bpx_flows.cluster import watch_parent

        watch_parent()
        data = msgspec.json.decode(Path(args.resolved).read_bytes())
        return _execute(settings_from_data(data, args.resolved), args.verbose)
    return _execute(run_settings(args), args.verbose)


# What top changes from the market flow's defaults (a flag or the file still wins).
_TOP_DEFAULTS: dict[str, Any] = {
    "book.ladder": 12,  # the ladder's levels
    "book.every_ms": 250.0,  # the book redrawn 4 times a second
}
_TOP_SIMULATOR: dict[str, Any] = {  # as demo: a cascade a few seconds in, a burst
    "simulator.cascade_at_s": 6.0,
    "simulator.cascade_symbol": "SOL_USDC_PERP",
    "bursts.min_notional": "500",
    "bursts.min_count": 5,
}


def top_settings(args: argparse.Namespace) -> Settings:
    """The settings of ``top``: the market flow, its ladder, a paced replay.

    Raises:
        ConfigError: a flag whose value cannot work.
    """
    if not args.names and not args.replay and not args.config:
        args.names = list(DEMO_SYMBOLS)
    settings = run_settings(args)
    defaults = dict(_TOP_DEFAULTS)
    if settings.source.kind == "simulator":
        defaults.update(_TOP_SIMULATOR)
    if settings.source.kind == "replay":
        defaults["source.speed"] = 1.0  # real time: a screen to watch
    if _account_shown(settings):
        defaults["account.in_market"] = True  # the account panel
    chosen = {
        key: value
        for key, value in defaults.items()
        if getattr(args, _dest(key), None) is None
    }
    if settings.run.processes > 1 or settings.run.addresses:
        msg = (
            "top draws the flow of its own process: no --processes or --addresses "
            "(--workers N runs N threads here)"
        )
        raise ConfigError(msg)
    return merge_overrides(settings, {**chosen, "outputs.quiet": True})


def _account_shown(settings: Settings) -> bool:
    """Whether top can show an account (the simulator's, a key's, a recording's)."""
    from bpx_flows.connectors.backpack.signing import Credentials
    from bpx_flows.inputs import recorded_streams

    kind = settings.source.kind
    if kind == "simulator":
        return True
    if kind == "replay":
        streams = recorded_streams(settings.source.replay)
        return any(name.startswith("account.") for name in streams)
    return Credentials.from_env() is not None


def _cmd_top(args: argparse.Namespace) -> int:
    from bpx_flows.top import run_top

    settings = top_settings(args)
    kind = settings.source.kind
    where = (
        ", ".join(settings.source.replay) if kind == "replay" else kind
    )  # the header
    return run_top(settings, args.seconds, where)


def _cmd_report(args: argparse.Namespace) -> int:
    from bpx_flows.report import build_report
    from bpx_flows.settings import check_directory

    out = Path(args.out)
    if out.is_dir():
        msg = f"--out: {args.out!r} is a folder; give a file name (report.html)"
        raise ConfigError(msg)
    check_directory("--out", out.parent)
    made = build_report(Path(args.folder), out)
    print(
        f"report: {made.charts} charts of {made.markets} markets in {made.path} "
        f"({made.size_bytes / 1e6:.1f} MB, opens without a network)",
        file=sys.stderr,
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from bpx_flows.exporting import export_command

    return export_command(args.sources, args.out, args.symbols, args.verbose)


def _cmd_record(args: argparse.Namespace) -> int:
    if args.replay:
        if args.names:
            msg = "record --replay copies whole recordings: give no STREAM"
            raise ConfigError(msg)
        from bpx_flows.copying import copy_to_topic
        from bpx_flows.logs import configure_logging

        configure_logging("info" if args.verbose else "warning", "text")
        return copy_to_topic(args.replay, args.out)
    if not args.names:
        msg = "record needs STREAM names (or --replay FILE... to copy recordings)"
        raise ConfigError(msg)
    return _cmd_run(args)


def run_settings(args: argparse.Namespace) -> Settings:
    """The settings a flow command's parsed flags stand for (checked as they merge).

    Raises:
        ConfigError: a flag whose value cannot work.
    """
    base = load_settings(args.config, rules=False) if args.config else Settings()
    overrides = _selection(args, base.flow if args.config else None)
    if getattr(args, "tool", None) == "record":
        overrides.update({"source.record": args.out, "outputs.quiet": True})
    return _settings(args, base, overrides)


def _cmd_demo(args: argparse.Namespace) -> int:
    from bpx_flows.logs import configure_logging
    from bpx_flows.runner import run

    configure_logging("warning", "text")
    outcome = run(demo_settings(args))
    counts = outcome.counts
    ok = counts.get("BookStats") and counts.get("Candle")
    return outcome.code or (0 if ok else 1)


def demo_settings(args: argparse.Namespace) -> Settings:
    """The settings of ``demo``: the market flow with a cascade that alerts.

    Raises:
        ConfigError: a flag whose value cannot work.
    """
    if not 0 < args.seconds <= 86_400:
        msg = f"--seconds: must be in (0, 86400], got {args.seconds}"
        raise ConfigError(msg)
    overrides = {
        "flow": "market",
        "symbols": DEMO_SYMBOLS,
        "source.seconds": args.seconds,
        # A cascade a few seconds in, with thresholds it passes: a burst alert.
        "simulator.cascade_at_s": min(6.0, args.seconds / 3),
        "simulator.cascade_symbol": "SOL_USDC_PERP",
        "simulator.cascade_side": "Ask",
        "bursts.min_notional": "500",
        "bursts.min_count": 5,
        "metrics.port": args.metrics_port,
        "outputs.quiet": args.quiet,
    }
    return merge_overrides(Settings(), overrides)


def _cmd_replay(args: argparse.Namespace) -> int:
    return _execute(replay_settings(args), args.verbose)


def replay_settings(args: argparse.Namespace) -> Settings:
    """The settings of ``replay``: the tape over recordings.

    Raises:
        ConfigError: a flag whose value cannot work.
    """
    overrides = {
        "flow": "tape",
        "source.kind": "replay",
        "source.replay": args.files,
        "source.speed": args.speed,
        "source.batch": args.batch,
        "outputs.quiet": args.quiet,
        "log.progress_every_s": args.progress_every,
    }
    return merge_overrides(Settings(), overrides)


def _cmd_markets(args: argparse.Namespace) -> int:
    """The markets of the simulator (default), the exchange or another endpoint."""
    import asyncio
    import contextlib

    from bpx_flows.connectors.rest import DEFAULT_REST_URL, RestClient
    from bpx_flows.resources import endpoint_for

    async def fetch(url: str) -> list[Any]:
        client = RestClient(url, attempts=2, timeout_s=10.0)
        try:
            return await client.markets()
        finally:
            await client.aclose()

    with contextlib.ExitStack() as stack:
        if args.live or args.rest:
            url = DEFAULT_REST_URL if args.live else args.rest
        else:
            endpoint = stack.enter_context(endpoint_for(Settings()))
            assert endpoint is not None
            url = endpoint.rest
        rows = sorted(asyncio.run(fetch(url)), key=lambda m: m.symbol)
    if args.json:
        for market in rows:
            print(msgspec.json.encode(market).decode())
        return 0
    print(f"{'SYMBOL':<24} {'TYPE':<10} {'TICK':>12} {'STEP':>12}  STATE")
    for m in rows:
        tick, step = m.filters.price.tickSize, m.filters.quantity.stepSize
        state = m.orderBookState
        print(f"{m.symbol:<24} {m.marketType:<10} {tick:>12} {step:>12}  {state}")
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    from bpx_flows.inputs import streams_of
    from bpx_flows.resources import endpoint_for
    from bpx_flows.runner import preflight_for

    settings = validate(load_settings(args.file))
    kind = settings.source.kind
    streams = [] if kind == "replay" else streams_of(settings)
    if streams and (kind == "simulator" or args.online):
        with endpoint_for(settings) as endpoint:
            preflight_for(settings, endpoint)
    run = settings.run
    print(
        f"{args.file}: ok: flow {settings.flow}, {len(settings.symbols)} symbol(s), "
        f"{len(streams)} stream(s), source {kind}, "
        f"{run.processes} process(es) x {run.workers} worker(s)"
        + (f", recovery in {run.recovery_dir}" if run.recovery_dir else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
