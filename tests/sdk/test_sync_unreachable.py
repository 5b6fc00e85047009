"""``sync_all`` and ``refresh`` while the hub cannot be reached: the journal pull is
retried until ``fs.sync.timeout``, then ``SyncTimeoutError`` (a ``TimeoutError``), as
for pending writes; never the transport's ``HubUnavailableError`` (a fresh-clone CI run
saw it through the fault proxy's refusals)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lucidlink
from lucidlink.exceptions import HubUnavailableError, SyncTimeoutError
from lucidlink.hub.embedded import EmbeddedHub


def test_sync_all_and_refresh_time_out_while_the_hub_is_down(tmp_path: Path) -> None:
    hub = EmbeddedHub(tmp_path / "hub").start()
    token = hub.init("demo", ["data"])
    config = {"fs.sync.timeout": 1.5}
    with lucidlink.create_daemon(hub_url=hub.url, config=config) as daemon:
        ws = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=token))
        fsp = ws.link_filespace(name="data")
        try:
            fsp.fs.write_file("/a", b"landed")
            fsp.sync_all()
            hub.stop()  # nothing is pending: only the journal pull needs the hub
            for call in (fsp.sync_all, fsp.refresh):
                with pytest.raises(SyncTimeoutError, match="change journal") as caught:
                    call()
                assert isinstance(caught.value, TimeoutError)
                assert not isinstance(caught.value, HubUnavailableError)
                assert isinstance(caught.value.__cause__, HubUnavailableError)
        finally:
            try:
                fsp.unlink()
            except Exception:  # noqa: BLE001 - the hub is gone; the test is above
                pass
