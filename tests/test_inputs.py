"""How ``bpx-flows run`` keys a symbol's state (``bpx_flows.inputs.key_function``)."""

from __future__ import annotations

import pytest

from bpx_flows.inputs import key_function

pytestmark = pytest.mark.timeout(30)


def test_a_routed_symbol_takes_its_key_and_any_other_keeps_its_name() -> None:
    route = {"SOL_USDC": "SOL_USDC#3", "BTC_USDC": "BTC_USDC"}
    key = key_function(route)
    assert key is not None
    assert key("SOL_USDC") == "SOL_USDC#3"
    assert key("BTC_USDC") == "BTC_USDC"
    assert key("ETH_USDC") == "ETH_USDC"  # e.g. a liquidation of an unselected market
    assert key("ETH_USDC") == "ETH_USDC"
    route["SOL_USDC"] = "changed"  # the key function took a copy
    assert key("SOL_USDC") == "SOL_USDC#3"


def test_unknown_symbols_are_not_remembered() -> None:
    key = key_function({"SOL_USDC": "SOL_USDC#1"})
    assert key is not None
    for index in range(1_000):
        assert key(f"X{index}_USDC") == f"X{index}_USDC"
    owner = key.__self__  # type: ignore[attr-defined]
    assert dict(owner) == {"SOL_USDC": "SOL_USDC#1"}


def test_one_worker_keys_by_symbol_without_a_function() -> None:
    assert key_function({}) is None
