"""The Backpack protocol, sans I/O: typed records, stream names, signing, session."""

from connectors.backpack.decode import BadFrame, BadReason, Decoded, FrameDecoder
from connectors.backpack.session import Session, SessionStats, control_frame
from connectors.backpack.signing import Credentials, signing_string, verify_subscribe
from connectors.backpack.streams import (
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
