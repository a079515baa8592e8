"""bpx-flows: Backpack Exchange market data on Bytewax.

The program (command line, settings, flow registry, runner) lives here; the
project's top-level folders are its subpackages: ``bpx_flows.connectors`` (I/O),
``bpx_flows.operators`` (pure logic) and ``bpx_flows.flows`` (Bytewax wiring).
"""

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# Bytewax 0.21.1, its last release (2024-11), has wheels for CPython 3.11 and 3.12
# only; on any other interpreter say so in one line instead of failing deep inside.
SUPPORTED_PYTHON = ((3, 11), (3, 12))
if sys.version_info[:2] not in SUPPORTED_PYTHON:  # pragma: no cover (other Pythons)
    _found = ".".join(map(str, sys.version_info[:3]))
    _msg = (
        f"error: bpx-flows needs Python 3.11 or 3.12 (Bytewax 0.21.1 has no build "
        f"for newer), this is {_found}"
    )
    raise SystemExit(_msg)

# In a source tree, bpx_flows/connectors (and operators, flows) are symlinks to the
# top-level folders. A checkout without symlinks (Windows without Developer Mode,
# or git's core.symlinks=false) has small text files there instead: say so in one
# line rather than failing with "No module named bpx_flows.connectors...".
_HERE = Path(__file__).parent
_NOT_LINKED = [n for n in ("connectors", "operators", "flows") if (_HERE / n).is_file()]
if _NOT_LINKED:  # pragma: no cover (checkouts without symlinks)
    _msg = (
        f"error: bpx_flows/{_NOT_LINKED[0]} is a file, not a link to "
        f"../{_NOT_LINKED[0]}: clone with symlinks (on Windows: enable Developer "
        "Mode, then git clone -c core.symlinks=true ...), see CONTRIBUTING.md"
    )
    raise SystemExit(_msg)

try:
    __version__ = version("bpx-flows")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["SUPPORTED_PYTHON", "__version__"]
