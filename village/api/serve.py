"""Serving the API in a background thread, for `village up` and tests (the CLI serves in
the foreground with `village api serve`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import uvicorn

from ground.local import wait_for_port
from village.api.app import create_app
from village.settings import Settings


@dataclass
class ApiHandle:
    """A running API server; `stop()` ends it."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        """Stop accepting requests, finish those in flight, close the pool and broker link."""
        self.server.should_exit = True
        self.thread.join(15)


def start(settings: Settings, log_level: str = "warning") -> ApiHandle:
    """Serve the API on `settings.api.host:port` in a thread; return once it listens.

    uvicorn's lines go through the process's logging (one format for every service).
    """
    config = uvicorn.Config(create_app(settings), host=settings.api.host, port=settings.api.port,
                            log_level=log_level, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    wait_for_port(settings.api.port, host=settings.api.host)
    return ApiHandle(server, thread, f"http://{settings.api.host}:{settings.api.port}")
