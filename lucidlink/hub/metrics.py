"""Prometheus metrics in the text exposition format (no client library needed)."""

from __future__ import annotations

import bisect
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts by route, method and status; latency histograms by route."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency_buckets: dict[tuple[str, str], list[int]] = {}
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.latency_count: dict[tuple[str, str], int] = defaultdict(int)
        self.block_bytes: dict[str, int] = defaultdict(int)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.requests[(route, method, status)] += 1
        key = (route, method)
        buckets = self.latency_buckets.setdefault(key, [0] * len(BUCKETS))
        index = bisect.bisect_left(BUCKETS, seconds)
        if index < len(BUCKETS):
            buckets[index] += 1
        self.latency_sum[key] += seconds
        self.latency_count[key] += 1

    def count_block_bytes(self, direction: str, n: int) -> None:
        """Count ``n`` bytes moved through the block endpoint (``in`` or ``out``)."""
        self.block_bytes[direction] += n

    def render(self) -> str:
        """The exposition text."""
        out = [
            "# HELP lucidhub_requests_total HTTP requests by route, method and status.",
            "# TYPE lucidhub_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(
                f'lucidhub_requests_total{{route="{_escape(route)}",method="{method}",status="{status}"}} {n}'
            )
        out += [
            "# HELP lucidhub_request_duration_seconds Request latency by route and method.",
            "# TYPE lucidhub_request_duration_seconds histogram",
        ]
        for (route, method), buckets in sorted(self.latency_buckets.items()):
            labels = f'route="{_escape(route)}",method="{method}"'
            cumulative = 0
            for bound, n in zip(BUCKETS, buckets):
                cumulative += n
                out.append(f'lucidhub_request_duration_seconds_bucket{{{labels},le="{bound}"}} {cumulative}')
            count = self.latency_count[(route, method)]
            out.append(f'lucidhub_request_duration_seconds_bucket{{{labels},le="+Inf"}} {count}')
            out.append(f"lucidhub_request_duration_seconds_sum{{{labels}}} {self.latency_sum[(route, method)]}")
            out.append(f"lucidhub_request_duration_seconds_count{{{labels}}} {count}")
        out += [
            "# HELP lucidhub_block_bytes_total Bytes moved through the hub's block endpoint.",
            "# TYPE lucidhub_block_bytes_total counter",
        ]
        for direction, n in sorted(self.block_bytes.items()):
            out.append(f'lucidhub_block_bytes_total{{direction="{direction}"}} {n}')
        return "\n".join(out) + "\n"
