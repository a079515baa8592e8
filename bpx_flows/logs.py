"""Where a run's log lines go and how they look: stderr, text or JSON."""

from __future__ import annotations

import json
import logging
import sys

__all__ = ["JsonFormatter", "configure_logging"]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (+ exception)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        entry = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str, libraries: bool = False) -> None:
    """Logs to stderr, one line per event, as text or JSON.

    ``level`` is bpx-flows' own (``info``: connections, snapshots, resyncs,
    backfills); the libraries' internals (websockets, httpx, librdkafka) stay at
    warnings unless ``libraries`` (``-vv``).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    chatty = logging.DEBUG if libraries else logging.WARNING
    for name in ("websockets", "httpx", "httpcore", "bpx_flows.kafka.librdkafka"):
        logging.getLogger(name).setLevel(chatty)  # a line per request otherwise
    # Progress on long work (replays) shows at the default level too.
    progress = logging.getLogger("bpx_flows.progress")
    progress.setLevel(logging.ERROR if level == "error" else logging.INFO)
