"""Process-wide tuning for the long-running services that churn through rows."""

from __future__ import annotations

import gc

# The ingest committer and the alerting pass build hundreds of thousands of short-lived,
# acyclic tuples a batch (readings, samples). At the default young-generation threshold
# (700) the collector runs hundreds of times a batch, and its older-generation passes walk
# everything the batch has built so far: a third of the committer's planning (2.2 against
# 1.6 µs a reading). Ten thousand keeps nearly all of that gain and still finds real cycles.
YOUNG_GENERATION_THRESHOLD = 10_000


def collect_garbage_in_larger_steps() -> None:
    """Run the young-generation collection every 10,000 allocations rather than 700."""
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
