"""Ports for test servers come from below the kernel's ephemeral range."""

from __future__ import annotations

import socket

from tests.support import ports


def test_ports_and_their_offsets_are_free_distinct_and_below_the_ephemeral_range() -> None:
    low = ports.ephemeral_low()
    chosen = ports.free_ports(8, also_free_at=10000)
    every = chosen + [p + 10000 for p in chosen]
    assert len(set(every)) == 16
    for port in every:
        assert ports.LOWEST <= port < max(low, ports.LOWEST + 11000)
        assert ports.is_free(port)


def test_a_taken_port_is_not_free() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.free_port()))
        s.listen()
        assert not ports.is_free(s.getsockname()[1])
