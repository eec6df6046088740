"""Serving the API in a background thread, for `village up` and tests (the CLI serves in
the foreground with `village api serve`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn

from village.api.app import create_app
from village.settings import Settings

START_TIMEOUT_S = 15.0


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
    # Started, not merely "the port answers": another program may hold the port.
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        where = f"{settings.api.host}:{settings.api.port}"
        if not thread.is_alive():
            raise OSError(f"cannot serve the API on {where}: the address is in use or not "
                          "this machine's (set VILLAGE_API__HOST, VILLAGE_API__PORT)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"the API did not start on {where} within {START_TIMEOUT_S} s")
        time.sleep(0.05)
    return ApiHandle(server, thread, f"http://{settings.api.host}:{settings.api.port}")
