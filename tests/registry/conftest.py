"""Helpers of the registry tests: run the `village` program in-process against a test database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from village.cli import app

Village = Callable[..., Result]


@pytest.fixture
def village(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Village:
    """Run `village ARGS...` on this test's database; returns the click Result."""
    monkeypatch.setenv("VILLAGE_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return run


def registry_csv(count: int, gateways: int = 0, village: str = "东村") -> str:
    """A registry file of `gateways` gateways and `count` water meters spread over them."""
    lines = ["device_id,kind,village,name,township,grid,latitude,longitude,installed_on,"
             "gateway_id,tags"]
    lines += [f"gw-{g:04d},gateway,{village},网关{g},城关镇,,,,,," for g in range(gateways)]
    for n in range(count):
        gateway = f"gw-{n % gateways:04d}" if gateways else ""
        lines.append(f"wm-{n:06d},water_meter,{village},用户{n}的水表,城关镇,{n % 12}组,"
                     f"34.{n:06d},113.{n:06d},2026-01-05,{gateway},户号={n}")
    return "\n".join(lines) + "\n"
