"""``bpx-flows sim`` and ``sim-session``: the simulator on its own, for any client."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from bpx_flows.arguments import number, port

__all__ = ["add_sim_commands"]

# Each flag's range: NaN, infinities and values outside are one line, exit code 2.
_SEED = number(0, 2**32 - 1, whole=True)
_SPEED = number(0, 1_000)  # 0: a replay as fast as clients read
_SCALE = number(0, 1_000, low_open=True)
_PERIOD = number(0, 3_600, low_open=True)
_DURATION = number(0, 86_400, low_open=True)


def add_sim_commands(commands: Any) -> None:
    """Add ``sim`` and ``sim-session`` to the command line's subcommands."""
    _add_sim(commands)
    _add_sim_session(commands)


def _add_sim(commands: Any) -> None:
    text = "run the simulated exchange on loopback"
    sim = commands.add_parser("sim", help=text, description=text)
    sim.add_argument("--host", default="127.0.0.1", help="listen address (127.0.0.1)")
    sim.add_argument("--port", type=port, default=0, help="0 picks a free port (0)")
    sim.add_argument("--seed", type=_SEED, default=7, help="random seed (7)")
    sim.add_argument(
        "--speed", type=_SPEED, default=1.0, help="simulated s per wall s (1)"
    )
    sim.add_argument(
        "--rate-scale", type=_SCALE, default=1.0, help="x engine event rates (1)"
    )
    sim.add_argument(
        "--dialect",
        choices=["wire", "spec", "strings"],
        default="wire",
        help="how frames are laid out (wire: as the exchange sends them)",
    )
    sim.add_argument(
        "--ping-interval", type=_PERIOD, default=60.0, help="seconds between pings (60)"
    )
    sim.add_argument(
        "--ping-timeout", type=_PERIOD, default=120.0, help="pong deadline, s (120)"
    )
    _add_feed_flags(sim)
    _add_limit_flags(sim)
    sim.set_defaults(command=_cmd_sim)


def _add_feed_flags(sim: argparse.ArgumentParser) -> None:
    """What the simulator serves: faults, a recording, history, the account."""
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
        "--hold",
        action="store_true",
        help="--replay: keep each connection open (and silent) after the last frame "
        "instead of closing it (clients then read every frame exactly once)",
    )
    sim.add_argument(
        "--replay-delay",
        type=number(0, 3600),
        default=0.0,
        metavar="S",
        help="--replay: start each connection's replay S seconds after its first "
        "SUBSCRIBE, for clients that subscribe stream by stream (0)",
    )
    sim.add_argument(
        "--history",
        type=number(0, 1e9),  # SimConfig says its own limit (6 h)
        default=0.0,
        metavar="S",
        help="simulate S seconds before starting, so REST klines and trades reach "
        "back that far (at most 21600; about 0.3 s of CPU per simulated minute) (0)",
    )
    sim.add_argument(
        "--account-key",
        help="base64 public key of the simulated account "
        "(default: the key of BPX_API_SECRET, if set)",
    )


def _add_limit_flags(sim: argparse.ArgumentParser) -> None:
    """The exchange's REST limits, which the simulator enforces by default."""
    for flag, default, what in (
        ("--rest-limit", (2_000, 60.0), "REST requests"),
        ("--history-limit", (30, 60.0), "historical klines and trades requests"),
    ):
        count, seconds = default
        sim.add_argument(
            flag,
            type=_limit,
            default=default,
            metavar="N/S",
            help=f"{what} allowed per S seconds, then 429; 'off': no limit "
            f"({count}/{seconds:.0f}, Backpack's)",
        )


def _add_sim_session(commands: Any) -> None:
    text = "write a synthetic recording straight from the model"
    session = commands.add_parser("sim-session", help=text, description=text)
    session.add_argument("--out", required=True, help="file; .gz for gzip")
    session.add_argument(
        "--seconds", type=_DURATION, default=60.0, help="simulated seconds (60)"
    )
    session.add_argument("--seed", type=_SEED, default=7, help="random seed (7)")
    session.add_argument(
        "--rate-scale", type=_SCALE, default=1.0, help="x event rates (1)"
    )
    session.set_defaults(command=_cmd_sim_session)


def _limit(text: str) -> tuple[int, float] | None:
    """``N/S`` (N requests per S seconds) or ``off``."""
    if text.strip().lower() == "off":
        return None
    count, sep, seconds = text.partition("/")
    try:
        limit = (int(count), float(seconds) if sep else 60.0)
    except ValueError:
        msg = f"expected N/S (requests per seconds) or off, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if limit[0] < 1 or not 0 < limit[1] <= 86_400:
        msg = f"expected N >= 1 and 0 < S <= 86400, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return limit


def _cmd_sim(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from bpx_flows.connectors.backpack.signing import Credentials
    from bpx_flows.connectors.sim import (
        Dialect,
        ServerConfig,
        SimConfig,
        SimServer,
        parse_fault,
    )

    if args.speed == 0 and not args.replay:
        msg = "--speed 0 (as fast as clients read) needs --replay FILE"
        print(f"bpx-flows sim: error: {msg}", file=sys.stderr)
        return 2
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
        rest_limit=args.rest_limit,
        history_limit=args.history_limit,
        close_after_replay=not args.hold,
        replay_delay_s=args.replay_delay,
    )
    faults = [parse_fault(spec) for spec in args.fault]
    replay = None
    if args.replay:
        from bpx_flows.connectors.sim.replay import RecordingFeed

        replay = RecordingFeed.load(args.replay)
    try:
        exchange = SimConfig(
            seed=args.seed, rate_scale=args.rate_scale, history_s=args.history
        )
    except ValueError as exc:
        print(f"bpx-flows sim: --history: {exc}", file=sys.stderr)
        return 2
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

    try:
        asyncio.run(serve())
    except OSError as exc:  # the port is taken, or the address is not ours
        where = f"{args.host}:{args.port}"
        print(
            f"bpx-flows sim: error: cannot listen on {where}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    return 0


def _cmd_sim_session(args: argparse.Namespace) -> int:
    from bpx_flows.connectors.sim import SimConfig
    from bpx_flows.connectors.sim.session import write_session

    config = SimConfig(seed=args.seed, rate_scale=args.rate_scale, account_every_s=None)
    frames = write_session(args.out, args.seconds, config)
    print(f"wrote {frames:,} frames ({args.seconds:g} simulated s) to {args.out}")
    return 0
