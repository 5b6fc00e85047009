"""Operations: /healthz, Prometheus /metrics, and the structured request log."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
import structlog.testing

from tests.support.hubfixtures import Api, random_bytes

pytest_plugins = ["tests.support.hubfixtures"]

pytestmark = pytest.mark.asyncio


async def test_healthz_needs_no_token(api: Api) -> None:
    async with api.raw.session.get(api.hub.url + "/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
        assert body["status"] == "ok" and body["metadata"] in ("sqlite", "postgresql") and body["blocks"] == "local"


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line[line.index("{") : line.rindex("}")]))
        if got == labels:
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_count_requests_by_route_and_status(api: Api) -> None:
    for _ in range(3):
        await api.stat("/")
    await api.stat("/missing")
    await api.fail("GET", "/v1/nope", 404, "route_not_found")
    data = random_bytes(1000)
    url = await api.block_url(await api.upload(data))
    async with api.raw.session.get(url, headers={"Range": "bytes=0-99"}) as resp:
        assert resp.status == 206 and len(await resp.read()) == 100
    async with api.raw.session.get(url) as resp:
        assert resp.status == 200
    async with api.raw.session.get(api.hub.url + "/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        text = await resp.text()
    entry = "/v1/filespaces/{fs}/entry"
    assert metric(text, "lucidhub_requests_total", route=entry, method="GET", status="200") == 3
    assert metric(text, "lucidhub_requests_total", route=entry, method="GET", status="404") == 1
    assert metric(text, "lucidhub_requests_total", route="unmatched", method="GET", status="404") == 1
    assert metric(text, "lucidhub_requests_total", route="/v1/blocks/{fs}/{hash}", method="PUT", status="201") == 1
    assert "# TYPE lucidhub_requests_total counter" in text
    assert "# TYPE lucidhub_request_duration_seconds histogram" in text
    # A histogram per route: cumulative buckets ending in +Inf, a sum and a count.
    assert metric(text, "lucidhub_request_duration_seconds_bucket", route=entry, method="GET", le="+Inf") == 4
    assert metric(text, "lucidhub_request_duration_seconds_count", route=entry, method="GET") == 4
    total = metric(text, "lucidhub_request_duration_seconds_sum", route=entry, method="GET")
    assert total is not None and total > 0
    buckets = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()  # labels in any order
               if line.startswith("lucidhub_request_duration_seconds_bucket{")
               and f'route="{entry}"' in line and 'method="GET"' in line]
    assert buckets == sorted(buckets) and buckets[-1] == 4 and len(buckets) > 5
    # Bytes through the block endpoint, both ways.
    assert metric(text, "lucidhub_block_bytes_total", direction="in") == 1000
    assert metric(text, "lucidhub_block_bytes_total", direction="out") == 1100


@contextlib.contextmanager
def info_logs() -> Iterator[list[dict[str, Any]]]:
    """Capture structlog events at INFO and above, whatever level the session configured.

    The hub logs from its own thread; structlog's configuration is global, so this
    captures there too (nothing else logs at the same time in these tests).
    """
    old = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with structlog.testing.capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(wrapper_class=old)


async def test_every_request_is_logged_once(api: Api) -> None:
    with info_logs() as logs:
        await api.stat("/")
        await api.fail("GET", api.p("entry") + "?path=/nope", 404, "not_found")
    events = [e for e in logs if e["event"] == "hub.request"]
    assert [(e["method"], e["route"], e["status"]) for e in events] == [
        ("GET", "/v1/filespaces/{fs}/entry", 200), ("GET", "/v1/filespaces/{fs}/entry", 404)]
    for e in events:
        assert e["log_level"] == "info"
        assert isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0
        # No query strings, bodies or tokens in the log.
        assert api.hub.token not in repr(e) and "nope" not in repr(e)


async def test_internal_errors_are_500_with_the_envelope_and_logged(api: Api) -> None:
    # A real fault: the journal table disappears under the hub.
    api.hub.hub.write(lambda tx: tx.execute("DROP TABLE changes"))
    with info_logs() as logs:
        err = await api.fail("POST", api.p("mkdir"), 500, "internal", "hub's log", json={"path": "/x"})
    assert "changes" not in err["message"]  # no internals leak to the client
    failed = [e for e in logs if e["event"] == "hub.request.failed"]
    assert len(failed) == 1 and failed[0]["route"] == "/v1/filespaces/{fs}/mkdir"
    assert failed[0]["log_level"] == "error" and failed[0]["exc_info"] is True
    assert not await api.exists("/x")  # the transaction rolled back
    await api.ok("GET", "/v1/whoami")  # the hub keeps serving
