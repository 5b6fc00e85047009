"""Free loopback ports for servers that tests start as subprocesses.

A port taken from the kernel's ephemeral range (bind to 0, close, pass the number on)
can go to any outgoing connection before the child binds it, or while a killed hub is
down before its restart on the same port: a CI run lost 94 SeaweedFS tests that way.
These come from below that range, where only listeners take ports.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10000


def ephemeral_low() -> int:
    """The first port the kernel hands out to outgoing connections (32768 if unknown)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def is_free(port: int) -> bool:
    """Whether a loopback listener could bind ``port`` now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int, *, also_free_at: int = 0) -> list[int]:
    """``n`` distinct free ports below the ephemeral range.

    With ``also_free_at``, port+``also_free_at`` is free and below the range too, and
    clear of every other chosen port (``weed`` binds gRPC at port+10000 for some
    services whatever it is told).
    """
    high = max(ephemeral_low() - also_free_at, LOWEST + 1000)
    rng = random.Random()
    chosen: list[int] = []
    taken: set[int] = set()
    for _ in range(100 * n + 1000):
        if len(chosen) == n:
            return chosen
        port = rng.randrange(LOWEST, high)
        wanted = {port, port + also_free_at}
        if wanted & taken or not all(is_free(p) for p in wanted):
            continue
        chosen.append(port)
        taken |= wanted
    raise RuntimeError(f"no {n} free loopback ports found in {LOWEST}-{high}")


def free_port() -> int:
    """One free port below the ephemeral range."""
    return free_ports(1)[0]
