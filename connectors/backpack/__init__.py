"""The Backpack protocol, sans I/O: typed records, stream names, signing, session."""

from .decode import (
    BadFrame,
    BadReason,
    Decoded,
    FrameDecoder,
)
from .session import Session, SessionStats, control_frame
from .signing import (
    Credentials,
    signing_string,
    verify_subscribe,
)
from .streams import (
    Channel,
    DepthWindow,
    KlineInterval,
    StreamName,
    check_symbols,
    parse_stream,
    parse_streams,
)

__all__ = [
    "BadFrame",
    "BadReason",
    "Channel",
    "Credentials",
    "Decoded",
    "DepthWindow",
    "FrameDecoder",
    "KlineInterval",
    "Session",
    "SessionStats",
    "StreamName",
    "check_symbols",
    "control_frame",
    "parse_stream",
    "parse_streams",
    "signing_string",
    "verify_subscribe",
]
