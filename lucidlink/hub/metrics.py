"""The hub's Prometheus metrics, one registry per app (several hubs may share a process).

``lucidhub_requests_total{route,method,status}`` (route: the path template, or
``unmatched``), ``lucidhub_request_duration_seconds{route,method}`` histograms and
``lucidhub_block_bytes_total{direction}`` (bytes through the block endpoint).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
           60.0)
DIRECTIONS = ("in", "out")


class Metrics:
    """Request counts by route, method and status; latency histograms by route; block bytes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        """This hub's own registry (never the process-global default one)."""
        self._requests = Counter(
            "lucidhub_requests", "HTTP requests by route, method and status.",
            ("route", "method", "status"), registry=self.registry)
        self._latency = Histogram(
            "lucidhub_request_duration_seconds", "Request latency by route and method.",
            ("route", "method"), buckets=BUCKETS, registry=self.registry)
        self._block_bytes = Counter(
            "lucidhub_block_bytes", "Bytes moved through the hub's block endpoint.",
            ("direction",), registry=self.registry)
        for direction in DIRECTIONS:
            self._block_bytes.labels(direction)
        # The series of each (route, method, status) seen: ``labels()`` validates and
        # looks up under a lock on every call, which costs four times the counting.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:
            series = (self._requests.labels(route, method, str(status)),
                      self._latency.labels(route, method))
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def count_block_bytes(self, direction: str, n: int) -> None:
        """Count ``n`` bytes moved through the block endpoint (``in`` or ``out``)."""
        self._block_bytes.labels(direction).inc(n)

    @property
    def requests(self) -> dict[tuple[str, str, int], int]:
        """Requests so far by ``(route, method, status)``."""
        return {
            (s.labels["route"], s.labels["method"], int(s.labels["status"])): int(s.value)
            for metric in self._requests.collect() for s in metric.samples
            if s.name == "lucidhub_requests_total"
        }

    @property
    def block_bytes(self) -> dict[str, int]:
        """Bytes through the block endpoint so far, by direction."""
        return {
            s.labels["direction"]: int(s.value)
            for metric in self._block_bytes.collect() for s in metric.samples
            if s.name == "lucidhub_block_bytes_total"
        }

    def render(self) -> str:
        """The text exposition of this hub's registry."""
        return generate_latest(self.registry).decode("utf-8")
