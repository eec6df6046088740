"""What the `village` commands print: results on stdout, errors as one red line on stderr."""

from __future__ import annotations

import typer
from rich.console import Console

from ground.settings import SettingsError
from village.settings import Settings, load_settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red error line and return the Exit for the caller to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def settings_or_exit() -> Settings:
    """Load settings, or print the one line naming the bad setting and exit 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
