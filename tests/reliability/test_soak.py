"""The short soak of ``make test``: 100 markets, faults, memory and leaks checked.

``make soak`` runs the long one (a simulated hour); see ``bench/soak.py``.
"""

from __future__ import annotations

import pytest

from bench.soak import run_soak

pytestmark = pytest.mark.e2e


def test_short_soak_keeps_memory_connections_and_queues_bounded() -> None:
    result = run_soak(
        sim_minutes=7.5,
        speed=30.0,
        symbols=100,
        fault_every_s=2.5,
        sample_every_s=0.5,
    )
    assert not result.problems, result.problems
    assert result.faults_fired, "no fault fired"
    assert result.frames > 20_000
    assert result.outputs > 1_000
    # Every connection group is connected at the end of each sample, none leaked.
    assert max(result.sim_connections) <= result.connection_groups + 1
