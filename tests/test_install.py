"""The built wheel installs beside distributions named ``connectors`` and ``flows``.

The package index has distributions called ``connectors`` and ``flows`` that ship
top-level packages of those names; bpx-flows ships one top-level package,
``bpx_flows``, so both install side by side. The stand-ins here are built on the
spot (the same top-level names, no network). The new virtual environment gets the
wheel and the stand-ins; the third-party dependencies (bytewax...) come from the
test's own environment through a path file, so the test needs no download.
"""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SESSION = ROOT / "data" / "sessions" / "sim-session.jsonl.gz"

pytestmark = pytest.mark.timeout(300)


def _stand_in(directory: Path, name: str) -> Path:
    """A wheel of distribution ``name`` whose top-level package is ``name``."""
    wheel = directory / f"{name}-9.9-py3-none-any.whl"
    info = f"{name}-9.9.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{name}/__init__.py", f'WHO = "the {name} stand-in"\n')
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 9.9\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=240,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def test_the_wheel_runs_a_flow_beside_connectors_and_flows(tmp_path: Path) -> None:
    # Built from a copy: a build/ folder left in the tree by an earlier build could
    # otherwise put modules that no longer exist into the wheel.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "out",
            "build",
            "dist",
            "*.egg-info",
            ".*_cache",
            ".hypothesis",
            "__pycache__",
            "data",
        ),
    )
    wheels = tmp_path / "wheels"
    built = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        wheels,
        source,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "deprecated" not in built.stderr, built.stderr[-3000:]  # the license
    ours = next(wheels.glob("bpx_flows-*.whl"))
    names = zipfile.ZipFile(ours).namelist()
    assert {n.split("/")[0] for n in names if "/" in n} == {
        "bpx_flows",
        ours.name.removesuffix("-py3-none-any.whl") + ".dist-info",
    }
    assert "bpx_flows/connectors/sources/live.py" in names  # the folders map in
    assert "bpx_flows/presentation/lines.py" in names
    venv = tmp_path / "venv"
    made = _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = _run(
        python,
        "-c",
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        cwd=tmp_path,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    assert deps in site.getsitepackages() or deps.startswith(sys.prefix)
    Path(purelib, "test-deps.pth").write_text(deps + "\n")
    installed = _run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        _stand_in(wheels, "connectors"),
        _stand_in(wheels, "flows"),
        ours,
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    both = _run(
        python,
        "-c",
        "import connectors, flows, bpx_flows.flows.book, bpx_flows.connectors.sources;"
        "print(connectors.WHO, '|', flows.WHO, '|', bpx_flows.__file__)",
        cwd=tmp_path,
    )
    assert both.returncode == 0, both.stderr[-3000:]
    who_c, who_f, where = (x.strip() for x in both.stdout.split("|"))
    assert (who_c, who_f) == ("the connectors stand-in", "the flows stand-in")
    assert where.startswith(str(venv))  # the wheel, not the source tree
    ran = _run(
        venv / "bin" / "bpx-flows",
        "run",
        "book",
        "SOL_USDC",
        "--replay",
        SESSION,
        "--quiet",
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "BookStats" in ran.stderr  # the summary
