"""``bpx-flows export RECORDING... --format tardis --out DIR``: checks, then the export.

The conversion is ``bpx_flows.tardis``; this is the command around it: inputs and
the output folder checked first (one line, exit 2), a progress line every 5 s, and
a closing line saying what was written.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bpx_flows.connectors.backpack.streams import parse_stream
from bpx_flows.connectors.errors import BpxError, ConfigError
from bpx_flows.connectors.recording import read_header
from bpx_flows.settings import check_directory

__all__ = ["export_command"]


def export_command(
    sources: Sequence[str], out: str, symbols: str | None, verbose: int = 0
) -> int:
    """Run an export; the exit code.

    Raises:
        ConfigError: a source that is not a recording, a folder that cannot be
            written, a market name that cannot be one.
    """
    from bpx_flows.logs import configure_logging
    from bpx_flows.tardis import export

    configure_logging("info" if verbose else "warning", "text")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        msg = f"--out: {out!r} is a file; give a folder"
        raise ConfigError(msg)
    check_directory("--out", folder)
    for source in sources:
        if not source.startswith("kafka:"):
            read_header(source)  # exists, and is a recording
    selected = _markets(symbols)
    started = time.monotonic()
    try:
        done = export(sources, folder, selected)
    except BpxError as exc:
        raise ConfigError(str(exc)) from None
    seconds = time.monotonic() - started
    print(
        f"exported {done.lines:,} lines as {done.rows:,} rows in {len(done.files)} "
        f"files under {folder} ({seconds:.1f} s)",
        file=sys.stderr,
    )
    return 0


def _markets(text: str | None) -> frozenset[str] | None:
    if not text:
        return None
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        parse_stream(f"trade.{name}")  # a market name, or a one-line error
    return names
