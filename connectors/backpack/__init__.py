"""The Backpack protocol, sans I/O: typed records, stream names, signing, session."""

from bpx_flows.connectors.backpack.decode import (
    BadFrame,
    BadReason,
    Decoded,
    FrameDecoder,
)
from bpx_flows.connectors.backpack.session import Session, SessionStats, control_frame
from bpx_flows.connectors.backpack.signing import (
    Credentials,
    signing_string,
    verify_subscribe,
)
from bpx_flows.connectors.backpack.streams import (
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
