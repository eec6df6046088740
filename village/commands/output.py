"""What the `village` commands print: results on stdout, errors as one red line on stderr."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import typer
from prometheus_client import CollectorRegistry
from rich.console import Console, ConsoleDimensions

from ground.errors import Refused
from ground.metrics import MetricsServer, serve_metrics
from ground.migrate import require_current_schema
from ground.settings import SettingsError
from village.local_stack import find_local_stack
from village.settings import Settings, load_settings

PIPED_WIDTH = 10_000


class ResultConsole(Console):
    """Standard output: a terminal's width on a terminal, and, piped, as wide as a line
    needs (tables are not cut to 80 columns for grep and cut)."""

    @property
    def size(self) -> ConsoleDimensions:
        """The terminal's size, or a width no table reaches when piped."""
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(PIPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


out = ResultConsole(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
metrics_log = logging.getLogger("village.metrics")


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


def load_with_local_stack() -> tuple[Settings, Path | None]:
    """The settings, pointed at a `village up` running in this directory (or a parent) when
    no database or broker URL is configured; the stack file used, if any."""
    settings = load_settings()
    if {"database_url", "mqtt_url"} & settings.model_fields_set:
        return settings, None
    found = find_local_stack(Path.cwd())
    if found is None:
        return settings, None
    path, stack = found
    return load_settings(database_url=stack.database_url, mqtt_url=stack.mqtt_url), path


def settings_or_exit(local_stack: bool = True, database: bool = True) -> Settings:
    """Load settings, or print the one line naming the bad setting and exit 2.

    With no database or broker URL configured, a `village up` running in this directory
    (or a parent) is used instead, said in one line. With `database`, the database must
    answer and have the schema this code needs (else psycopg's error or SchemaBehind, which
    the CLI door turns into one line): a command never half-works on an older schema.
    """
    try:
        settings, stack_file = load_with_local_stack() if local_stack else (load_settings(), None)
    except SettingsError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if stack_file is not None:
        err.print(f"using the stack village up runs here ({stack_file}): no "
                  "VILLAGE_DATABASE_URL or VILLAGE_MQTT_URL is set", highlight=False)
    if database:
        with psycopg.connect(settings.database_url, connect_timeout=10) as conn:
            require_current_schema(conn)
    return settings


def metrics_served(registry: CollectorRegistry, port: int, setting: str) -> MetricsServer | None:
    """Serve a process's metrics, saying where; a port already taken is a warning, not a
    reason to stop the process (its data matters more than its metrics)."""
    try:
        server = serve_metrics(registry, port)
    except OSError as exc:
        metrics_log.warning("metrics not served: port %d: %s; set %s (0: none)", port,
                            exc.strerror, setting)
        return None
    if server is not None:
        metrics_log.info("metrics at http://0.0.0.0:%d/metrics", server.port)
    return server
