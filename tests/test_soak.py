"""The soak harness, run as a user runs it: one county for one minute, nothing lost.

Checks the harness (bench/soak.py) and the stack it drives, never its timings: every
process starts, the load flows, the NB-IoT burst is stored to the last reading, the
emergency reaches the county's speakers, the API answers, and ingest drains.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.soak
@pytest.mark.timeout(1200)
def test_one_county_for_one_minute_loses_nothing(tmp_path: Path) -> None:
    summary = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), "--counties", "1", "--minutes", "1",
         "--report-every-s", "30", "--burst-at-s", "10", "--burst-share", "0.1", "--burst-over-s", "10",
         "--api-every-s", "2", "--summary", str(summary)],
        # Without TEST_DATABASE_ADMIN_URL the soak starts a server of its own, as users run it.
        env=dict(os.environ), cwd=ROOT,
        capture_output=True, text=True, timeout=1100,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    found = orjson.loads(summary.read_bytes())
    assert found["drained"], "ingest did not commit everything it received"
    # 1,500 NB-IoT meters (a tenth of the county's) uploaded their day: every reading stored.
    assert found["burst_messages"] == found["burst_acknowledged"] == 1500
    assert found["burst_readings_stored"] == found["burst_readings_expected"] == 1500 * 96
    assert found["burst_drained_s"] is not None, "the burst was not seen committed in the run"
    assert found["dead_letters"] == 0
    assert found["api_requests"] > 0 and found["api_errors"] == 0
    assert found["emergencies"] == 1
    last = found["reports"][-1]
    assert last["emergencies"][0]["accepted"] == last["emergencies"][0]["speakers"] == 400
    assert all(report["published"] > 0 and report["committed"] > 0
               for report in found["reports"])
    assert set(last["rss_mb"]) >= {"ingest-1", "ingest-2", "alerting", "broadcast", "api",
                                   "mosquitto"}
