"""Ingest benchmark: one worker (and two) fed by the C publisher; prints figures and load.

    bash bench/publisher/build.sh          # once: needs libmosquitto-dev
    .venv/bin/python bench/ingest_bench.py [--quick] [--runs 10]

`--runs N` measures the ceiling and one worker N times, alternating, and prints every
run's ratio with the min and median. Runs against a private Mosquitto (the project's no-loss settings) and fresh databases on
the local PostgreSQL (TEST_DATABASE_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/
postgres). Each worker is a real `village ingest` process. Commits are observed through the
worker's `pg_notify`, whose `stored_at` is the committing transaction's now(): the time a
notification arrives is the commit time of every row with that `received_at`.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
from common import load, peak_rss_mb
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ground.local import MosquittoServer  # noqa: E402
from tests.conftest import ADMIN_URL, create_database, drop_database  # noqa: E402
from village.schema import migrate  # noqa: E402

PUBLISHER = ROOT / "bench" / "bin" / "pub"
DEVICES = 1000


def make_template() -> str:
    """A migrated database with the benchmark's meters registered, to copy per run."""
    name = f"village_bench_template_{os.getpid()}"
    url = create_database(ADMIN_URL, name)
    migrate(url, timedelta(days=730))
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY devices (device_id, kind, village) FROM STDIN") as copy:
            for n in range(DEVICES):
                copy.write_row((f"wm-{n:06d}", "water_meter", "bench"))
    return name


@contextmanager
def fresh_database(template: str) -> Iterator[str]:
    """A copy of the template for one run."""
    name = f"village_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(ADMIN_URL, name, template=template)
    try:
        yield url
    finally:
        drop_database(ADMIN_URL, name)


class Commits:
    """Listens to the workers' notifications: readings committed, and when."""

    def __init__(self, url: str) -> None:
        self.readings = 0
        self.dead_letters = 0
        self.first: float | None = None
        self.last: float | None = None
        self.commit_time: dict[str, float] = {}  # stored_at -> wall time seen
        self._conn = psycopg.connect(url, autocommit=True)
        self._conn.execute("LISTEN village_ingest")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.2):
                seen = time.time()
                body = json.loads(note.payload)
                self.readings += body["readings"]
                self.dead_letters += body["dead_letters"]
                self.commit_time[body["stored_at"]] = seen
                self.first = self.first or seen
                self.last = seen

    def wait_for(self, readings: int, timeout_s: float) -> bool:
        """Wait until this many readings are committed."""
        deadline = time.monotonic() + timeout_s
        while self.readings < readings and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.readings >= readings

    def close(self) -> None:
        """Stop listening."""
        self._stop.set()
        self._thread.join(2)
        self._conn.close()


@dataclass
class WorkerProcess:
    """A `village ingest` process: its memory and CPU."""

    process: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        """The worker's process, then its children (the committer)."""
        pid = self.process.pid
        return [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory the worker's process and its committer process
        each ever had, added."""
        return sum(peak_rss_mb(pid) for pid in self.pids())

    def cpu_s(self) -> list[float]:
        """CPU seconds (user and system) used so far by each of `pids()`."""
        return [cpu_s(pid) for pid in self.pids()]

    def stop(self) -> None:
        """Stop gracefully."""
        self.process.terminate()
        self.process.wait(30)


def cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_worker(url: str, mqtt_url: str, prefix: str, client_id: str) -> WorkerProcess:
    """Start a worker process and wait until it has subscribed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VILLAGE_")}
    env.update(VILLAGE_DATABASE_URL=url, VILLAGE_MQTT_URL=mqtt_url, VILLAGE_TOPIC_PREFIX=prefix,
               VILLAGE_INGEST__CLIENT_ID=client_id, VILLAGE_INGEST__SHARE_GROUP="bench")
    log_path = Path(tempfile.gettempdir()) / f"bench-{client_id}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "village.cli", "ingest",
                                    "--status-every", "5"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=tempfile.gettempdir())
    # Messages published before the worker has subscribed would reach nobody.
    deadline = time.monotonic() + 60
    while b"subscribed:" not in log_path.read_bytes():
        if time.monotonic() > deadline or process.poll() is not None:
            sys.exit(f"the worker did not subscribe; see {log_path}")
        time.sleep(0.1)
    return WorkerProcess(process)


def publish(broker: MosquittoServer, prefix: str, messages: int, rate: float, readings: int,
            base: datetime, latency: bool = False) -> subprocess.Popen[str]:
    """Start the C publisher."""
    args = [str(PUBLISHER), "127.0.0.1", str(broker.port), prefix, str(DEVICES), str(messages),
            str(rate), str(readings), str(int(base.timestamp() * 1000))]
    if latency:
        args.append("latency")
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def ceiling(broker: MosquittoServer, prefix: str, messages: int) -> tuple[float, float]:
    """A bare paho QoS 1 subscriber that only counts: messages/s from first to last, and
    CPU seconds per message of this process (which does nothing else meanwhile)."""
    got = 0
    first = last = 0.0
    done = threading.Event()

    def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        nonlocal got, first, last
        got += 1
        last = time.monotonic()
        if got == 1:
            first = last
        if got >= messages:
            done.set()

    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-ceiling",
                         protocol=paho.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_connect = lambda c, *args: c.subscribe(f"{prefix}/+/telemetry", qos=1)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    subscribed.wait(10)
    cpu_before = time.process_time()
    pub = publish(broker, prefix, messages, 0, 1, datetime.now(UTC) - timedelta(days=20))
    done.wait(300)
    cpu_per_message = (time.process_time() - cpu_before) / max(got, 1)
    pub.wait()
    client.disconnect()
    client.loop_stop()
    return ((got - 1) / (last - first) if got > 1 else 0.0), cpu_per_message


def run_workers(template: str, broker: MosquittoServer, workers: int, messages: int,
                readings: int, rate: float = 0, latency: bool = False) -> dict[str, float]:
    """Stream through `workers` worker processes; figures from the commit notifications."""
    prefix = "b" + uuid.uuid4().hex[:8]
    with fresh_database(template) as url:
        commits = Commits(url)
        procs = [start_worker(url, broker.url, prefix, f"bench-{prefix}-{n}")
                 for n in range(workers)]
        try:
            base = datetime.now(UTC) - (timedelta(seconds=1) if latency else timedelta(days=20))
            cpu_before = [p.cpu_s() for p in procs]
            started = time.time()
            pub = publish(broker, prefix, messages, rate, readings, base, latency)
            complete = commits.wait_for(messages * readings, timeout_s=600)
            used = [[after - before for after, before in zip(p.cpu_s(), was, strict=True)]
                    for p, was in zip(procs, cpu_before, strict=True)]
            pub_line = pub.communicate()[0].strip()
            figures: dict[str, float] = {
                "complete": float(complete),
                "readings": commits.readings,
                "dead_letters": commits.dead_letters,
                "seconds": (commits.last or started) - started,
                "peak_rss_mb": max(p.peak_rss_mb() for p in procs),
                # CPU per message of the receiving processes, and of their committers.
                "receiving_us": sum(u[0] for u in used) / messages * 1e6,
                "committing_us": sum(sum(u[1:]) for u in used) / messages * 1e6,
            }
            print(f"    publisher: {pub_line}")
            if latency:
                figures.update(latencies(url, commits))
        finally:
            for p in procs:
                p.stop()
            commits.close()
    return figures


def latencies(url: str, commits: Commits) -> dict[str, float]:
    """Publish-to-commit latency percentiles, per reading."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT received_at, value FROM readings WHERE metric = 'pub_ms'"
                            ).fetchall()
    # Notifications carry now() in PostgreSQL's JSON form; match on the instant, not the text.
    commit_at = {datetime.fromisoformat(k).timestamp(): v for k, v in commits.commit_time.items()}
    samples = sorted(commit_at[received.timestamp()] * 1000 - pub_ms for received, pub_ms in rows
                     if received.timestamp() in commit_at)
    if not samples:
        return {}

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p / 100 * len(samples)))]

    return {"p50_ms": pct(50), "p99_ms": pct(99), "max_ms": samples[-1],
            "samples": len(samples)}


@dataclass
class Run:
    """What the scenarios share: the broker, the template database, sizes, earlier figures."""

    broker: MosquittoServer
    template: str
    scale: float
    latency_s: int
    ceiling: float = 0.0
    one_worker: float = 0.0


def scenario_ceiling(run: Run) -> str:
    run.ceiling, cpu = ceiling(run.broker, "c" + uuid.uuid4().hex[:6], int(100_000 * run.scale))
    return f"bare paho QoS 1 counting subscriber: {run.ceiling:,.0f} msg/s, CPU {cpu * 1e6:.0f} µs/msg"


def cpu_use(figures: dict[str, float], per: str = "msg") -> str:
    """The worker's CPU per message, in the receiving process and in the committer."""
    return (f"CPU {figures['receiving_us']:.0f} µs/{per} receiving + "
            f"{figures['committing_us']:.0f} µs/{per} committing")


def scenario_one(run: Run) -> str:
    one = run_workers(run.template, run.broker, 1, int(100_000 * run.scale), 1)
    run.one_worker = one["readings"] / one["seconds"]
    share = f" ({run.one_worker / run.ceiling:.0%} of the bare subscriber)" if run.ceiling else ""
    return (f"one worker, one-reading messages: {run.one_worker:,.0f} msg/s committed{share}, "
            f"complete={bool(one['complete'])}, {cpu_use(one)}, "
            f"peak RSS {one['peak_rss_mb']:.0f} MB (worker and committer processes)")


def scenario_two(run: Run) -> str:
    two = run_workers(run.template, run.broker, 2, int(100_000 * run.scale), 1)
    rate = two["readings"] / two["seconds"]
    ratios = [f"{rate / run.one_worker:.2f}x one worker"] if run.one_worker else []
    if run.ceiling:
        ratios.append(f"{rate / run.ceiling:.0%} of the bare subscriber")
    ratio = f" ({', '.join(ratios)})" if ratios else ""
    return (f"two workers, one-reading messages: {rate:,.0f} msg/s committed{ratio}, "
            f"complete={bool(two['complete'])}, peak RSS {two['peak_rss_mb']:.0f} MB at most")


def scenario_batch(run: Run) -> str:
    big = run_workers(run.template, run.broker, 1, int(20_000 * run.scale), 96)
    return (f"one worker, 96-reading messages: {big['readings'] / big['seconds']:,.0f} "
            f"readings/s committed, complete={bool(big['complete'])}, "
            f"{cpu_use(big, '96-reading msg')}, peak RSS {big['peak_rss_mb']:.0f} MB")


def scenario_latency(run: Run) -> str:
    lat = run_workers(run.template, run.broker, 1, 3000 * run.latency_s, 1, rate=3000,
                      latency=True)
    nan = float("nan")
    return (f"one worker at 3,000 msg/s for {run.latency_s} s: publish-to-commit "
            f"p50 {lat.get('p50_ms', nan):.0f} ms, p99 {lat.get('p99_ms', nan):.0f} ms, "
            f"max {lat.get('max_ms', nan):.0f} ms over {lat.get('samples', 0):.0f} readings, "
            f"complete={bool(lat['complete'])}, peak RSS {lat['peak_rss_mb']:.0f} MB")


def repeated_ratio(run: Run, runs: int) -> None:
    """The ceiling then one worker, `runs` times: every run's ratio, then min and median."""
    ratios = []
    for n in range(1, runs + 1):
        print(f"run {n}/{runs}: {scenario_ceiling(run)}; {load()}", flush=True)
        print(f"run {n}/{runs}: {scenario_one(run)}; {load()}", flush=True)
        ratios.append(run.one_worker / run.ceiling if run.ceiling else 0.0)
    print(f"one worker / bare subscriber over {runs} runs: "
          f"{', '.join(f'{r:.0%}' for r in ratios)}; min {min(ratios):.0%}, "
          f"median {statistics.median(ratios):.0%}; {load()}", flush=True)


SCENARIOS = {"ceiling": scenario_ceiling, "one": scenario_one, "two": scenario_two,
             "batch": scenario_batch, "latency": scenario_latency}


def main() -> None:
    """Run the scenarios and print each figure with the machine's load."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append",
                        help="run only these scenarios (repeatable)")
    parser.add_argument("--runs", type=int, default=0,
                        help="first measure the ceiling and one worker this many times")
    args = parser.parse_args()
    if not PUBLISHER.exists():
        sys.exit("build the publisher first: bash bench/publisher/build.sh")
    print(f"ingest benchmark; {load()}")
    template = make_template()
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoServer(data_dir=Path(tmp) / "broker").start()
        run = Run(broker, template, 0.1 if args.quick else 1.0, 5 if args.quick else 20)
        try:
            if args.runs:
                repeated_ratio(run, args.runs)
            for name in args.only or ([] if args.runs else list(SCENARIOS)):
                print(f"{SCENARIOS[name](run)}; {load()}", flush=True)
        finally:
            broker.kill()
            drop_database(ADMIN_URL, template)


if __name__ == "__main__":
    main()
