"""Run settings: one TOML file (every key optional), checked once, before starting.

::

    flow = "market"                  # a flow of the registry (bpx-flows run --help)
    symbols = ["SOL_USDC", "SOL_USDC_PERP"]   # empty: every recorded market (replay)
    streams = []                     # tape only: stream names

    [source]
    kind = "simulator"               # simulator, live, endpoint, replay
    ws = "ws://127.0.0.1:8765"       # endpoint only
    rest = "http://127.0.0.1:8765"   # endpoint only
    replay = ["session.jsonl.gz"]    # replay only (or one "kafka:BROKERS/TOPIC")
    follow = false                   # a kafka replay: keep reading past the end
    speed = 0.0                      # replay pacing; 0 = as fast as possible
    batch = 10000                    # replay: records per Bytewax batch
    seconds = 60.0                   # stop after this long; absent = until stopped
    per_connection = 50              # live: streams per WebSocket connection
    record = "rec.jsonl.gz"          # live: also record every raw frame (or kafka:)
    compression = false              # live: offer permessage-deflate
    trade_backfill = true            # live: fetch back trades a gap lost (REST)

    [simulator]  seed, rate_scale, faults, cascade_at_s, cascade_symbol, cascade_side
    [run]        workers, processes, process_id, addresses, recovery_dir,
                 snapshot_every_s
    [outputs]    sinks, file (exactly once with recovery), alerts, webhook,
                 webhook_format, quiet
    [metrics]    port, host          # process i serves port + i (0: any free port)
    [log]        format ("text" or "json"), level ("warning", "info", "debug")

and one table per flow section (``[book]``, ``[candles]``, ``[bursts]``,
``[account]``), declared by the flows themselves (``flows/*.py``, ``Section``).

Three stages, each ending in one line that names the key and the fix
(``run.workers: expected int >= 1, got 0``): types and limits (msgspec, with the
limits declared on the fields, so NaN and infinities fail as well), rules across
keys (``problems``), then what the machine must allow (``check_environment``:
files, directories, ports, the signing key). ``config check`` and ``run`` call the
same ``validate``, so a file that checks runs.

(Over 450 lines: the schema and its three stages of checks are read together, so
a key's limits, rules and environment check sit beside its declaration.)
"""

from __future__ import annotations

import difflib
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from bpx_flows.connectors.clock import WakeTimes
from bpx_flows.connectors.errors import ConfigError
from bpx_flows.flows.keys import Route
from bpx_flows.flows.spec import FlowContext, Section
from bpx_flows.registry import FLOWS, SECTIONS

__all__ = [
    "Settings",
    "check_environment",
    "flow_context",
    "load_settings",
    "merge_overrides",
    "settings_from_data",
    "settings_to_data",
    "validate",
]

SourceKind = Literal["simulator", "live", "endpoint", "replay"]
S = TypeVar("S", bound=Section)


class _Table(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


def _m(description: str, **limits: Any) -> msgspec.Meta:
    return msgspec.Meta(description=description, **limits)


class SourceSettings(_Table, frozen=True):
    """Where records come from."""

    kind: Annotated[SourceKind, _m("simulator, live, endpoint or replay")] = "simulator"
    ws: Annotated[str | None, _m("WebSocket URL (endpoint)")] = None
    rest: Annotated[str | None, _m("REST base URL (endpoint)")] = None
    replay: Annotated[
        list[str], _m("recordings to replay (files, or one kafka:BROKERS/TOPIC)")
    ] = msgspec.field(default_factory=list)
    follow: Annotated[
        bool, _m("replay of a kafka topic: keep reading past its end (a live flow)")
    ] = False
    speed: Annotated[
        float, _m("replay pacing, x real time (0: as fast as possible)", ge=0, le=1e6)
    ] = 0.0
    # Bytewax's cost is per batch, and in a cluster every batch also costs progress
    # messages between processes: bigger batches, more throughput, more latency.
    batch: Annotated[int, _m("replay: records per batch", ge=1, le=1_000_000)] = 10_000
    seconds: Annotated[
        Annotated[float, msgspec.Meta(gt=0, le=1e9)] | None,
        _m("stop a live run after this long, s"),
    ] = None
    per_connection: Annotated[
        int, _m("live: streams per WebSocket connection", ge=1, le=1_000)
    ] = 50
    record: Annotated[
        str | None,
        _m("live: record every raw frame to this file (or kafka:BROKERS/TOPIC)"),
    ] = None
    compression: Annotated[
        bool, _m("live: offer permessage-deflate (less bandwidth, more CPU)")
    ] = False
    trade_backfill: Annotated[
        bool,
        _m("live: fetch trades a gap in trade ids lost from REST (candles correct)"),
    ] = True


class SimulatorSettings(_Table, frozen=True):
    """The built-in simulator (``source.kind = "simulator"``)."""

    seed: Annotated[int, _m("simulator: random seed", ge=0, le=2**32 - 1)] = 7
    rate_scale: Annotated[float, _m("x event rates", gt=0, le=1_000)] = 1.0
    faults: Annotated[list[str], _m("simulator: arm a fault, e.g. drop:after=500")] = (
        msgspec.field(default_factory=list)
    )
    cascade_at_s: Annotated[
        Annotated[float, msgspec.Meta(ge=0, le=86_400)] | None,
        _m("a liquidation cascade this many seconds in"),
    ] = None
    cascade_symbol: Annotated[str, _m("the cascade's market")] = "SOL_USDC_PERP"
    cascade_side: Annotated[Literal["Bid", "Ask"], _m("the cascade's side")] = "Ask"


class RunSettings(_Table, frozen=True):
    """How Bytewax runs the flow."""

    workers: Annotated[int, _m("Bytewax workers per process", ge=1, le=256)] = 1
    processes: Annotated[int, _m("local processes (a cluster)", ge=1, le=64)] = 1
    process_id: Annotated[
        Annotated[int, msgspec.Meta(ge=0, le=1023)] | None,
        _m("this process in addresses"),
    ] = None
    addresses: Annotated[list[str], _m("every process: host:port")] = msgspec.field(
        default_factory=list
    )
    recovery_dir: Annotated[str | None, _m("Bytewax state snapshots")] = None
    snapshot_every_s: Annotated[float, _m("snapshot interval, s", gt=0, le=86_400)] = (
        5.0
    )


class OutputSettings(_Table, frozen=True):
    """Where results go besides the console."""

    sinks: Annotated[
        list[str],
        _m(
            "a sink for the outputs: stdout:json, jsonl:PATH[,max_mb=N], "
            "parquet:DIR, webhook:URL, kafka:BROKERS/TOPIC or a plugin"
        ),
    ] = msgspec.field(default_factory=list)
    file: Annotated[str | None, _m("every output as JSON Lines, exactly once")] = None
    alerts: Annotated[str | None, _m("also append alerts as JSON Lines")] = None
    webhook: Annotated[str | None, _m("also POST alerts to this URL")] = None
    webhook_format: Annotated[
        Literal["json", "slack", "discord"], _m("the webhook's body")
    ] = "json"
    quiet: Annotated[bool, _m("print alerts only")] = False


class MetricsSettings(_Table, frozen=True):
    """The Prometheus exporter."""

    port: Annotated[
        Annotated[int, msgspec.Meta(ge=0, le=65_535)] | None,
        _m("serve metrics on this port (0: a free one)"),
    ] = None
    host: Annotated[str, _m("address to serve metrics on")] = "127.0.0.1"


class LogSettings(_Table, frozen=True):
    """Logging."""

    format: Annotated[Literal["text", "json"], _m("text or json lines")] = "text"
    level: Annotated[
        Literal["debug", "info", "warning", "error"],
        _m("least severe level shown (replay progress shows unless error)"),
    ] = "warning"
    progress_every_s: Annotated[
        float, _m("replay progress at most this often, s", gt=0, le=3_600)
    ] = 5.0


class Settings(_Table, frozen=True):
    """Everything a run needs; every key has a default.

    ``sections`` holds the flow sections (``[book]``...) by name, each at its
    defaults unless the file or the flags gave it.
    """

    flow: str = "market"
    symbols: list[str] = msgspec.field(default_factory=list)
    streams: list[str] = msgspec.field(default_factory=list)
    source: SourceSettings = msgspec.field(default_factory=SourceSettings)
    simulator: SimulatorSettings = msgspec.field(default_factory=SimulatorSettings)
    run: RunSettings = msgspec.field(default_factory=RunSettings)
    outputs: OutputSettings = msgspec.field(default_factory=OutputSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    sections: dict[str, Any] = msgspec.field(default_factory=dict)

    def section(self, kind: type[S]) -> S:
        """The value of a flow section (its defaults when not given)."""
        value = self.sections.get(kind.NAME)
        return value if isinstance(value, kind) else kind()

    @property
    def workers_total(self) -> int:
        """Workers in the whole cluster."""
        return self.run.workers * max(len(self.run.addresses), 1)


_TABLES = [f.name for f in msgspec.structs.fields(Settings) if f.name != "sections"]


# Decoding.


def load_settings(path: str | Path, rules: bool = True) -> Settings:
    """Read a TOML settings file and check its types, limits and (``rules``) rules.

    The command line loads a file with ``rules=False`` and checks the rules once
    its flags are merged in (a file may leave the symbols to the command line).

    Raises:
        ConfigError: unreadable file, bad TOML, unknown key, wrong type, bad value;
            the message names the file, the key and the fix.
    """
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        msg = f"cannot read the settings file {str(path)!r}: {exc.strerror}"
        raise ConfigError(msg) from None
    try:
        data = msgspec.toml.decode(text)
    except msgspec.DecodeError as exc:
        msg = f"{path}: not valid TOML ({exc})"
        raise ConfigError(msg) from None
    if not isinstance(data, dict):
        msg = f"{path}: not a TOML table"
        raise ConfigError(msg)
    return settings_from_data(data, str(path), rules)


def settings_from_data(
    data: dict[str, Any], where: str = "settings", rules: bool = True
) -> Settings:
    """Settings from plain data (TOML, JSON handed to a child, flags), checked.

    Strings are accepted for numbers and booleans (flags arrive as text).
    """
    data = dict(data)
    unknown = [k for k in data if k not in _TABLES and k not in SECTIONS]
    if unknown:
        name = unknown[0]
        known = sorted([*_TABLES, *SECTIONS])
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        msg = f"{where}: {name}: unknown key{hint} (known: {', '.join(known)})"
        raise ConfigError(msg)
    sections = {}
    for name, kind in SECTIONS.items():
        sections[name] = _convert(data.pop(name, {}), kind, where, name)
    settings = _convert(data, Settings, where, "")
    settings = msgspec.structs.replace(settings, sections=sections)
    problems = list(_problems(settings)) if rules else []
    if problems:
        key, problem = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        msg = f"{where}: {key}: {problem}{more}"
        raise ConfigError(msg)
    return settings


def settings_to_data(settings: Settings) -> dict[str, Any]:
    """Plain data that ``settings_from_data`` turns back into ``settings``."""
    data: dict[str, Any] = msgspec.to_builtins(settings)
    sections = data.pop("sections", {})
    data.update({name: value for name, value in sections.items() if value})
    return data


def merge_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """``settings`` with dotted keys replaced (``{"run.workers": 2}``), checked.

    ``None`` values are skipped: a flag that was not given does not override. ``...``
    removes the key (back to its default).
    """
    data = settings_to_data(settings)
    for dotted, value in overrides.items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        target = data
        for parent in parents:
            target = target.setdefault(parent, {})
        if value is ...:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return settings_from_data(data, "command line")


T = TypeVar("T")

_PATH = re.compile(r"at `\$\.?([^`]*)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def _convert(data: Any, kind: type[T], where: str, prefix: str) -> T:
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        explained = _explain(str(exc), kind, prefix)
        found = _PATH.search(str(exc))
        value = _value_at(data, found.group(1) if found else "")
        if value is not None and "unknown key" not in explained:
            # msgspec names the type it got ("expected int, got str"): say the value.
            explained = re.sub(r", got \w+$", "", explained) + f", got {value}"
        msg = f"{where}: {explained}"
        raise ConfigError(msg) from None


def _value_at(data: Any, path: str) -> Any:
    """The value at a msgspec error path (``run.workers``, ``bands_bps[2]``)."""
    for part in [p for p in re.split(r"[.\[\]]", path) if p]:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return None if isinstance(data, dict | list) else data


def _explain(error: str, kind: type[Any], prefix: str) -> str:
    """Say a msgspec validation error in our words: the dotted key, then the problem."""
    found = _PATH.search(error)
    path = found.group(1).replace("[", ".").replace("]", "") if found else ""
    key = ".".join(p for p in (prefix, path) if p)
    problem = error.split(" - at ", maxsplit=1)[0]
    unknown = _UNKNOWN.search(problem)
    if unknown:
        name = unknown.group(1)
        fields = _fields_at(kind, path)
        full = f"{key}.{name}" if key else name
        close = difflib.get_close_matches(name, fields, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{full}: unknown key{hint} (known here: {', '.join(sorted(fields))})"
    problem = problem.replace("Expected", "expected").replace("`", "")
    return f"{key}: {problem}" if key else problem


def _fields_at(kind: type[Any], path: str) -> list[str]:
    struct: Any = kind
    for part in [p for p in path.split(".") if p]:
        types = {f.name: f.type for f in msgspec.structs.fields(struct)}
        field_type = types.get(part)
        if not isinstance(field_type, type) or not issubclass(
            field_type, msgspec.Struct
        ):
            return []
        struct = field_type
    return [f.name for f in msgspec.structs.fields(struct)]


def flow_context(s: Settings, route: Route | None = None) -> FlowContext:
    """What the flow's spec functions get from these settings."""
    return FlowContext(
        symbols=tuple(s.symbols),
        streams=tuple(s.streams),
        sections={type(v): v for v in s.sections.values()},
        replay=s.source.kind == "replay",
        route=route,
    )


def history_s(s: Settings) -> float:
    """Seconds of kline history the flow of ``s`` asks the source for at start."""
    spec = FLOWS[s.flow]
    return spec.history_s(flow_context(s)) if spec.history_s else 0.0


def wake_times(s: Settings) -> WakeTimes | None:
    """When the timers of the flow of ``s`` come due, live (the source wakes then)."""
    spec = FLOWS[s.flow]
    return spec.wakes(flow_context(s)) if spec.wakes else None


# Rules across keys.


def _problems(s: Settings) -> Iterator[tuple[str, str]]:
    spec = FLOWS.get(s.flow)
    if spec is None:
        yield "flow", f"{s.flow!r} is not a flow; choose one of {', '.join(FLOWS)}"
        return
    yield from _source_problems(s.source)
    yield from _run_problems(s)
    yield from _sink_problems(s)
    replay = s.source.kind == "replay"
    if spec.symbols == "streams":
        if not s.streams and not replay:
            yield "streams", "the tape needs stream names, e.g. ['trade.SOL_USDC']"
    elif spec.symbols == "required" and not s.symbols and not replay:
        yield "symbols", "give at least one market, e.g. SOL_USDC"
    if spec.markets == "perp":
        spot = [x for x in s.symbols if not x.endswith("_PERP")]
        if spot:
            yield (
                "symbols",
                f"the {s.flow} flow is for perpetuals (*_PERP); {', '.join(spot)} "
                "is not one",
            )
    # Every section given is checked, also one this flow does not read: a value
    # that cannot work is a mistake wherever it was written.
    given = {SECTIONS[n] for n in s.sections if n in SECTIONS}
    for kind in sorted({*spec.sections, *given}, key=lambda k: k.NAME):
        for key, problem in s.section(kind).problems():
            yield f"{kind.NAME}.{key}", problem
    if spec.check is not None:
        yield from spec.check(flow_context(s))


def _source_problems(src: SourceSettings) -> Iterator[tuple[str, str]]:
    if src.kind == "endpoint" and not (src.ws and src.rest):
        yield "source.ws", "an endpoint source needs both source.ws and source.rest"
    if src.kind != "endpoint" and (src.ws or src.rest):
        yield "source.kind", "source.ws/source.rest are set: set kind = 'endpoint'"
    for key, url, schemes in (
        ("source.ws", src.ws, ("ws://", "wss://")),
        ("source.rest", src.rest, ("http://", "https://")),
    ):
        if url and not url.startswith(schemes):
            yield key, f"{url!r} is not a {' or '.join(schemes)} URL"
    if src.kind == "replay" and not src.replay:
        yield "source.replay", "a replay source needs recording files"
    if src.kind != "replay" and src.replay:
        yield "source.kind", "source.replay is set: set kind = 'replay'"
    if src.seconds is not None and src.kind == "replay" and not src.follow:
        yield "source.seconds", "a replay ends with its recordings; remove seconds"
    if src.record and src.kind == "replay":
        yield "source.record", "a replay is a recording already; remove record"
    yield from _kafka_problems(src)


def _kafka_problems(src: SourceSettings) -> Iterator[tuple[str, str]]:
    from bpx_flows.connectors.kafka.spec import parse_kafka

    topics = [r for r in src.replay if r.startswith("kafka:")]
    if topics and len(src.replay) > 1:
        yield "source.replay", "a kafka topic is replayed alone (no other recording)"
    for text in [*topics, *([src.record] if src.record else [])]:
        key = "source.replay" if text in topics else "source.record"
        if text.startswith("kafka:"):
            try:
                spec = parse_kafka(text.removeprefix("kafka:"))
            except ConfigError as exc:
                yield key, str(exc)
                continue
            if "{kind}" in spec.topic:
                yield key, "{kind} names topics of records, not of the raw feed"
    if src.follow and not topics:
        yield "source.follow", "follow needs a topic: --replay kafka:BROKERS/TOPIC"


def _run_problems(s: Settings) -> Iterator[tuple[str, str]]:
    run = s.run
    if run.process_id is not None:
        if not run.addresses:
            yield "run.addresses", "a process id needs the cluster's addresses"
        elif run.process_id >= len(run.addresses):
            yield (
                "run.process_id",
                f"{run.process_id} is not an index into the "
                f"{len(run.addresses)} addresses",
            )
        if run.processes > 1:
            yield "run.processes", "give either processes or process_id/addresses"
    elif run.addresses:
        yield "run.process_id", "addresses need this process's id (0, 1, ...)"
    for address in run.addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65_536:
            yield "run.addresses", f"{address!r} is not host:port"
    if s.metrics.port and s.metrics.port + max(run.processes, len(run.addresses)) > (
        65_536
    ):
        yield "metrics.port", f"{s.metrics.port} + process ids passes 65535"


def _sink_problems(s: Settings) -> Iterator[tuple[str, str]]:
    from bpx_flows.connectors.sinks.registry import check_spec

    for text in s.outputs.sinks:
        try:
            check_spec(text)
        except ConfigError as exc:
            yield "outputs.sinks", str(exc)


# What the machine must allow.


def validate(settings: Settings) -> Settings:
    """Everything ``run`` needs to hold before it starts (``config check`` too)."""
    check_environment(settings)
    return settings


def check_environment(s: Settings) -> None:
    """Files, directories, ports and the key.

    Raises:
        ConfigError: the first problem, naming the key and the fix.
    """
    from bpx_flows.connectors.backpack.signing import Credentials
    from bpx_flows.connectors.recording import read_header

    for recording in s.source.replay:
        if not recording.startswith("kafka:"):
            read_header(recording)  # exists, and is a recording
    for key, path in (
        ("outputs.file", s.outputs.file),
        ("outputs.alerts", s.outputs.alerts),
        ("source.record", s.source.record),
    ):
        if path and not path.startswith("kafka:"):
            _check_writable_file(key, Path(path))
    for spec in s.outputs.sinks:
        name, _, argument = spec.partition(":")
        target = argument.split(",")[0]
        if name == "jsonl" and target:
            _check_writable_file(f"outputs.sinks ({spec})", Path(target))
        elif name == "parquet" and target:
            check_directory(f"outputs.sinks ({spec})", Path(target))
    if s.run.recovery_dir:
        check_directory("run.recovery_dir", Path(s.run.recovery_dir))
    Credentials.from_env()  # a set key must be valid, whatever the streams
    port = s.metrics.port
    if port:
        ids = range(s.run.processes) if s.run.processes > 1 else [s.run.process_id or 0]
        for pid in ids:
            _check_port_free(s.metrics.host, port + pid)


def _check_writable_file(key: str, path: Path) -> None:
    if path.is_dir():
        msg = f"{key}: {str(path)!r} is a directory; give a file name"
        raise ConfigError(msg)
    if path.exists() and not path.is_file():
        msg = f"{key}: {str(path)!r} is not a regular file (it is truncated on resume)"
        raise ConfigError(msg)
    parent = path.parent
    check_directory(key, parent)
    if path.exists() and not os.access(path, os.W_OK):
        msg = f"{key}: {str(path)!r} is not writable"
        raise ConfigError(msg)


def check_directory(key: str, path: Path) -> None:
    """``path`` exists as a writable directory or can be created."""
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        msg = f"{key}: {str(existing)!r} is not a directory, so {str(path)!r} cannot be"
        raise ConfigError(msg)
    if not os.access(existing, os.W_OK | os.X_OK):
        msg = f"{key}: cannot create or write {str(path)!r} ({existing} is read-only)"
        raise ConfigError(msg)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as sock:
        # As the metrics server binds (SO_REUSEADDR): a port whose last scrapes
        # linger in TIME_WAIT after a restart is free; one that a process serves is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            msg = (
                f"metrics.port: cannot serve on {host}:{port} ({exc.strerror}); "
                "choose another port, or 0 for a free one"
            )
            raise ConfigError(msg) from None
