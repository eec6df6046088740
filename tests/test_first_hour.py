"""The first hour: `village up` in one terminal, the README's "What to try next" in another.

`village up` starts in a temporary directory; the README's lines, and a handful of other
commands, run from separate processes in that directory with a clean environment (no
`VILLAGE_*` variable): they find the stack through the file `village up` writes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ground.local import PostgresCluster, free_port, stop_stale_servers
from tests.ingest.conftest import wait_until
from tests.ingest.test_up import cluster_dir_in
from village.local_stack import TRY_NEXT

README = Path(__file__).resolve().parent.parent / "README.md"
BIN = Path(sys.executable).parent


def readme_try_next() -> list[str]:
    """The indented command lines of the README's "What to try next" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## What to try next", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    village ")]


def test_the_readme_and_village_up_suggest_the_same_five_lines() -> None:
    assert readme_try_next() == list(TRY_NEXT)
    assert len(TRY_NEXT) == 5
    two_commands = README.read_text(encoding="utf-8").index("    bash scripts/test")
    assert two_commands < README.read_text(encoding="utf-8").index("## What to try next")


@pytest.fixture(scope="module")
def stack() -> Iterator[Path]:
    """A running `village up` in a directory of its own; yields the directory."""
    base = Path(tempfile.mkdtemp(prefix="village-first-hour-"))
    base.chmod(0o755)  # the cluster, run by the postgres user when we are root, lives inside
    env = {k: v for k, v in os.environ.items() if not k.startswith("VILLAGE_")}
    env["VILLAGE_API__PORT"] = str(free_port())
    process = subprocess.Popen([str(BIN / "village"), "up"], cwd=base, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: (base / "var" / "stack.json").exists() or process.poll() is not None,
                   timeout_s=120, what="village up to write var/stack.json")
        assert process.poll() is None, "".join(lines)
        yield base
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, "".join(lines)
        assert not (base / "var" / "stack.json").exists()  # gone with the stack
        output = "".join(lines)
        assert all(f"    {line}" in output for line in TRY_NEXT), output
    finally:
        if process.poll() is None:
            process.kill()
            stop_stale_servers((base / "var" / "mosquitto" / "mosquitto.conf").resolve())
            cluster_dir = cluster_dir_in("".join(lines))
            if cluster_dir:
                PostgresCluster(data_dir=cluster_dir).stop("immediate")
        reader.join(5)
        shutil.rmtree(base, ignore_errors=True)


def run(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command line as a person types it, in a clean environment."""
    clean = {"PATH": f"{BIN}{os.pathsep}/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
    return subprocess.run(shlex.split(line), cwd=cwd, env=clean, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_what_to_try_next_works_from_another_terminal(stack: Path) -> None:
    for line in readme_try_next():
        done = run(line, stack)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("using the stack village up runs here"), done.stderr
    sent = run("village broadcast list", stack).stdout
    broadcast_id = re.search(r"^([0-9a-f]{32}) ", sent, re.MULTILINE)
    assert broadcast_id, sent
    prefix = broadcast_id.group(1)[:6]
    # The simulated speakers answer: the broadcast completes, with its end time.
    def completed_report() -> str | None:
        out = run(f"village broadcast report {prefix}", stack).stdout
        return out if " completed at " in out else None

    report = wait_until(completed_report, timeout_s=60, what="the broadcast to complete")
    assert report is not None and "confirmed 3/3" in report, report
    for line in ("village devices show barn-0001", "village alerts silences",
                 "village tokens list", "village broadcast show " + prefix,
                 "village migrate", "village dashboards check --days 1"):
        done = run(line, stack)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"


@pytest.mark.slow
def test_a_second_terminal_elsewhere_is_told_in_one_line(tmp_path: Path) -> None:
    started = time.monotonic()
    done = run("village devices list", tmp_path)
    assert done.returncode == 69
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: cannot reach the database at 127.0.0.1:5432/village") \
        or done.stderr.startswith("error: database village does not exist"), done.stderr
    assert "village up" in done.stderr
    assert time.monotonic() - started < 60
