"""Data store secrets: encrypted at rest, never logged, shown only to admin tokens."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import structlog

from lucidlink.exceptions import ConfigurationError, LucidLinkError
from lucidlink.hub.embedded import EmbeddedHub
from lucidlink.hub.secrets_box import (
    KEY_ENV,
    SecretBox,
    SecretUnavailableError,
    load_or_create_key,
    parse_key,
)
from lucidlink.types import DataStoreInfo, S3DataStoreConfig
from tests.support.seaweed import ConnectHub, SeaweedS3, connect_client, store_config


def test_secret_box_round_trip_and_refusals() -> None:
    key = os.urandom(32)
    box = SecretBox(key)
    sealed = box.seal("s3cr3t/+=", "store-1")
    assert "s3cr3t" not in sealed and sealed.startswith(f"v1:{box.fingerprint}:")
    assert box.seal("s3cr3t/+=", "store-1") != sealed  # a fresh nonce every time
    assert box.open(sealed, "store-1") == "s3cr3t/+="
    with pytest.raises(SecretUnavailableError, match="altered or moved"):
        box.open(sealed, "store-2")  # bound to its store
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SecretUnavailableError):
        box.open(tampered, "store-1")
    other = SecretBox(os.urandom(32))
    with pytest.raises(SecretUnavailableError, match=f"sealed with Connect key {box.fingerprint}"):
        other.open(sealed, "store-1")
    assert repr(box) == f"<SecretBox key {box.fingerprint}>" and key.hex() not in repr(box)


def test_connect_key_from_file_or_environment(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path, environ={})
    path = tmp_path / "connect.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(key) == 32
    assert load_or_create_key(tmp_path, environ={}) == key
    given = os.urandom(32)
    import base64

    for text in (given.hex(), base64.b64encode(given).decode(), base64.urlsafe_b64encode(given).decode().rstrip("=")):
        assert load_or_create_key(tmp_path / "unused", environ={KEY_ENV: text}) == given
    assert not (tmp_path / "unused").exists()
    for bad in ("abc", "zz" * 32, given.hex()[:-2]):
        with pytest.raises(ConfigurationError, match="32 bytes"):
            parse_key(bad)


def test_reprs_never_show_secrets() -> None:
    config = S3DataStoreConfig(access_key="AKIAXXXX", secret_key="topsecret", bucket_name="b-1", region="eu-west-1")
    info = DataStoreInfo(name="n", access_key="AKIAXXXX", secret_key="topsecret", bucket_name="b-1", region="r",
                         endpoint="", url_expiration_minutes=5, use_virtual_addressing=False)
    for text in (repr(config), str(config), repr(info), str(info)):
        assert "topsecret" not in text and "AKIAXXXX" in text
    assert "secret_key='***'" in repr(config)


@pytest.mark.asyncio
async def test_secret_encrypted_at_rest_never_logged_admin_only(connect_hub: ConnectHub, seaweed: SeaweedS3,
                                                                metadata_url: str | None) -> None:
    secret = seaweed.secret_key
    events: list[dict[str, Any]] = []
    old = structlog.get_config()
    structlog.configure(processors=[lambda logger, name, event: events.append(event) or ""],  # type: ignore[arg-type]
                        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        async with connect_client(connect_hub, connect_hub.admin) as fsp:
            key = seaweed.prefix() + "s.txt"
            await seaweed.put(key, b"data")
            await fsp.connect.add_data_store("vault", store_config(seaweed))
            await fsp.connect.rekey_data_store("vault", seaweed.access_key, secret)
            await fsp.connect.link_file("/s.txt", "vault", key)
            assert await fsp.fs.read_file("/s.txt") == b"data"
            with pytest.raises(ConfigurationError):
                await fsp.connect.add_data_store("bad", store_config(seaweed, secret_key=secret + "x"))
            assert (await fsp.connect.get_data_store("vault")).secret_key == secret  # type: ignore[union-attr]
            listed = await fsp.connect.list_data_stores()
            assert listed and all(s.secret_key == "" for s in listed)
        async with connect_client(connect_hub, connect_hub.writer) as fsp:
            assert (await fsp.connect.get_data_store("vault")).secret_key == ""  # type: ignore[union-attr]
    finally:
        structlog.configure(**old)
    assert any(e.get("event") == "hub.connect.store_added" for e in events), "the hub logs store changes"
    assert secret not in repr(events)
    # At rest: the hub's key file is private (on PostgreSQL the key is in the shared store),
    # and the secret is nowhere in the metadata.
    key_file = connect_hub.data_dir / "connect.key"
    if metadata_url is None:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    else:
        assert not key_file.exists()
        assert connect_hub.hub.write(lambda tx: tx.one("SELECT value FROM meta WHERE key = 'connect_key'"))
    rows = connect_hub.hub.write(lambda tx: [dict(r) for r in tx.all("SELECT * FROM data_stores")])
    assert len(rows) == 1 and secret not in repr(rows) and rows[0]["secret_sealed"].startswith("v1:")
    if metadata_url is None:
        raw = b"".join(p.read_bytes() for p in connect_hub.data_dir.glob("metadata.sqlite3*"))
        assert b"vault" in raw  # the database is really there (WAL included) ...
        assert secret.encode() not in raw  # ... and holds no secret in the clear
    # Another hub process on the same data dir (same key) opens it; one with another key says why not.
    connect_hub.hub.stop()
    with EmbeddedHub(connect_hub.data_dir, metadata_url=metadata_url) as again:
        async with connect_client(ConnectHub(again, again.url, connect_hub.admin, "", "", connect_hub.data_dir),
                                  connect_hub.admin) as fsp:
            assert (await fsp.connect.get_data_store("vault")).secret_key == secret  # type: ignore[union-attr]
    os.environ[KEY_ENV] = os.urandom(32).hex()
    try:
        with EmbeddedHub(connect_hub.data_dir, metadata_url=metadata_url) as other:
            async with connect_client(ConnectHub(other, other.url, connect_hub.admin, "", "", connect_hub.data_dir),
                                      connect_hub.admin) as fsp:
                with pytest.raises(LucidLinkError, match="Connect key"):
                    await fsp.connect.get_data_store("vault")
                assert (await fsp.connect.list_data_stores())[0].name == "vault"
    finally:
        del os.environ[KEY_ENV]
