"""What the `village` commands print: results on stdout, errors as one red line on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from prometheus_client import CollectorRegistry
from rich.console import Console

from ground.errors import Refused
from ground.metrics import MetricsServer, serve_metrics
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


def metrics_served(registry: CollectorRegistry, port: int, setting: str) -> MetricsServer | None:
    """Serve a process's metrics, saying where; a port already taken is a warning, not a
    reason to stop the process (its data matters more than its metrics)."""
    try:
        server = serve_metrics(registry, port)
    except OSError as exc:
        err.print(f"[yellow]metrics not served: port {port}: {exc.strerror}; set {setting}"
                  " (0: none)[/yellow]", highlight=False)
        return None
    if server is not None:
        err.print(f"metrics at http://0.0.0.0:{server.port}/metrics", highlight=False)
    return server
