"""Prometheus metrics, one registry per service instance (several services in one test process
must not share counters), served over HTTP on `SUPPORTFLOW_METRICS_PORT` for the cluster's scraper."""

from __future__ import annotations

import logging
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

#: Seconds buckets for things that should take well under a second (timer lateness, batches).
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(f"supportflow_{self.service}_{name}", documentation, labels, registry=self.registry)

    def histogram(
        self, name: str, documentation: str, buckets: tuple[float, ...] = SECONDS, labels: tuple[str, ...] = ()
    ) -> Histogram:
        return Histogram(
            f"supportflow_{self.service}_{name}", documentation, labels, buckets=buckets, registry=self.registry
        )

    def serve(self, host: str, port: int | None) -> int:
        """Serve /metrics on `port` (0: any free port; None: not at all). Returns the port."""
        if port is None:
            return 0
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self._server.server_port)
        log.info("%s metrics on http://%s:%d/metrics", self.service, host, self.port)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
