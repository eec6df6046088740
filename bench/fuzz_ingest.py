"""The long fuzz of ingest's pure decoder and planner (the suite runs a short, fixed one).

Runs each property of `tests/ingest/fuzzing.py` for many randomized examples and prints
what it ran: examples, time, rate and the seed that reproduces the run.

    .venv/bin/python bench/fuzz_ingest.py --examples 20000 --seed 7
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.ingest.fuzzing
from common import load  # noqa: E402

from tests.ingest.fuzzing import PROPERTIES  # noqa: E402


def run_property(name: str, examples: int, run_seed: int) -> tuple[int, float]:
    """Fuzz one property; return (examples run, seconds)."""
    check, inputs = PROPERTIES[name]
    ran = 0

    @seed(run_seed)
    @settings(max_examples=examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def run(value: Any) -> None:
        nonlocal ran
        ran += 1
        check(value)

    started = time.perf_counter()
    run()
    return ran, time.perf_counter() - started


def main() -> int:
    """Parse the arguments, fuzz every chosen property, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="per property")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--property", action="append", choices=sorted(PROPERTIES),
                        help="default: all")
    args = parser.parse_args()
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"fuzz_ingest: seed {run_seed}, up to {args.examples} examples per property; "
          f"{load()}")
    failed = False
    for name in args.property or sorted(PROPERTIES):
        try:
            ran, seconds = run_property(name, args.examples, run_seed)
        except Exception as exc:  # noqa: BLE001 - report the falsifying example and go on
            failed = True
            print(f"  {name:10s} FAILED: {type(exc).__name__}: {str(exc)[:2000]}")
            continue
        print(f"  {name:10s} {ran:7d} examples in {seconds:7.1f} s "
              f"({ran / seconds:7.0f}/s): no property broken")
    print(f"rerun: .venv/bin/python bench/fuzz_ingest.py --examples {args.examples} "
          f"--seed {run_seed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
