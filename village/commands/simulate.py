"""The `village` commands of this capability."""

import typer


def register(app: typer.Typer) -> None:
    """Add this capability's commands to the `village` program."""
