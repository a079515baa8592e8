"""Every ``bpx-flows ...`` command the docs show is a command the program has.

Each code span of README.md, CONTRIBUTING.md, dashboards/README.md and docs/*.md
that starts with ``bpx-flows`` is parsed by the real command line, with its
placeholders filled (FILE, SYMBOL..., N...) and each ``[optional part]`` included:
a command, flag or choice the program does not know (a ``bpx-flows tape``) fails
here. The commands that need a live exchange or a broker are listed in ``SKIP``;
the runnable examples are run by their own tests (``tests/test_api.py``...).
"""

from __future__ import annotations

import re
import shlex
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
