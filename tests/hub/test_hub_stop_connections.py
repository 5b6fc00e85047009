"""A stopping hub leaves no connection open, also those clients open while it stops.

aiohttp's server forgets the connections that arrive while it waits for in-flight
requests; the hub's runner (``HubRunner``) drops them itself. Clients here keep opening
connections and sending requests while the hub stops; once it has stopped, every socket
the hub accepted is closed (counted from the clients' side: each sees its end) and no
transport is left for the garbage collector to warn about.
"""

from __future__ import annotations

import gc
import socket
import threading
import time
import warnings
from pathlib import Path

from lucidlink.hub.embedded import EmbeddedHub

ROUNDS = 6
CLIENTS = 8
PER_CLIENT = 100


def _hammer(port: int, stop: threading.Event, opened: list[socket.socket]) -> None:
    """Open connections and send a request on each (at most ``PER_CLIENT``), until told to
    stop or refused."""
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    for _ in range(PER_CLIENT):
        if stop.is_set():
            return
        time.sleep(0.005)
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            return  # the hub no longer listens
        opened.append(conn)
        try:
            conn.sendall(request)
        except OSError:
            return


def _closed_by_peer(conn: socket.socket) -> bool:
    """Whether the hub closed its end (EOF or a reset after any answer bytes)."""
    conn.settimeout(10)
    try:
        while conn.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_stopping_closes_every_connection_clients_opened_meanwhile(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for r in range(ROUNDS):
            opened: list[socket.socket] = []
            stop = threading.Event()
            hub = EmbeddedHub(tmp_path / f"hub{r}").start()
            port = int(hub.url.rsplit(":", 1)[1])
            threads = [threading.Thread(target=_hammer, args=(port, stop, opened))
                       for _ in range(CLIENTS)]
            for t in threads:
                t.start()
            time.sleep(0.2)
            hub.stop()
            stop.set()
            for t in threads:
                t.join()
            try:
                assert opened, "the clients opened no connection"
                still_open = [c for c in opened if not _closed_by_peer(c)]
                assert not still_open, f"{len(still_open)} of {len(opened)} connections left open"
            finally:
                for c in opened:
                    c.close()
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not unclosed, unclosed[:3]
