"""Sinks by name: ``--sink SPEC`` on the command line, plugins by entry point.

A spec is ``NAME`` or ``NAME:ARGUMENT``; options follow the argument after commas:

| spec | sink |
| --- | --- |
| ``stdout`` / ``stdout:json`` | one line per record, human-readable / JSON |
| ``jsonl:PATH[,max_mb=N][,every_s=N]`` | JSON Lines file, rotated by size or age |
| ``parquet:DIR`` | every record to Parquet: a dataset per kind, by symbol and date |
| ``webhook:URL[,format=json|slack|discord]`` | POST (alerts), queued, retried |
| ``kafka:BROKERS/TOPIC[,acks=A][,compression=C][,timeout_s=S]`` | Kafka (kafka.py) |

Third-party sinks: a package declares an entry point in the group
``bpx_flows.sinks``; its name is the spec name and it is called with the argument
string (``""`` when none) and must return a Bytewax ``DynamicSink``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from bytewax.outputs import DynamicSink

from ..errors import ConfigError
from ..kinds import record_json
from .webhook import plain_line

__all__ = ["ENTRY_POINT_GROUP", "SinkContext", "check_spec", "make_sink", "sink_names"]

ENTRY_POINT_GROUP = "bpx_flows.sinks"
Render = Callable[[Any], str]


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What the program gives the sinks it makes.

    Attributes:
        render: a record's text line (``stdout``, webhook formats).
        on_fatal: called by a sink that cannot go on (Kafka: records not
            delivered), e.g. the run's ``StopSignal.set``; ``None``: nothing.
    """

    render: Render = plain_line
    on_fatal: Callable[[], None] | None = None


Factory = Callable[[str, SinkContext], DynamicSink[Any]]


def _split(argument: str) -> tuple[str, dict[str, str]]:
    head, *rest = argument.split(",")
    options = {}
    for item in rest:
        key, sep, value = item.partition("=")
        if not sep:
            msg = f"sink option {item!r} is not key=value"
            raise ConfigError(msg)
        options[key.strip()] = value.strip()
    return head, options


def _stdout(argument: str, context: SinkContext) -> DynamicSink[Any]:
    from .stdout import LineSink

    if argument not in ("", "json", "text"):
        msg = f"stdout takes 'json' or nothing, not {argument!r}"
        raise ConfigError(msg)
    if argument == "json":
        return LineSink(lambda item: record_json(item).decode())
    return LineSink(context.render)


def _jsonl(argument: str, context: SinkContext) -> DynamicSink[Any]:
    from .jsonl import JsonLinesSink

    path, options = _split(argument)
    if not path:
        msg = "jsonl needs a path: jsonl:alerts.jsonl"
        raise ConfigError(msg)
    try:
        max_mb = float(options.pop("max_mb")) if "max_mb" in options else None
        every_s = float(options.pop("every_s")) if "every_s" in options else None
    except ValueError as exc:
        msg = f"jsonl options must be numbers: {exc}"
        raise ConfigError(msg) from None
    _no_more(options, "jsonl")
    max_bytes = int(max_mb * 1024 * 1024) if max_mb is not None else None
    return JsonLinesSink(path, max_bytes=max_bytes, every_s=every_s)


def _parquet(argument: str, context: SinkContext) -> DynamicSink[Any]:
    from .parquet import ParquetSink

    if not argument:
        msg = "parquet needs a directory: parquet:data/parquet"
        raise ConfigError(msg)
    return ParquetSink(argument)


def _webhook(argument: str, context: SinkContext) -> DynamicSink[Any]:
    from .webhook import WebhookConfig, WebhookSink

    url, options = _split(argument)
    if not url.startswith(("http://", "https://")):
        msg = f"webhook needs an http(s) URL, not {url!r}"
        raise ConfigError(msg)
    style = options.pop("format", "json")
    if style not in ("json", "slack", "discord"):
        msg = f"webhook format must be json, slack or discord, not {style!r}"
        raise ConfigError(msg)
    _no_more(options, "webhook")
    return WebhookSink(WebhookConfig(url, format=style), render=context.render)


def _kafka(argument: str, context: SinkContext) -> DynamicSink[Any]:
    from .kafka import KafkaSink, parse_kafka

    return KafkaSink(parse_kafka(argument), on_fatal=context.on_fatal)


_BUILT_IN: dict[str, Factory] = {
    "stdout": _stdout,
    "jsonl": _jsonl,
    "parquet": _parquet,
    "webhook": _webhook,
    "kafka": _kafka,
}


def _no_more(options: dict[str, str], name: str) -> None:
    if options:
        msg = f"unknown {name} option(s): {', '.join(sorted(options))}"
        raise ConfigError(msg)


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def sink_names() -> list[str]:
    """Built-in and installed sink names."""
    return sorted({*_BUILT_IN, *_plugins()})


def make_sink(spec: str, context: SinkContext | None = None) -> DynamicSink[Any]:
    """The sink a spec names.

    Args:
        spec: ``NAME[:ARGUMENT]``.
        context: the record's text line and the run's stop (``None``: a line is
            the record's ``repr``, and nothing stops the run).

    Raises:
        ConfigError: unknown name (listing the known ones) or a bad argument.
    """
    name, _, argument = spec.partition(":")
    built_in = _BUILT_IN.get(name)
    if built_in is not None:
        return built_in(argument, context or SinkContext())
    plugin = _plugins().get(name)
    if plugin is None:
        msg = f"unknown sink {name!r}; available: {', '.join(sink_names())}"
        raise ConfigError(msg)
    factory: Callable[[str], DynamicSink[Any]] = plugin.load()
    return factory(argument)


def check_spec(spec: str) -> None:
    """Raise ``ConfigError`` if ``spec`` names no sink or has a bad argument.

    Building a sink does no I/O (files and connections open in ``build``), so this
    is the same check ``make_sink`` makes.
    """
    make_sink(spec)
