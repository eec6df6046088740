"""The Dockerfile builds the same package the tests install: pyproject's project, from `.`."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def copied_sources() -> set[str]:
    sources: set[str] = set()
    for name, args in instructions():
        if name == "COPY" and "--from" not in args:
            *parts, _ = shlex.split(args)
            sources |= {p.rstrip("/") for p in parts if not p.startswith("--")}
    return sources


def test_the_image_installs_the_project_with_pip_from_its_root() -> None:
    runs = " && ".join(args for name, args in instructions() if name == "RUN")
    assert re.search(r"\bpip install (--[\w-]+ )*\.(\s|$)", runs), runs
    assert {"pyproject.toml", "README.md"} <= copied_sources()


def test_every_package_of_the_project_is_copied() -> None:
    includes = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in includes}
    assert packages <= copied_sources(), packages - copied_sources()
    for package in packages:
        assert (ROOT / package / "__init__.py").exists(), package


def test_the_python_is_one_the_project_supports() -> None:
    (base,) = [args for name, args in instructions() if name == "FROM"]
    version = re.match(r"python:(\d+)\.(\d+)", base)
    assert version, base
    minimum = re.match(r">=(\d+)\.(\d+)", pyproject()["project"]["requires-python"])
    assert minimum
    assert tuple(map(int, version.groups())) >= tuple(map(int, minimum.groups()))


def test_dockerignore_keeps_what_the_build_copies() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for source in copied_sources():
        assert not any(fnmatch.fnmatch(source, p) for p in patterns), source
    assert ".env" in patterns and ".venv" in patterns and ".git" in patterns


def test_the_entrypoint_is_an_executable_shell_script() -> None:
    (entry,) = [args for name, args in instructions() if name == "ENTRYPOINT"]
    copies = {shlex.split(a)[-1]: shlex.split(a)[0] for n, a in instructions() if n == "COPY"}
    script = ROOT / copies["/usr/local/bin/village-entrypoint"]
    assert "village-entrypoint" in entry
    assert script.read_text().startswith("#!/bin/sh") and os.access(script, os.X_OK)
    assert 'exec "$@"' in script.read_text()


def test_the_service_runs_unprivileged() -> None:
    users = [args for name, args in instructions() if name == "USER"]
    assert users and users[-1] not in ("root", "0")
