"""`scripts/run` installs what running needs, `scripts/test` what testing needs.

`scripts/setup` runs in a copy of the project with a `python3` on PATH that records how it
is called (the script's only tool), so nothing is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORDING_PYTHON = """#!/bin/sh
echo "$*" >> "{log}"
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; fi
"""


def installs(purpose: str | None, tmp_path: Path) -> list[str]:
    """What `bash scripts/setup [purpose]` asks pip to install."""
    project, tools = tmp_path / "project", tmp_path / "bin"
    (project / "scripts").mkdir(parents=True)
    tools.mkdir()
    shutil.copy(ROOT / "scripts" / "setup", project / "scripts" / "setup")
    log = tmp_path / "calls.log"
    python = tools / "python3"
    python.write_text(RECORDING_PYTHON.format(log=log))
    python.chmod(0o755)
    for stand_in in ("chromedriver", "apt-get"):  # nothing is installed on this machine
        (tools / stand_in).write_text(f"#!/bin/sh\necho \"{stand_in} $*\" >> \"{log}\"\n")
        (tools / stand_in).chmod(0o755)
    env = {"PATH": f"{tools}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run(["bash", str(project / "scripts" / "setup"), *([purpose] if purpose else [])],
                   env=env, check=True, capture_output=True)
    return [line.split()[-1] for line in log.read_text().splitlines() if "install" in line
            and "-e" in line.split()]


def extra(name: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {spec.split(">")[0].split("=")[0].split("<")[0].strip()
            for spec in project["optional-dependencies"][name]}


@pytest.mark.parametrize(("script", "purpose", "wanted"), [
    ("run", "run", ".[embedded]"), ("test", "test", ".[dev]")])
def test_each_script_installs_what_its_purpose_needs(script: str, purpose: str, wanted: str,
                                                     tmp_path: Path) -> None:
    assert f"bash scripts/setup {purpose}\n" in (ROOT / "scripts" / script).read_text()
    assert installs(purpose, tmp_path) == [wanted]


def test_running_needs_no_test_tool() -> None:
    assert not extra("embedded") & {"pytest", "mypy", "ruff", "schemathesis", "selenium"}
    assert {"pytest", "mypy", "ruff"} <= extra("dev")


def test_setup_alone_sets_up_for_testing(tmp_path: Path) -> None:
    assert installs(None, tmp_path) == [".[dev]"]
