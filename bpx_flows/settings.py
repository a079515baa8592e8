"""Run settings: one TOML file (every key optional), checked before anything starts.

::

    flow = "market"                  # market, book, candles, derivatives,
                                     # liquidations, account, tape
    symbols = ["SOL_USDC", "SOL_USDC_PERP"]
    streams = []                     # tape only: stream names

    [source]
    kind = "simulator"               # simulator, live, endpoint, replay
    ws = "ws://127.0.0.1:8765"       # endpoint only
    rest = "http://127.0.0.1:8765"   # endpoint only
    replay = ["session.jsonl.gz"]    # replay only
    speed = 0.0                      # replay pacing; 0 = as fast as possible
    batch = 10000                    # replay: records per Bytewax batch
    seconds = 60.0                   # stop after this long; absent = until stopped

    [run]
    workers = 1                      # per process
    processes = 1                    # local processes (a Bytewax cluster)
    recovery_dir = "state"           # Bytewax state snapshots; absent = none
    snapshot_every_s = 5.0

    [book]       every_ms, window, top_n, bands_bps, max_levels, checksum
    [candles]    intervals, lateness_ms, fill
    [bursts]     min_notional, min_count, multiple
    [account]    margin_alerts, with_book
    [outputs]    sinks, file (exactly once with recovery), alerts, webhook,
                 webhook_format, quiet
    [metrics]    port, host          # process i serves port + i (0: any free port)
    [log]        format ("text" or "json"), level ("warning", "info", "debug")

Errors name the key and the fix (``run.workers: must be >= 1, got 0``), including a
suggestion for a misspelt key. Command-line flags override the file
(``merge_overrides``).
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from bpx_flows.connectors.backpack.streams import KlineInterval
from bpx_flows.connectors.errors import ConfigError

__all__ = [
    "FLOWS",
    "Settings",
    "check_settings",
    "load_settings",
    "merge_overrides",
    "settings_from_builtins",
]

FLOWS = ("market", "book", "candles", "derivatives", "liquidations", "account", "tape")
SOURCE_KINDS = ("simulator", "live", "endpoint", "replay")


class _Section(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class SourceSettings(_Section, kw_only=True):
    """Where records come from."""

    kind: str = "simulator"
    ws: str | None = None
    rest: str | None = None
    replay: list[str] = msgspec.field(default_factory=list)
    speed: float = 0.0
    # Bytewax's cost is per batch, and in a cluster every batch also costs progress
    # messages between processes: bigger batches, more throughput, more latency.
    batch: int = 10_000
    seconds: float | None = None


class RunSettings(_Section, kw_only=True):
    """How Bytewax runs the flow."""

    workers: int = 1
    processes: int = 1
    process_id: int | None = None
    addresses: list[str] = msgspec.field(default_factory=list)
    recovery_dir: str | None = None
    snapshot_every_s: float = 5.0


class BookSettings(_Section, kw_only=True):
    """The book operator (see ``operators.book_state.BookConfig``)."""

    every_ms: float = 1000.0
    window: str = ""
    top_n: int = 5
    bands_bps: list[int] = msgspec.field(default_factory=lambda: [10, 25, 50, 100])
    max_levels: int | None = 5_000
    checksum: bool = False


class CandleSettings(_Section, kw_only=True):
    """The candle flow."""

    intervals: list[str] = msgspec.field(default_factory=lambda: ["1s", "1m"])
    lateness_ms: int = 2_000
    fill: bool = False


class BurstSettings(_Section, kw_only=True):
    """The liquidation burst detector."""

    min_notional: Decimal = Decimal(50_000)
    min_count: int = 5
    multiple: Decimal = Decimal(5)


class AccountSettings(_Section, kw_only=True):
    """The account flow."""

    margin_alerts: list[Decimal] = msgspec.field(
        default_factory=lambda: [Decimal("0.8"), Decimal("0.9")]
    )
    with_book: bool = False


class OutputSettings(_Section, kw_only=True):
    """Where results go besides the console."""

    sinks: list[str] = msgspec.field(default_factory=list)
    file: str | None = None
    alerts: str | None = None
    webhook: str | None = None
    webhook_format: str = "json"
    quiet: bool = False


class MetricsSettings(_Section, kw_only=True):
    """The Prometheus exporter."""

    port: int | None = None
    host: str = "127.0.0.1"


class LogSettings(_Section, kw_only=True):
    """Logging."""

    format: str = "text"
    level: str = "info"


class Settings(_Section, kw_only=True):
    """Everything a run needs; every key has a default."""

    flow: str = "market"
    symbols: list[str] = msgspec.field(default_factory=lambda: ["SOL_USDC_PERP"])
    streams: list[str] = msgspec.field(default_factory=list)
    source: SourceSettings = msgspec.field(default_factory=SourceSettings)
    run: RunSettings = msgspec.field(default_factory=RunSettings)
    book: BookSettings = msgspec.field(default_factory=BookSettings)
    candles: CandleSettings = msgspec.field(default_factory=CandleSettings)
    bursts: BurstSettings = msgspec.field(default_factory=BurstSettings)
    account: AccountSettings = msgspec.field(default_factory=AccountSettings)
    outputs: OutputSettings = msgspec.field(default_factory=OutputSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)


def load_settings(path: str | Path) -> Settings:
    """Read and check a TOML settings file.

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
        settings = msgspec.toml.decode(text, type=Settings)
    except msgspec.ValidationError as exc:
        msg_0 = f"{path}: {_explain(str(exc))}"
        raise ConfigError(msg_0) from None
    except msgspec.DecodeError as exc:
        msg = f"{path}: not valid TOML ({exc})"
        raise ConfigError(msg) from None
    check_settings(settings, str(path))
    return settings


def settings_from_builtins(data: Any, where: str = "settings") -> Settings:
    """Settings from plain data (e.g. JSON handed to a child process), checked."""
    try:
        settings = msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        msg = f"{where}: {_explain(str(exc))}"
        raise ConfigError(msg) from None
    check_settings(settings, where)
    return settings


def merge_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """``settings`` with dotted keys replaced (``{"run.workers": 2}``), checked.

    ``None`` values are skipped: a flag that was not given does not override. ``...``
    removes the key (back to its default).
    """
    data = msgspec.to_builtins(settings)
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
    return settings_from_builtins(data, "command line")


# Checks beyond types.

_PATH = re.compile(r"at `\$\.?([^`]*)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")


def _explain(error: str) -> str:
    """Say a msgspec validation error in our words: the dotted key, then the problem."""
    where = _PATH.search(error)
    key = where.group(1).replace("[", ".").replace("]", "") if where else ""
    problem = error.split(" - at ", maxsplit=1)[0]
    unknown = _UNKNOWN.search(problem)
    if unknown:
        name = unknown.group(1)
        section = _section_of(key)
        full = f"{key}.{name}" if key else name
        close = difflib.get_close_matches(name, section, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(section))
        return f"{full}: unknown key{hint} (known here: {known})"
    problem = problem.replace("Expected", "expected").replace("`", "")
    return f"{key}: {problem}" if key else problem


def _section_of(key: str) -> list[str]:
    struct: Any = Settings
    for part in [p for p in key.split(".") if p]:
        field_type = {f.name: f.type for f in msgspec.structs.fields(struct)}.get(part)
        if not isinstance(field_type, type) or not issubclass(field_type, _Section):
            return []
        struct = field_type
    return [f.name for f in msgspec.structs.fields(struct)]


def check_settings(settings: Settings, where: str = "settings") -> None:
    """Reject values that type-check but cannot work, naming the key and the fix."""
    problems = list(_problems(settings))
    if problems:
        key, problem = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        msg = f"{where}: {key}: {problem}{more}"
        raise ConfigError(msg)


def _problems(s: Settings) -> Any:
    if s.flow not in FLOWS:
        yield "flow", f"{s.flow!r} is not a flow; choose one of {', '.join(FLOWS)}"
    if s.flow == "tape" and not s.streams and s.source.kind != "replay":
        yield "streams", "the tape flow needs stream names, e.g. ['trade.SOL_USDC']"
    if s.flow not in ("tape", "liquidations", "account") and not s.symbols:
        yield "symbols", "give at least one market, e.g. ['SOL_USDC']"
    yield from _source_problems(s.source)
    run = s.run
    if run.workers < 1:
        yield "run.workers", f"must be >= 1, got {run.workers}"
    if run.processes < 1:
        yield "run.processes", f"must be >= 1, got {run.processes}"
    if run.process_id is not None:
        if not run.addresses:
            yield "run.addresses", "a process id needs the cluster's addresses"
        elif not 0 <= run.process_id < len(run.addresses):
            yield (
                "run.process_id",
                f"{run.process_id} is not an index into the "
                f"{len(run.addresses)} addresses",
            )
        if run.processes > 1:
            yield "run.processes", "give either processes or process_id/addresses"
    elif run.addresses:
        yield "run.process_id", "addresses need this process's id (0, 1, ...)"
    if run.snapshot_every_s <= 0:
        yield "run.snapshot_every_s", f"must be > 0, got {run.snapshot_every_s}"
    yield from _analytics_problems(s)
    out = s.outputs
    if out.webhook_format not in ("json", "slack", "discord"):
        yield "outputs.webhook_format", "choose json, slack or discord"
    if s.metrics.port is not None and not 0 <= s.metrics.port <= 65_535:
        yield "metrics.port", f"{s.metrics.port} is not a TCP port (0 picks a free one)"
    if s.log.format not in ("text", "json"):
        yield "log.format", f"{s.log.format!r}: choose text or json"
    if s.log.level not in ("debug", "info", "warning", "error"):
        yield "log.level", f"{s.log.level!r}: choose debug, info, warning or error"


def _source_problems(src: SourceSettings) -> Any:
    if src.kind not in SOURCE_KINDS:
        yield "source.kind", f"{src.kind!r}: choose one of {', '.join(SOURCE_KINDS)}"
    if src.kind == "endpoint" and not (src.ws and src.rest):
        yield "source.ws", "an endpoint source needs both source.ws and source.rest"
    if src.kind != "endpoint" and (src.ws or src.rest):
        yield "source.kind", "source.ws/source.rest are set: set kind = 'endpoint'"
    if src.kind == "replay" and not src.replay:
        yield "source.replay", "a replay source needs recording files"
    if src.kind != "replay" and src.replay:
        yield "source.kind", "source.replay is set: set kind = 'replay'"
    for path in src.replay:
        if not Path(path).is_file():
            yield "source.replay", f"no such recording: {path}"
    if src.speed < 0:
        yield "source.speed", f"must be >= 0 (0 = as fast as possible), got {src.speed}"
    if src.batch < 1:
        yield "source.batch", f"must be >= 1 (records per batch), got {src.batch}"
    if src.seconds is not None and src.seconds <= 0:
        yield "source.seconds", f"must be > 0, got {src.seconds}"
    if src.seconds is not None and src.kind == "replay":
        yield "source.seconds", "a replay ends with its recordings; remove seconds"


def _analytics_problems(s: Settings) -> Any:
    book = s.book
    if book.every_ms < 0:
        yield (
            "book.every_ms",
            f"must be >= 0 (0 = after every update), got {book.every_ms}",
        )
    if book.window not in ("", "200ms", "600ms", "1000ms"):
        yield "book.window", f"{book.window!r}: choose '', '200ms', '600ms' or '1000ms'"
    if book.top_n < 1:
        yield "book.top_n", f"must be >= 1, got {book.top_n}"
    if any(b <= 0 for b in book.bands_bps):
        yield "book.bands_bps", f"bands must be > 0 bps, got {book.bands_bps}"
    if book.max_levels is not None and book.max_levels < 1:
        yield "book.max_levels", f"must be >= 1, got {book.max_levels}"
    for text in s.candles.intervals:
        try:
            KlineInterval(text)
        except ValueError:
            names = ", ".join(i.value for i in KlineInterval)
            yield (
                "candles.intervals",
                f"{text!r} is not an interval; choose from {names}",
            )
    if not s.candles.intervals:
        yield "candles.intervals", "give at least one interval, e.g. ['1m']"
    if s.candles.lateness_ms < 0:
        yield "candles.lateness_ms", f"must be >= 0, got {s.candles.lateness_ms}"
    bursts = s.bursts
    if bursts.min_notional < 0 or bursts.min_count < 1 or bursts.multiple <= 0:
        yield (
            "bursts",
            "min_notional must be >= 0, min_count >= 1 and multiple > 0",
        )
    if any(level <= 0 for level in s.account.margin_alerts):
        yield "account.margin_alerts", "levels must be > 0, e.g. [0.8, 0.9]"
    if s.account.with_book and not s.symbols:
        yield "account.with_book", "needs symbols: a book is kept per named market"
