"""Benchmark: `village devices import` of 15,000 and 150,000 devices, and `broker-config`.

Each step runs in a child process of its own, so its peak memory (max RSS) is its own.
Run: `.venv/bin/python bench/registry_import.py [--sizes 15000,150000]`. Not a test.
Uses a scratch database on TEST_DATABASE_ADMIN_URL (default the local server), dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psycopg

ADMIN_URL = os.environ.get("TEST_DATABASE_ADMIN_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


def registry_file(path: Path, count: int) -> None:
    """A registry CSV of `count` devices: a gateway per 300, the rest water meters under them."""
    gateways = max(1, count // 300)
    with path.open("w", encoding="utf-8") as out:
        out.write("device_id,kind,village,name,township,grid,latitude,longitude,installed_on,"
                  "gateway_id,tags\n")
        for g in range(gateways):
            out.write(f"gw-{g:05d},gateway,村{g % 400},网关{g},镇{g % 3},,,,,,\n")
        for n in range(count - gateways):
            out.write(f"wm-{n:07d},water_meter,村{n % 400},用户{n}的水表,镇{n % 3},{n % 12}组,"
                      f"34.{n:07d},113.{n:07d},2026-01-05,gw-{n % gateways:05d},户号={n}\n")


def child(args: list[str], database_url: str) -> dict[str, float]:
    """Run one `village` command in a fresh process; its wall time and peak RSS."""
    code = ("import resource, sys, time\n"
            "from village.cli import app\n"
            "t = time.perf_counter()\n"
            "try:\n"
            "    app(sys.argv[1:], prog_name='village', standalone_mode=False)\n"
            "finally:\n"
            "    print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
            " file=sys.stderr)\n")
    env = {**os.environ, "VILLAGE_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"village {' '.join(args)} failed:\n{done.stderr}")
    seconds, rss_kib = done.stderr.strip().splitlines()[-1].split()
    return {"seconds": float(seconds), "peak_rss_mb": int(rss_kib) / 1024}


def mosquitto_start_s(conf: Path, work: Path) -> float:
    """How long a private Mosquitto takes to start with the generated passwd and ACL files."""
    from ground.local import MosquittoServer

    server = MosquittoServer(data_dir=work / "broker", password_file=conf / "passwd",
                             acl_file=conf / "acl")
    started = time.perf_counter()
    server.start()
    elapsed = time.perf_counter() - started
    server.kill()
    return elapsed


def run_size(count: int, work: Path) -> dict[str, object]:
    """Fresh database; import with secrets; re-import unchanged; broker-config; broker start."""
    from village.schema import migrate

    name = f"village_bench_registry_{os.getpid()}_{count}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(url, timedelta(days=730))
        csv_path = work / f"registry_{count}.csv"
        registry_file(csv_path, count)
        secrets = work / f"secrets_{count}.csv"
        load_before = os.getloadavg()
        first = child(["devices", "import", str(csv_path), "--secrets-out", str(secrets)], url)
        again = child(["devices", "import", str(csv_path)], url)
        conf = work / f"conf_{count}"
        config = child(["broker-config", "--out", str(conf)], url)
        start_s = mosquitto_start_s(conf, work / f"m_{count}")
        return {"devices": count, "csv_mb": csv_path.stat().st_size / 2**20,
                "import_new_with_secrets": first, "reimport_unchanged": again,
                "broker_config": config, "passwd_mb": (conf / "passwd").stat().st_size / 2**20,
                "acl_lines": len((conf / "acl").read_text().splitlines()),
                "mosquitto_start_s": start_s,
                "load_before": load_before, "load_after": os.getloadavg()}
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    """Run every size and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="15000,150000")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="village-bench-registry-"))
    try:
        for count in sizes:
            figures = run_size(count, work)
            print(json.dumps(figures, indent=1))
            for step in ("import_new_with_secrets", "reimport_unchanged", "broker_config"):
                f = figures[step]
                assert isinstance(f, dict)
                print(f"{count:>7} devices  {step:<24} {f['seconds']:7.2f} s "
                      f"({count / f['seconds']:9.0f} devices/s)  peak RSS {f['peak_rss_mb']:6.1f} MB")
            print(f"{count:>7} devices  mosquitto start with them  {figures['mosquitto_start_s']:.2f} s;"
                  f" load average {figures['load_before']} -> {figures['load_after']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"self peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB")


if __name__ == "__main__":
    main()
