"""``bpx-flows report``: the HTML file drawn by a real browser (headless Chromium).

Chromium is Debian's package, installed by ``make test`` (``system-packages``). The
page writes on ``<body>`` how many charts it drew and how many script errors it
saw; the test reads them from the DOM Chromium dumps after running the scripts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bpx_flows.report.page import Section, render as render_page
from tests.cli import run_cli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SESSION = ROOT / "data" / "sessions" / "sim-session.jsonl.gz"


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: make test installs Debian's package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def render(page: Path, tmp_path: Path) -> str:
    """The DOM after the page's scripts ran (virtual time: no real waiting)."""
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The market flow over the shipped session, with a liquidation burst."""
    folder = tmp_path_factory.mktemp("parquet")
    result = run_cli(
        "market", "--replay", str(SESSION), "--parquet", str(folder), "--quiet",
        "--min-notional", "100", "--min-count", "2", "--multiple", "1.5",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_every_chart_draws_in_chromium_without_a_script_error(
    parquet: Path, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    result = run_cli("report", str(parquet), "--out", str(page))
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(r"report: (\d+) charts of (\d+) markets", result.stderr)
    assert found is not None, result.stderr
    charts = int(found.group(1))
    assert charts >= 6 and int(found.group(2)) == 3
    text = page.read_text(encoding="utf-8")
    assert "<script src" not in text  # self-contained: nothing to fetch
    assert "burst ask" in text  # the burst is shaded on the price
    body = re.search(r"<body([^>]*)>", render(page, tmp_path))
    assert body is not None
    attributes = dict(re.findall(r'data-(\w+)="(\d+)"', body.group(1)))
    assert attributes == {"errors": "0", "charts": str(charts), "drawn": str(charts)}


def test_a_script_error_would_show(tmp_path: Path) -> None:
    """The check above can fail: a broken figure is counted as an error."""

    class Broken:
        def to_json(self) -> str:
            return "{not json"

    page = tmp_path / "broken.html"
    page.write_text(
        render_page("t", [], {}, [_section(Broken())], "window.Plotly = {};"),
        encoding="utf-8",
    )
    body = re.search(r"<body([^>]*)>", render(page, tmp_path))
    assert body is not None
    assert 'data-errors="0"' not in body.group(1)


def _section(figure: object) -> Section:
    return Section("X", "x", [figure])


def test_bad_folders_are_one_line(tmp_path: Path) -> None:
    for argv, message in (
        (("report", str(tmp_path / "missing")), "is not a folder"),
        (("report", str(tmp_path)), "no Parquet datasets"),
        (("report", str(SESSION.parent), "--out", str(tmp_path)), "is a folder"),
    ):
        result = run_cli(*argv)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], lines
