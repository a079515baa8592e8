"""Every REST path of the OpenAPI contract, answered by the simulator as specified.

For each path of ``docs/contract/*openapi.yml`` the simulator is asked over HTTP on
loopback (a spot, a perp, a stock or a prediction market where the path takes a
symbol) and the 200 answer must validate against the path's response schema, with
every ``$ref`` resolved in the contract's own components.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from bpx_flows.connectors.sim import SimConfig, SimServer, SimThread

CONTRACT = Path(__file__).resolve().parents[3] / "docs" / "contract"
FILES = ["backpack-markets-api-openapi.yml", "backpack-trades-api-openapi.yml"]
# The query of each path: a market it applies to (perp-only paths get a perp).
QUERIES: dict[str, list[dict[str, str]]] = {
    "/api/v1/markets": [{}],
    "/api/v1/market": [{"symbol": "SOL_USDC"}, {"symbol": "SOL_USDC_PERP"}],
    "/api/v1/depth": [
        {"symbol": "SOL_USDC"},
        {"symbol": "BTC_USDC_PERP", "limit": "5"},
    ],
    "/api/v1/prediction": [{}, {"resolved": "false"}],
    "/api/v1/prediction/tags": [{}],
    "/api/v1/market-sessions": [{}],
    "/api/v1/securities": [{}],
    "/api/v1/markPrices": [{}, {"symbol": "SOL_USDC_PERP"}],
    "/api/v1/openInterest": [{}, {"symbol": "SOL_USDC_PERP"}],
    "/api/v1/fundingRates": [{"symbol": "SOL_USDC_PERP"}],
    "/api/v1/klines": [
        {"symbol": "SOL_USDC", "interval": "1m", "startTime": "0"},
        {"symbol": "SOL_USDC_PERP", "interval": "1s", "startTime": "0"},
    ],
    "/api/v1/ticker": [{"symbol": "SOL_USDC"}, {"symbol": "SOL_USDC_PERP"}],
    "/api/v1/tickers": [{}],
    "/api/v1/trades": [{"symbol": "SOL_USDC"}, {"symbol": "BTC_USDC_PERP"}],
    "/api/v1/trades/history": [{"symbol": "SOL_USDC", "limit": "10"}],
}
MAY_BE_EMPTY = ("/api/v1/prediction",)  # lists that are empty on some days


def _contract() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """``(path, 200 schema, components)`` for every GET path of the contract."""
    out = []
    for name in FILES:
        doc = yaml.safe_load((CONTRACT / name).read_text(encoding="utf-8"))
        components = doc.get("components", {})
        for path, item in doc["paths"].items():
            content = item["get"]["responses"]["200"]["content"]
            (media,) = content.values()
            out.append((path, media["schema"], components))
    return out


CONTRACT_PATHS = _contract()


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = SimServer(SimConfig(seed=3))
    with SimThread(server):
        yield server


def _answer(sim: SimServer, path: str, query: dict[str, str], wait: bool) -> Any:
    """The path's answer; with ``wait``, a list asked again while empty (15 s at most).

    Klines and trades list what the simulator traded since it started: on a busy
    machine the first trade of a market can come after the test asks.
    """
    deadline = time.monotonic() + 15
    while True:
        answer = httpx.get(sim.rest_url + path, params=query, timeout=10)
        assert answer.status_code == 200, (path, query, answer.text[:300])
        body = answer.json()
        if not wait or body or not isinstance(body, list):
            return body
        if time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_the_test_asks_every_path_of_the_contract() -> None:
    assert {path for path, _, _ in CONTRACT_PATHS} == set(QUERIES)


@pytest.mark.parametrize(
    ("path", "schema", "components"),
    CONTRACT_PATHS,
    ids=[p for p, _, _ in CONTRACT_PATHS],
)
def test_every_path_answers_as_its_schema_says(
    sim: SimServer, path: str, schema: dict[str, Any], components: dict[str, Any]
) -> None:
    validator = jsonschema.Draft202012Validator({**schema, "components": components})
    for query in QUERIES[path]:
        body = _answer(sim, path, query, wait=path not in MAY_BE_EMPTY)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, (
            path,
            query,
            [f"{list(e.path)}: {e.message}" for e in errors[:5]],
        )
        if isinstance(body, list) and path not in MAY_BE_EMPTY:
            assert body, (path, query, "an empty answer proves nothing")
