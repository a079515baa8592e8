"""Shared fixtures: the spec files, a signing key pair, and simulators on loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bpx_flows.connectors.backpack import Credentials
from bpx_flows.connectors.sim import ServerConfig, SimConfig, SimServer, SimThread

# The contract the project carries (docs/contract): a clone tests on its own.
SPEC_DIR = Path(__file__).resolve().parents[1] / "docs" / "contract"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# A fixed test key pair (never a real account's).
TEST_SECRET = base64.b64encode(bytes(range(1, 33))).decode()
OTHER_SECRET = base64.b64encode(bytes(range(101, 133))).decode()


@pytest.fixture(scope="session")
def asyncapi() -> dict[str, object]:
    with (SPEC_DIR / "backpack-asyncapi.yml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def credentials() -> Credentials:
    return Credentials.from_secret(TEST_SECRET)


def start_sim(credentials: Credentials | None = None, **server: object) -> SimThread:
    """A simulator thread on 127.0.0.1:0 with fast keep-alive, not yet started."""
    config = ServerConfig(
        account_key=credentials.public_key if credentials else None,
        ping_interval_s=float(server.pop("ping_interval_s", 1.0)),  # type: ignore[arg-type]
        ping_timeout_s=float(server.pop("ping_timeout_s", 5.0)),  # type: ignore[arg-type]
        **server,  # type: ignore[arg-type]
    )
    exchange = SimConfig(rate_scale=2.0, cascade_every_s=10.0, liquidation_every_s=3.0)
    return SimThread(SimServer(exchange, config))


@pytest.fixture(scope="session")
def sim(credentials: Credentials) -> Iterator[SimServer]:
    """One shared simulator for tests that do not change its state."""
    with start_sim(credentials) as server:
        yield server


@pytest.fixture
def fresh_sim(credentials: Credentials) -> Iterator[SimThread]:
    """A simulator of the test's own, for faults and pauses."""
    thread = start_sim(credentials)
    with thread:
        yield thread


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Each test leaves no worker loop open.

    Tests share a process (and, under xdist, an order that changes as tests are
    added): a partition Bytewax never closed would keep its worker's loop.
    """
    from bpx_flows.connectors.worker_loop import WorkerLoop

    yield
    assert not WorkerLoop.open_loops(), "a live partition was never closed"
