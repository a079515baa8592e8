"""Every flag of every command, driven by the parser itself, gets hostile values.

The commands and their flags are read from ``bpx_flows.cli``'s parser, so a flag
added tomorrow is covered the day it is added. Each flag that takes a value gets
``nan``, ``inf``, ``-1``, ``0``, ``1e30`` and ``abc``: each must be refused (one
line, exit code 2: a parser error, or a ``ConfigError`` from the settings) unless
``ACCEPTED`` says why it is fine. Path flags get a directory under a regular file
(refused before the run). Nothing is run: the values go as far as the settings
``run`` would start from (``validate``), which is where every run checks them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bpx_flows import cli
from bpx_flows.connectors.errors import ConfigError
from bpx_flows.settings import Settings, validate

SESSION = str(
    Path(__file__).resolve().parents[1] / "data" / "sessions" / "sim-session.jsonl.gz"
)
HOSTILE = ("nan", "inf", "-1", "0", "1e30", "abc")

# The least each command needs besides the flag under test.
BASE: dict[str, list[str]] = {
    "run": ["book", "SOL_USDC"],
    "tail": ["trade.SOL_USDC"],
    "record": ["trade.SOL_USDC", "--out", "rec.jsonl"],
    "replay": [SESSION],
    "export": [SESSION],
    "report": ["."],
    "sim-session": ["--out", "s.jsonl"],
    "config": ["check", "x.toml"],
}
SETTINGS_OF: dict[str, Callable[[argparse.Namespace], Settings]] = {
    "demo": cli.demo_settings,
    "replay": cli.replay_settings,
    "top": cli.top_settings,
}
# Flags whose values are names, URLs or paths (text): checked for what they name.
TEXT = {
    "--ws",
    "--rest",
    "--config",
    "--out",
    "--alerts",
    "--record",
    "--parquet",
    "--recovery-dir",
    "--webhook",
    "--webhook-format",
    "--sink",
    "--fault",
    "--replay",
    "--host",
    "--dialect",
    "--account-key",
    "--log-format",
    "--log-level",
    "--metrics-host",
    "--window",
    "--intervals",
    "--bands-bps",
    "--margin-alerts",
    "--addresses",
    "--symbols",
    "--backfill",
    "--rest-limit",
    "--history-limit",
    "--resolved",
}
# Values that are fine for a flag, and why.
ACCEPTED: dict[tuple[str, str], str] = {
    ("--seconds", "1e30"): "a run may last as long as it likes",
    ("--history", "1e30"): "parsed; the simulator refuses it with its own limit",
    ("--every-ms", "0"): "stats after every update (docs/book.md)",
    ("--ladder", "0"): "no book_ladder records (the default; docs/book.md)",
    ("--lateness-ms", "0"): "no trade may be late",
    ("--revise-s", "0"): "candles are never corrected",
    ("--metrics-port", "0"): "any free port (docs/metrics.md)",
    ("--port", "0"): "any free port",
    ("--seed", "0"): "a seed like any other",
    ("--speed", "0"): "a replay as fast as it can be read",
    ("--history", "0"): "no simulated history (the default)",
    ("--replay-delay", "0"): "start at the first SUBSCRIBE (the default)",
}
PATHS = {"--out", "--alerts", "--record", "--recovery-dir", "--parquet"}


_PARSER = cli._parser()  # parsing leaves no state behind: one parser for all


def _parser() -> argparse.ArgumentParser:
    return _PARSER


def _commands() -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in _parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _flags() -> Iterator[tuple[str, str]]:
    for name, parser in sorted(_commands().items()):
        for action in parser._actions:
            takes_value = action.nargs != 0 and not isinstance(
                action, argparse._HelpAction | argparse._SubParsersAction
            )
            longs = [o for o in action.option_strings if o.startswith("--")]
            if longs and takes_value and action.help != argparse.SUPPRESS:
                yield name, longs[0]


FLAGS = list(_flags())


def test_the_parser_has_the_commands_and_flags_we_expect_to_cover() -> None:
    commands = {name for name, _ in FLAGS}
    assert {"run", "book", "sim", "record", "replay", "demo", "markets"} <= commands
    assert len(FLAGS) > 100


def _outcome(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """``refused`` (one line, exit 2), or ``accepted``."""
    command = argv[0]
    code: object = None
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        code = exc.code
    if code is not None:
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1, (argv, err)
        return "refused"
    if args.command in (cli._cmd_export, cli._cmd_report):
        return _ran(args, capsys)  # they check everything before any work
    settings_of = SETTINGS_OF.get(command, cli.run_settings)
    if args.command not in (
        cli._cmd_run,
        cli._cmd_record,
        cli._cmd_demo,
        cli._cmd_replay,
        cli._cmd_top,
    ):
        return "accepted"  # checked as it parses (sim, markets, config)
    message = None
    try:
        validate(settings_of(args))
    except ConfigError as exc:
        message = str(exc)
    if message is None:
        return "accepted"
    assert "\n" not in message, message  # one line
    return "refused"


def _ran(args: argparse.Namespace, capsys: pytest.CaptureFixture[str]) -> str:
    message = None
    try:
        args.command(args)
    except ConfigError as exc:
        message = str(exc)
    capsys.readouterr()
    if message is None:
        return "accepted"
    assert "\n" not in message, message  # one line
    return "refused"


NUMBERS = [(c, f) for c, f in FLAGS if f not in TEXT]


def test_every_accepted_value_names_a_flag_that_exists() -> None:
    assert {f for f, _ in ACCEPTED} <= {f for _, f in NUMBERS}


@pytest.mark.parametrize(
    ("command", "flag"), NUMBERS, ids=[f"{c} {f}" for c, f in NUMBERS]
)
def test_a_number_flag_refuses_hostile_numbers(
    command: str,
    flag: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    base = BASE.get(command, ["SOL_USDC"] if command != "sim" else [])
    accepted = []
    for value in HOSTILE:
        outcome = _outcome([command, *base, flag, value], capsys)
        if outcome == "accepted" and (flag, value) not in ACCEPTED:
            accepted.append(value)
    assert accepted == [], f"{command} {flag} accepts {accepted}"


@pytest.mark.parametrize(
    ("command", "flag"),
    [(c, f) for c, f in FLAGS if f in PATHS and c not in ("sim", "sim-session")],
    ids=lambda x: x,
)
def test_a_path_flag_refuses_a_place_under_a_regular_file(
    command: str,
    flag: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    base = BASE.get(command, ["SOL_USDC"])
    if command == "record" and flag == "--out":
        base = ["trade.SOL_USDC"]
    assert _outcome([command, *base, flag, "file/x"], capsys) == "refused"


def test_max_levels_below_one_is_refused_by_the_rules() -> None:
    args = _parser().parse_args(["book", "SOL_USDC", "--max-levels", "-1"])
    with pytest.raises(ConfigError, match="max_levels"):
        validate(cli.run_settings(args))
