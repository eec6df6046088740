"""The decoder and planner under a bounded property-based fuzz (hypothesis), reproducibly.

Derandomized, so every run tries the same inputs and a failure reproduces; the long,
randomized run is `bench/fuzz_ingest.py`.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.ingest.fuzzing import PROPERTIES

# Examples per property: together about a few seconds on a loaded machine.
EXAMPLES = {"telemetry": 150, "events": 150, "bytes": 100, "plan": 100}


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_hostile_input_never_raises_nor_stores_anything_impossible(name: str) -> None:
    check, inputs = PROPERTIES[name]

    @settings(max_examples=EXAMPLES[name], derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def run(value: Any) -> None:
        check(value)

    run()
