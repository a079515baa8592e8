"""Each package's public surface is pinned: a change here is a deliberate API change."""

from bpx_flows.connectors import backpack, sim, sinks


def test_backpack_exports() -> None:
    assert sorted(backpack.__all__) == sorted(
        [
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
    )
    for name in backpack.__all__:
        assert getattr(backpack, name) is not None


def test_sim_exports() -> None:
    assert sorted(sim.__all__) == sorted(
        [
            "AUTH_ERROR_CODE",
            "DEFAULT_MARKETS",
            "Dialect",
            "Exchange",
            "Fault",
            "FaultKind",
            "ScheduledCascade",
            "FrameEncoder",
            "ServerConfig",
            "SimConfig",
            "SimServer",
            "SimThread",
            "parse_fault",
        ]
    )


def test_sinks_exports() -> None:
    assert sorted(sinks.__all__) == ["CountingSink", "JsonLinesSink", "LineSink"]
