"""What the `village` commands print: results on stdout, errors as one red line on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from ground.errors import Refused
from ground.settings import SettingsError
from village.settings import Settings, load_settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red error line and return the Exit for the caller to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def refusals(code: int = 1) -> Iterator[None]:
    """A domain service's refusal ends the command: one red line, exit status `code`."""
    try:
        yield
    except Refused as exc:
        raise fail(str(exc), code) from None


def settings_or_exit() -> Settings:
    """Load settings, or print the one line naming the bad setting and exit 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
