"""The operators' side of the soak (bench/soak.py): a steady trickle of API requests and the
county emergencies."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx
import psycopg
from soak_parts import County

from broadcast.model import BroadcastRequest, Scope
from broadcast.service import create_broadcast
from ground.principal import SYSTEM


class Operators:
    """A steady trickle of operator requests: one county's latest meter registers at a time,
    as an operator asks for them: a township's meters (about 5,000) in one columns request
    (`/telemetry/latest/columns`, gzip-packed). The soak's counties share one registry, so a
    county is its townships' requests; a deployment of one county answers it in one."""

    def __init__(self, port: int, token: str, counties: list[County], every_s: float) -> None:
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                  headers={"Authorization": f"Bearer {token}"})
        self._counties = counties
        self._every_s = every_s
        self.requests: list[float] = []  # seconds per request (one township's meters)
        self.sweeps: list[float] = []  # seconds per county (every township's request)
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Begin asking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop asking."""
        self._stop.set()
        self._thread.join(30)
        self._http.close()

    def _run(self) -> None:
        turn = 0
        while not self._stop.wait(self._every_s):
            target = self._counties[turn % len(self._counties)]
            turn += 1
            started = time.perf_counter()
            for township in target.townships:
                after = None
                while True:  # one request a township: its 5,000 meters are within a page
                    asked = time.perf_counter()
                    response = self._http.get("/telemetry/latest/columns", params={
                        "kind": "water_meter", "township": township, "metric": "total_m3"}
                        | ({"after": after} if after else {}))
                    answered = response.status_code == 200
                    # Read as a client would (unpacked and parsed), within the timing.
                    after = response.json()["next_after"] if answered else None
                    self.requests.append(time.perf_counter() - asked)
                    self.errors += not answered
                    if after is None:
                        break
            self.sweeps.append(time.perf_counter() - started)


def emergency(url: str, speakers: list[str]) -> str:
    """An emergency broadcast to these loudspeakers (the soak: every county's at once)."""
    request = BroadcastRequest(scope=Scope.of_speakers(*speakers),
                               text="山洪预警，请立即转移。", priority="emergency",
                               volume_pct=100, expires_in_s=600)
    with psycopg.connect(url) as conn:
        return create_broadcast(conn, request, SYSTEM, datetime.now(UTC))
