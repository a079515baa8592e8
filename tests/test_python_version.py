"""The interpreter rule: declared once, checked by make and by the package."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import bpx_flows

ROOT = Path(__file__).parent.parent


def test_the_declared_versions_match_the_runtime_check() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11,<3.13"
    assert bpx_flows.SUPPORTED_PYTHON == ((3, 11), (3, 12))
    assert sys.version_info[:2] in bpx_flows.SUPPORTED_PYTHON


def test_make_stops_in_one_line_on_another_interpreter(tmp_path: Path) -> None:
    # A fake "python" that claims 3.13: make refuses before creating any venv.
    fake = tmp_path / "python3.13"
    fake.write_text(
        '#!/bin/sh\ncase "$1" in -V) echo "Python 3.13.1";; *) exit 1;; esac\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), f"PY={fake}", f"VENV={venv}", "lint"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MAKEFLAGS": ""},
        check=False,
    )
    assert result.returncode != 0
    assert "bpx-flows needs Python 3.11 or 3.12" in result.stdout + result.stderr
    assert "Python 3.13.1" in result.stdout + result.stderr
    assert not venv.exists()


def test_a_checkout_without_symlinks_stops_in_one_line(tmp_path: Path) -> None:
    """Where git wrote the links as text files (Windows), importing says so."""
    package = tmp_path / "bpx_flows"
    package.mkdir()
    (package / "__init__.py").write_text(
        (ROOT / "bpx_flows" / "__init__.py").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    (package / "connectors").write_text("../connectors", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", "import bpx_flows"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not a link to ../connectors" in lines[0], lines
