"""``python -m bytewax.run`` entry points: the settings, checks and wiring of ``run``.

- ``python -m bytewax.run bpx_flows.entry:NAME`` runs flow ``NAME`` (``book``,
  ``market``...) from the environment: ``BPX_SYMBOLS`` (comma-separated; default:
  the flow's example markets), ``BPX_STREAMS`` (the tape), ``BPX_SECONDS``, and
  ``BPX_WS_URL`` with ``BPX_REST_URL`` (default: the live exchange), the key from
  ``BPX_API_SECRET`` or ``BPX_API_SECRET_FILE``.
- ``python -m bytewax.run "bpx_flows.entry:dataflow('market.toml')"`` runs a
  settings file (the built-in simulator, when it is the source, runs for the life
  of the process).

Bytewax's own runner takes the workers and cluster flags (``-w``, ``-i``, ``-a``).
Either way the settings are validated and the endpoint checked before the flow is
built, exactly as ``bpx-flows run`` does; a problem is one line on stderr and exit
code 2. Ctrl-C and SIGTERM end the run as they end ``bpx-flows run``. Importing
this module builds nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any, NoReturn

from bytewax.dataflow import Dataflow

from bpx_flows.connectors.errors import BpxError, ConfigError
from bpx_flows.connectors.sources import StopSignal
from bpx_flows.inputs import key_function, routes_for, source_for
from bpx_flows.registry import FLOWS
from bpx_flows.resources import endpoint_for
from bpx_flows.runner import preflight_for, sinks_for
from bpx_flows.settings import Settings, load_settings, merge_overrides, validate
from bpx_flows.signals import stop_on_signals
from bpx_flows.wiring import build_flow

__all__ = ["dataflow", "env_settings"]

_RUNS = contextlib.ExitStack()  # simulators and signal handlers of built flows
atexit.register(_RUNS.close)


def dataflow(path: str) -> Dataflow:
    """The flow of a settings file, for ``python -m bytewax.run``."""
    return _built(lambda: load_settings(path))


def env_settings(name: str, environ: dict[str, str] | None = None) -> Settings:
    """The settings of flow ``name`` from the environment (see the module doc).

    Raises:
        ConfigError: a value that does not check.
    """
    env = os.environ if environ is None else environ
    spec = FLOWS[name]

    def names(variable: str, default: str) -> list[str]:
        return [x.strip() for x in env.get(variable, default).split(",") if x.strip()]

    overrides: dict[str, Any] = {"flow": name, "source.kind": "live"}
    if spec.symbols == "streams":
        overrides["streams"] = names("BPX_STREAMS", "trade.SOL_USDC,depth.SOL_USDC")
    else:
        overrides["symbols"] = names("BPX_SYMBOLS", ",".join(spec.example_symbols))
    if env.get("BPX_WS_URL") or env.get("BPX_REST_URL"):
        overrides["source.kind"] = "endpoint"
        overrides["source.ws"] = env.get("BPX_WS_URL")
        overrides["source.rest"] = env.get("BPX_REST_URL")
    if env.get("BPX_SECONDS"):
        try:
            overrides["source.seconds"] = float(env["BPX_SECONDS"])
        except ValueError:
            msg = (
                f"BPX_SECONDS: expected a number of seconds, got {env['BPX_SECONDS']!r}"
            )
            raise ConfigError(msg) from None
    return merge_overrides(Settings(), overrides)


def _built(settings_of: Callable[[], Settings]) -> Dataflow:
    """The flow of the settings ``settings_of`` gives, checked as ``run`` checks."""
    try:
        settings = validate(settings_of())
        endpoint = _RUNS.enter_context(endpoint_for(settings))
        preflight_for(settings, endpoint)
        stop = StopSignal(abort_on_stop=settings.run.recovery_dir is not None)
        route, owner = routes_for(settings)
        source = source_for(settings, endpoint, owner, stop=stop)
        sinks = sinks_for(settings, source, Counter(), stop)
        flow = build_flow(settings, source, sinks, key_function(route))
    except BpxError as exc:
        _refuse(exc)
    _RUNS.enter_context(stop_on_signals(stop))
    return flow


def _refuse(exc: BpxError) -> NoReturn:
    print(f"error: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def __getattr__(name: str) -> Dataflow:
    """``bpx_flows.entry.NAME``: flow ``NAME``, built when Bytewax asks for it."""
    if name in FLOWS:
        return _built(lambda: env_settings(name))
    msg = f"module {__name__!r} has no attribute {name!r}; flows: {', '.join(FLOWS)}"
    raise AttributeError(msg)
