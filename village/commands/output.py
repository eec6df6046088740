"""What the `village` commands print: results on stdout, errors as one red line on stderr."""

from __future__ import annotations

import typer
from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one red error line and return the Exit for the caller to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)
