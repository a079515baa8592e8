"""The folders are layers: imports point down only, and importing does no work.

    bpx_flows (the program: cli, settings, registry, runner, cluster, console)
        -> flows -> presentation -> operators -> connectors
    connectors/backpack: the protocol core, pure (no I/O, no clock, no asyncio)

``presentation`` (console lines, metric observation) sits above operators and
connectors; operators may use the connectors' records, never the other way round.

Every import is counted, function-local ones included.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = {
    "cli",
    "settings",
    "registry",
    "runner",
    "cluster",
    "console",
    "resources",
    "sim_commands",
}


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] != "bpx_flows":
        parts.insert(0, "bpx_flows")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved (as Python does)."""
    module = _module(path)
    package = module.split(".")
    if path.name != "__init__.py":
        package.pop()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _modules() -> dict[str, set[str]]:
    files = [p for p in (ROOT / "bpx_flows").glob("*.py")]
    files += (ROOT / "bpx_flows" / "presentation").rglob("*.py")
    for folder in ("connectors", "operators", "flows"):
        files += (ROOT / folder).rglob("*.py")
    return {_module(p): _imports(p) for p in files}


MODULES = _modules()
BENCH = {
    ".".join(p.relative_to(ROOT).with_suffix("").parts): _imports(p)
    for p in (ROOT / "bench").glob("*.py")
}


LAYERS = {"connectors", "operators", "presentation", "flows"}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "program"


def test_connectors_import_nothing_from_operators_presentation_flows_or_program() -> (
    None
):
    """Operators use the connectors' records; connectors never use an operator."""
    bad = {
        (m, i)
        for m, imports in MODULES.items()
        if _layer(m) == "connectors"
        for i in imports
        if i.startswith("bpx_flows.") and _layer(i) != "connectors"
    }
    assert not bad


def test_operators_import_no_bytewax_presentation_flows_or_program() -> None:
    bad = {
        (m, i)
        for m, imports in MODULES.items()
        if _layer(m) == "operators"
        for i in imports
        if i.startswith("bytewax")
        or (
            i.startswith("bpx_flows.")
            and _layer(i) in {"presentation", "flows", "program"}
        )
    }
    assert not bad


def test_presentation_imports_nothing_from_flows_or_the_program() -> None:
    bad = {
        (m, i)
        for m, imports in MODULES.items()
        if _layer(m) == "presentation"
        for i in imports
        if i.startswith("bpx_flows.") and _layer(i) in {"flows", "program"}
    }
    assert not bad


def test_no_two_folders_import_each_other() -> None:
    """Between layers, arrows point one way: no pair of folders in both directions."""
    edges = {
        (_layer(m), _layer(i))
        for m, imports in MODULES.items()
        for i in imports
        if i.startswith("bpx_flows.") and _layer(m) != _layer(i)
    }
    assert not {(a, b) for a, b in edges if (b, a) in edges}


def test_flows_import_nothing_from_the_program() -> None:
    bad = {
        (m, i)
        for m, imports in MODULES.items()
        if _layer(m) == "flows"
        for i in imports
        if i.startswith("bpx_flows.") and _layer(i) == "program"
    }
    assert not bad


def test_the_protocol_core_does_no_io() -> None:
    banned = ("asyncio", "websockets", "socket", "httpx", "time", "bytewax")
    bad = {
        (m, i)
        for m, imports in MODULES.items()
        if m.startswith("bpx_flows.connectors.backpack")
        for i in imports
        if i.split(".")[0] in banned
        or (
            i.startswith("bpx_flows.")
            and not i.startswith(
                ("bpx_flows.connectors.backpack", "bpx_flows.connectors.errors")
            )
        )
    }
    assert not bad


def test_no_module_imports_the_old_top_level_names() -> None:
    bad = {
        (m, i)
        for m, imports in MODULES.items()
        for i in imports
        if i.split(".")[0] in {"connectors", "operators", "flows"}
    }
    assert not bad


def test_there_are_no_import_circles_between_modules() -> None:
    """Package-to-submodule edges count: a submodule that imports its package
    while the package imports it runs against a half-initialised package."""
    modules = {**MODULES, **BENCH}
    graph = {
        m: {i for i in imports if i in modules and i != m}
        for m, imports in modules.items()
    }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle.extend([*path, node, dep])
                return True
            if dep not in state and visit(dep, [*path, node]):
                return True
        state[node] = 2
        return False

    for node in sorted(graph):
        if node not in state and visit(node, []):
            break
    assert not cycle, " -> ".join(cycle)


@pytest.mark.parametrize(
    "module",
    [f"bpx_flows.flows.{p.stem}" for p in sorted((ROOT / "flows").glob("*.py"))]
    + ["bpx_flows.registry", "bpx_flows.cli", "bpx_flows.runner", "bpx_flows.entry"],
)
def test_importing_a_module_does_no_work(module: str) -> None:
    """A bad key in the environment cannot break an import: nothing is built."""
    env = {**os.environ, "BPX_API_SECRET": "garbage", "BPX_SYMBOLS": "NOPE"}
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_bytewax_entry_builds_a_flow_only_when_bytewax_asks() -> None:
    from bpx_flows import entry
    from bpx_flows.registry import FLOWS

    assert not set(FLOWS) & set(vars(entry))  # built by module __getattr__
    with pytest.raises(AttributeError, match="flows: "):
        _ = entry.nope
