"""The deploy tests' fixtures: `.env.example` filled in, and the resolved compose model."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.compose_model import ENV_EXAMPLE, SECRETS, compose


@pytest.fixture(scope="module")
def filled_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`.env.example` with every secret filled in, as an installer would."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for index, name in enumerate(SECRETS):
        text = re.sub(rf"^{name}=$", f"{name}=secret{index}value", text, flags=re.MULTILINE)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model(filled_env: Path) -> dict[str, Any]:
    """The normalised compose model (every profile), as Compose itself resolves it."""
    result = compose(filled_env, "--profile", "simulators", "--profile", "monitoring", "config",
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))
