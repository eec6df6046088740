"""The decoder and planner under a bounded property-based fuzz (hypothesis), reproducibly.

Derandomized, so every run tries the same inputs and a failure reproduces; the long,
randomized run is `bench/fuzz_ingest.py`.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import decode
from devices.catalogue import KIND_BY_NAME
from devices.kind import DeviceKind
from devices.metrics import MetricSpec
from tests.ingest.fuzzing import (
    FLOATS,
    INTS,
    LIMITS,
    NOW,
    NOW_MS,
    PROPERTIES,
    SCALARS,
    reading_sets,
)

LATENESS_MS = int(LIMITS.accepted_lateness.total_seconds() * 1000)
FUTURE_MS = int(LIMITS.future_tolerance.total_seconds() * 1000)

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


@st.composite
def _day_uploads(draw: st.DrawFn, kind: DeviceKind) -> list[dict[str, Any]]:
    """An array of reading sets shaped as a day upload sends them (an epoch-ms time near the
    window, known metrics), their values mostly possible and sometimes anything, with some
    sets drawn from anywhere in between."""
    def value(spec: MetricSpec) -> st.SearchStrategy[object]:
        possible = st.integers(0, 1) if spec.boolean else st.floats(
            spec.minimum, spec.maximum, allow_nan=False)
        return st.one_of(possible, possible, possible, st.floats(spec.minimum - 1, spec.maximum + 1),
                         FLOATS, INTS, SCALARS)

    plain = st.builds(
        lambda ts, seq, values: {"ts": ts, **seq, **values},
        st.integers(NOW_MS - LATENESS_MS - 2, NOW_MS + FUTURE_MS + 2),
        st.fixed_dictionaries({}, optional={"seq": st.one_of(st.integers(), SCALARS)}),
        st.fixed_dictionaries({}, optional={spec.name: value(spec) for spec in kind.metrics}))
    return draw(st.lists(st.one_of(plain, plain, plain, reading_sets(kind)), max_size=12))


@pytest.mark.parametrize("kind", [KIND_BY_NAME["water_meter"], KIND_BY_NAME["barn"]],
                         ids=lambda kind: kind.name)
def test_arrays_decode_as_their_sets_would_one_by_one(kind: DeviceKind) -> None:
    # decode_telemetry takes the usual sets in one tight loop and hands the rest to the
    # careful per-set decoder: together they must give exactly what the careful one gives.
    @settings(max_examples=300, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(_day_uploads(kind))
    def run(document: list[dict[str, Any]]) -> None:
        expected = decode.Decoded()
        for index, entry in enumerate(document):
            decode._decode_reading_set("d-1", entry, index, kind, NOW, LIMITS, expected)
        got = decode.decode_telemetry("d-1", document, kind, NOW, LIMITS)
        assert got.readings == expected.readings
        assert [type(r) for r in got.readings] == [decode.Reading] * len(got.readings)
        assert got.rejections == expected.rejections
        assert got.unknown_metrics == expected.unknown_metrics

    run()
