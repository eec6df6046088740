"""Serving a process's Prometheus metrics on a port of its own (adapter).

Each long-running process (ingest worker, alerting, broadcast daemon) keeps its metrics
in a `CollectorRegistry` of its own and serves it here; the API serves its SQL-derived
gauges on its own `/metrics` route instead.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server


class MetricsServer:
    """A metrics endpoint served from a daemon thread; `close()` ends it."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str) -> None:
        self._server, self._thread = start_http_server(port, host, registry)
        self.port = self._server.server_port

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, port: int, host: str = "0.0.0.0"
                  ) -> MetricsServer | None:
    """Serve `registry` at http://host:port/metrics; port 0 serves nothing (None)."""
    if port == 0:
        return None
    return MetricsServer(registry, port, host)
