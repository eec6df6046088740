"""The `village up` command: the embedded default, everything local."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from village.commands.output import settings_or_exit
from village.local_stack import DATA_DIR
from village.up import run_up
from village.up_stack import LocalBroker

console = Console(stderr=True, soft_wrap=True, highlight=False)



def up(
    data_dir: Annotated[Path, typer.Option(help="where the local broker and database live")]
    = DATA_DIR,
    broker: Annotated[LocalBroker, typer.Option(
        help="the local broker; auto: Mosquitto if installed, else embedded amqtt")]
    = LocalBroker.AUTO,
) -> None:
    """Start everything locally: broker, database, schema, ingest and simulated devices."""
    run_up(settings_or_exit(local_stack=False, database=False), data_dir, console, broker)


def register(app: typer.Typer) -> None:
    """Add this command to the `village` program."""
    app.command()(up)
