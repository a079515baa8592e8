"""Every ``bpx-flows ...`` command the docs show parses, and the complete ones run.

Each code span of README.md, CONTRIBUTING.md, dashboards/README.md and docs/*.md
that starts with ``bpx-flows`` is parsed by the real command line, with its
placeholders filled (FILE, SYMBOL..., N...) and each ``[optional part]`` included:
a command, flag or choice the program does not know (a ``bpx-flows tape``) fails
here. The complete ones run too, as written but bounded: on the built-in simulator
for 2 s (or over the shipped recording), outputs in a temporary folder, any free
metrics port. Not run: the commands that serve until stopped (``sim``), need the
exchange (``--live``) or a broker (``kafka:``), and ``run`` (its own tests run it);
the Python examples are run by ``tests/test_api.py``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from bpx_flows import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "dashboards" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
SESSION = str(ROOT / "data" / "sessions" / "sim-session.jsonl.gz")
# Placeholders as the docs write them, and what stands in for them here.
FILL = {
    "FLOW": "book",
    "COMMAND": "book",
    "<name>": "book",
    "SYMBOL...": "SOL_USDC",
    "SYMBOL": "SOL_USDC",
    "PERP...": "SOL_USDC_PERP",
    "STREAM...": "trade.SOL_USDC",
    "FILE...": SESSION,
    "FILE": SESSION,
    "DIR": "out/dir",
    "URL": "http://127.0.0.1:9",
    "SPEC": "drop:after=5",
    "N/S": "10/60",
    "N": "2",
    "S": "1",
    "X": "1",
}
SKIP = ("kafka:", "error:")  # needs a broker; an error line quoted from a run


def _spans() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8").replace("\n", " ")
        for span in re.findall(r"`(bpx-flows [^`]+)`", text):
            if not any(s in span for s in SKIP):
                found.append((path.name, span))
    return found


def _argv(span: str) -> list[str]:
    """The span as arguments: pipes cut, every optional part in, placeholders set."""
    command = span.split(" | ", maxsplit=1)[0].replace("\\|", "|")
    # An optional part's alternatives (``[--live | --rest URL]``): the first.
    command = re.sub(r"\[([^\]|]*)\|[^\]]*\]", r"[\1]", command)
    command = re.sub(r"\[([^\]]*)\]", r"\1", command).replace("...", "... ")
    words = []
    for raw in shlex.split(command)[1:]:
        word = raw.removesuffix("...") if raw not in FILL else raw
        if word in ("", "--out") and words and words[-1] == "--out":
            continue
        if word:
            words.append(FILL.get(word, word))
    # A choice written as alternatives (``wire|spec|strings``): the first.
    return [w.split("|")[0] if "|" in w and not w.startswith("-") else w for w in words]


SPANS = _spans()


def test_the_docs_show_commands_at_all() -> None:
    assert len(SPANS) > 30


@pytest.mark.parametrize(("doc", "span"), SPANS, ids=[f"{d}: {s}" for d, s in SPANS])
def test_a_command_the_docs_show_parses(
    doc: str, span: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(span)
    if "--help" in argv:
        argv.remove("--help")
    err = ""
    try:
        _, extra = cli._parser().parse_known_args(argv)
    except SystemExit:
        err = capsys.readouterr().err.strip()
    else:
        unknown = [x for x in extra if x.startswith("-")]
        err = f"unrecognized arguments: {unknown}" if unknown else ""
    # A reference in prose may leave out what a full command needs ("as `bpx-flows
    # run --config` does"): only what the program does not know is a doc bug.
    incomplete = ("are required", "expected one argument")
    if err and not any(x in err for x in incomplete):
        pytest.fail(f"{doc}: `{span}` -> {argv} does not parse: {err}")


# What a command the docs show needs to run here, by the flag before a value.
INPUTS = {
    "--config": str(ROOT / "docs" / "examples" / "market.toml"),
    "--replay": SESSION,
}
OUTPUTS = {"--out", "--alerts", "--record", "--parquet", "--recovery-dir"}
# Commands that serve until stopped, need the exchange, or a time of their own;
# top needs a terminal, report and export read files of their own (each has its
# own end-to-end test: test_top, test_report, test_tardis).
NOT_RUN = {"markets", "--live", "--rest", "top", "report", "export"}
SERVES = {"sim"}  # runs until stopped: its first line checked, then SIGTERM
FLOWS = {"book", "market", "candles", "derivatives", "liquidations", "account"}
TIMED = FLOWS | {"tail", "record", "demo"}


def _command_of(argv: list[str]) -> str:
    return next((a for a in argv if not a.startswith("-")), "")


def _runnable() -> list[tuple[str, list[str]]]:
    """The complete commands (they parse as they are) that end within seconds."""
    found, seen = [], set()
    parser = cli._parser()
    for doc, span in SPANS:
        argv = _argv(span)
        command = _command_of(argv)
        if not command or NOT_RUN & {command, *argv} or "--help" in argv:
            continue
        words = argv[argv.index(command) + 1 :]
        if command in FLOWS and not any(not w.startswith("-") for w in words):
            continue  # "bpx-flows market" in prose: no markets, not a command
        if command == "run" and not _a_complete_run(words):
            continue  # "bpx-flows run book" in prose: a reference, not a command
        try:
            parser.parse_args(argv)
        except SystemExit:
            continue
        key = " ".join(argv)
        if key not in seen:
            seen.add(key)
            found.append((doc, argv))
    return found


def _a_complete_run(words: list[str]) -> bool:
    """``run FLOW SYMBOL...`` or ``run ... --config/--replay FILE``."""
    names = [w for w in words if not w.startswith("-")]
    return len(names) >= 2 or any(w in words for w in ("--config", "--replay"))


RUNNABLE = _runnable()


def test_the_docs_show_runnable_commands() -> None:
    commands = {_command_of(argv) for _, argv in RUNNABLE}
    assert commands >= {"book", "candles", "tail", "replay", "record", "demo"}


def _bounded(argv: list[str], tmp_path: Path) -> list[str]:
    """``argv`` with inputs that exist, outputs in ``tmp_path``, a 2 s run, any port."""
    args = []
    for previous, word in zip(["", *argv[:-1]], argv, strict=True):
        value = word
        if previous in OUTPUTS:
            value = str(tmp_path / previous.strip("-"))
        elif previous in INPUTS:
            value = INPUTS[previous]
        elif previous in ("--metrics-port", "--port"):
            value = "0"  # any free port
        elif _command_of(argv) == "config" and word == SESSION:
            value = INPUTS["--config"]  # `config check FILE`: a settings file
        elif previous in ("--seconds", "--speed"):
            value = "2" if previous == "--seconds" else "0"
        args.append(value)
    if (
        _command_of(args) in TIMED
        and "--seconds" not in args
        and "--replay" not in args
    ):
        args += ["--seconds", "2"]
    return args


@pytest.mark.parametrize(
    ("doc", "argv"), RUNNABLE, ids=[f"{d}: {' '.join(a)}" for d, a in RUNNABLE]
)
def test_a_command_the_docs_show_runs(
    doc: str, argv: list[str], tmp_path: Path
) -> None:
    """On the built-in simulator for 2 s (or over the shipped recording): exit 0,
    records on stdout (or, quiet, a summary on stderr), no traceback."""

    args = _bounded(argv, tmp_path)
    if _command_of(args) in SERVES:
        _serves(doc, args, tmp_path)
        return
    result = _ran_cleanly(doc, args, tmp_path)
    assert result.stdout.strip() or "summary:" in result.stderr, result.stderr[-2000:]


def _ran_cleanly(
    doc: str, args: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``bpx-flows ARGS`` run in ``cwd``: exit code 0 and no traceback."""
    import subprocess
    import sys

    from tests.cli import ENV

    result = subprocess.run(
        [sys.executable, "-m", "bpx_flows", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, f"{doc}: {args}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr
    return result


def _serves(doc: str, args: list[str], tmp_path: Path) -> None:
    """A serving command: its first stdout line as the docs describe it (the
    simulator: ``{"ws": ..., "rest": ..., "pid": ...}``), then it stops on SIGTERM."""
    import json
    import select
    import signal
    import subprocess
    import sys
    import time

    from tests.cli import ENV

    with subprocess.Popen(
        [sys.executable, "-m", "bpx_flows", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=tmp_path,
    ) as process:
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], 30)
            assert ready, f"{doc}: {args}: no first line within 30 s"
            first = json.loads(process.stdout.readline())
            assert set(first) >= {"ws", "rest", "pid"}, first
            assert first["ws"].startswith("ws://127.0.0.1:"), first
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert process.returncode in (0, -signal.SIGTERM), f"{doc}: {args}\n{stderr}"
    assert "Traceback" not in stderr, stderr[-3000:]


# Fenced blocks: commands meant to be pasted in order (one block, one shell).
FENCED_SKIP = {
    "--live": "needs the exchange",
    "kafka:": "needs a broker (docs/kafka.md's commands: tests/e2e/test_kafka_bus.py)",
    "top": "needs a terminal (tests/test_top.py runs it in a pseudo-terminal)",
}
# What a block's command says it printed, where its doc shows it.
SAYS = {
    "export": r"exported [\d,]+ lines as [\d,]+ rows in \d+ files under \S+ \(",
    "report": r"report: \d+ charts of \d+ markets in \S+ \([\d.]+ MB, opens without",
}


def _fenced() -> list[tuple[str, list[list[str]]]]:
    """Each fenced block's complete ``bpx-flows`` commands, in order."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            commands = []
            for raw in block.replace("\\\n", " ").splitlines():
                line = raw.split("  #", 1)[0].strip().removeprefix("$ ")
                if not line.startswith("bpx-flows ") or "-->" in line:
                    continue  # not a command (a diagram, a synopsis below)
                argv = shlex.split(line)[1:]
                if any(word.isupper() or "[" in word for word in argv):
                    continue  # a synopsis (placeholders): parsed with the spans
                commands.append(argv)
            if commands:
                found.append((path.name, commands))
    return found


FENCED = _fenced()


def test_the_docs_show_fenced_commands() -> None:
    assert {doc for doc, _ in FENCED} >= {"export.md", "report.md", "top.md"}


@pytest.mark.parametrize(
    ("doc", "commands"), FENCED, ids=[f"{d}: {c[0][0]}" for d, c in FENCED]
)
def test_a_fenced_block_runs_as_written(
    doc: str, commands: list[list[str]], tmp_path: Path
) -> None:
    """In order, in one folder that has the project's ``data/`` (as a clone does),
    unchanged but for a 2 s bound on a live run; what a doc shows printed, printed."""

    (tmp_path / "data").symlink_to(ROOT / "data")
    ran = 0
    for argv in commands:
        text = " ".join(argv)
        if any(mark in argv or mark in text for mark in FENCED_SKIP):
            continue
        args = list(argv)
        if (
            _command_of(args) in TIMED
            and "--seconds" not in args
            and "--replay" not in args
        ):
            args += ["--seconds", "2"]
        result = _ran_cleanly(doc, args, tmp_path)
        says = SAYS.get(_command_of(args))
        if says is not None:
            assert re.search(says, result.stderr), result.stderr[-2000:]
        ran += 1
    assert ran or all(
        any(mark in " ".join(argv) for mark in FENCED_SKIP) for argv in commands
    )
