"""What a run holds while it runs: its endpoint (maybe a simulator) and recovery dir.

Shared by the single-process runner and the cluster parent, so both start the
simulator, take the recovery directory's lock and initialise it the same way.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from bpx_flows.connectors.backpack.signing import SECRET_ENV, Credentials
from bpx_flows.connectors.connection import DEFAULT_WS_URL
from bpx_flows.connectors.errors import ConfigError
from bpx_flows.connectors.rest import DEFAULT_REST_URL
from bpx_flows.flows.batching import STATE_FORMAT
from bpx_flows.settings import Settings, history_s

__all__ = [
    "LOCK_HELD_ENV",
    "STATE_MARK",
    "STOP_GRACE_S",
    "Endpoint",
    "StateMark",
    "check_recovery_dir",
    "endpoint_for",
    "init_recovery",
    "recovery_lock",
]

log = logging.getLogger("bpx_flows.run")

STOP_GRACE_S = 10.0  # how long a stopping run may take before it is ended hard


class Endpoint(msgspec.Struct, frozen=True):
    """A WebSocket + REST pair to read from."""

    ws: str
    rest: str


@contextlib.contextmanager
def endpoint_for(settings: Settings) -> Iterator[Endpoint | None]:
    """The endpoint to read from; starts the built-in simulator when asked for."""
    src = settings.source
    if src.kind == "replay":
        yield None
    elif src.kind == "live":
        yield Endpoint(DEFAULT_WS_URL, DEFAULT_REST_URL)
    elif src.kind == "endpoint":
        assert src.ws is not None  # checked by settings
        assert src.rest is not None
        yield Endpoint(src.ws, src.rest)
    else:
        with _simulator(settings) as endpoint:
            yield endpoint


@contextlib.contextmanager
def _simulator(settings: Settings) -> Iterator[Endpoint]:
    from bpx_flows.connectors.backpack.wire import Side
    from bpx_flows.connectors.sim import (
        ScheduledCascade,
        ServerConfig,
        SimConfig,
        SimServer,
        SimThread,
        parse_fault,
    )
    from bpx_flows.connectors.sim.exchange import MAX_HISTORY_S

    creds = Credentials.from_env()
    if creds is None:
        # A throwaway key for the local simulator's account, in the environment so
        # this process and the processes of a local cluster sign with it.
        os.environ[SECRET_ENV] = base64.b64encode(os.urandom(32)).decode()
        creds = Credentials.from_env()
        assert creds is not None
    sim = settings.simulator
    cascades: tuple[ScheduledCascade, ...] = ()
    if sim.cascade_at_s is not None:
        side = Side(sim.cascade_side)
        cascades = (ScheduledCascade(sim.cascade_at_s, sim.cascade_symbol, side),)
    # A backfill of candles finds history on the simulator too (up to its maximum).
    history = min(history_s(settings), MAX_HISTORY_S)
    if history:
        # Progress, shown at the default level: the start waits for it.
        logging.getLogger("bpx_flows.progress").info(
            "simulator: simulating the %.0f s before the start first "
            "(about %.0f s of CPU, for the candle backfill)",
            history,
            history / 60 * 0.3 * sim.rate_scale,
        )
    exchange = SimConfig(
        seed=sim.seed,
        rate_scale=sim.rate_scale,
        cascades_at=cascades,
        history_s=history,
    )
    faults = [parse_fault(spec) for spec in sim.faults]
    server = SimServer(exchange, ServerConfig(account_key=creds.public_key), faults)
    with SimThread(server):
        yield Endpoint(server.ws_url, server.rest_url)


def init_recovery(settings: Settings, partitions: int) -> Any:
    """Bytewax's recovery config, creating ``partitions`` stores on first use."""
    if settings.run.recovery_dir is None:
        return None
    from bytewax.recovery import RecoveryConfig, init_db_dir

    path = Path(settings.run.recovery_dir)
    if not any(path.glob("part-*.sqlite3")):
        path.mkdir(parents=True, exist_ok=True)
        init_db_dir(path, partitions)  # type: ignore[no-untyped-call]
        mark = StateMark(STATE_FORMAT, settings.flow, partitions)
        (path / STATE_MARK).write_bytes(msgspec.json.encode(mark) + b"\n")
        log.info("initialised %d recovery partition(s) in %s", partitions, path)
    return RecoveryConfig(path)  # type: ignore[no-untyped-call]


STATE_MARK = "bpx-flows-state.json"  # what wrote a recovery directory's snapshots


class StateMark(msgspec.Struct, frozen=True):
    """Written beside the partitions when a recovery directory is created."""

    state_format: int
    flow: str
    partitions: int


def check_recovery_dir(settings: Settings) -> None:
    """Refuse a recovery directory whose snapshots this run cannot resume.

    Raises:
        ConfigError: it holds another flow's state, or state in another format (a
            directory written by another bpx-flows version).
    """
    directory = settings.run.recovery_dir
    if directory is None or not any(Path(directory).glob("part-*.sqlite3")):
        return  # nothing to resume yet: the run creates it
    where = f"run.recovery_dir: {directory}"
    again = "resume it with the version that wrote it, or give a new directory"
    try:
        raw = (Path(directory) / STATE_MARK).read_bytes()
    except FileNotFoundError:
        msg = f"{where} holds state of an older bpx-flows (no {STATE_MARK}); {again}"
        raise ConfigError(msg) from None
    try:
        mark = msgspec.json.decode(raw, type=StateMark)
    except msgspec.DecodeError as exc:
        msg = f"{where}: {STATE_MARK} is unreadable ({exc}); {again}"
        raise ConfigError(msg) from None
    if mark.state_format != STATE_FORMAT:
        msg = (
            f"{where} holds state in format {mark.state_format}, this bpx-flows "
            f"reads format {STATE_FORMAT}; {again}"
        )
        raise ConfigError(msg)
    if mark.flow != settings.flow:
        msg = (
            f"{where} holds the state of the {mark.flow} flow, not {settings.flow}; "
            "run that flow, or give a new directory"
        )
        raise ConfigError(msg)


LOCK_HELD_ENV = "BPX_RECOVERY_LOCK_HELD"  # set by a cluster's parent for its children


@contextlib.contextmanager
def recovery_lock(settings: Settings) -> Iterator[None]:
    """Hold the recovery directory for this run; a second run on it is refused.

    Raises:
        ConfigError: another run holds the directory.
    """
    directory = settings.run.recovery_dir
    if directory is None or os.environ.get(LOCK_HELD_ENV) == directory:
        yield
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    pid = settings.run.process_id
    name = ".bpx-flows.lock" if pid is None else f".bpx-flows.lock.{pid}"
    handle: IO[str] = (path / name).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            msg = (
                f"run.recovery_dir: {directory} is in use by {holder}; stop that run "
                "or give another directory"
            )
            raise ConfigError(msg) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        check_recovery_dir(settings)  # held: nobody changes it meanwhile
        yield
    finally:
        handle.close()
