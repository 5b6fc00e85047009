"""A first end-to-end pass over the hub's main routes."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.hubclient import RawHub


@pytest.mark.asyncio
async def test_write_and_read_a_file_through_blocks(raw: RawHub) -> None:
    fs = await raw.filespace_id()
    data = b"hello world" * 1000
    digest = hashlib.sha256(data).hexdigest()
    status, body = await raw.call("POST", f"/v1/filespaces/{fs}/blocks/urls", json={"op": "put", "hashes": [digest]})
    assert status == 200, body
    put_url = body["urls"][digest]
    async with raw.session.put(put_url, data=data) as resp:
        assert resp.status == 201, await resp.text()
    status, body = await raw.call("POST", f"/v1/filespaces/{fs}/commit", json={
        "path": "/dir/file.bin", "size": len(data), "blocks": [{"index": 0, "hash": digest, "length": len(data)}]})
    assert status == 404 and body["error"]["code"] == "not_found"
    status, _ = await raw.call("POST", f"/v1/filespaces/{fs}/mkdir", json={"path": "/dir"})
    assert status == 200
    status, body = await raw.call("POST", f"/v1/filespaces/{fs}/commit", json={
        "path": "/dir/file.bin", "size": len(data), "blocks": [{"index": 0, "hash": digest, "length": len(data)}]})
    assert status == 200, body
    assert body["entry"]["size"] == len(data) and body["entry"]["version"] == 1
    status, info = await raw.call("GET", f"/v1/filespaces/{fs}/file?path=/dir/file.bin")
    assert info["blocks"] == [{"index": 0, "hash": digest, "length": len(data), "used": len(data)}]
    status, body = await raw.call("POST", f"/v1/filespaces/{fs}/blocks/urls", json={"op": "get", "hashes": [digest]})
    async with raw.session.get(body["urls"][digest], headers={"Range": "bytes=6-10"}) as resp:
        assert resp.status == 206
        assert await resp.read() == b"world"
    status, body = await raw.call("POST", f"/v1/filespaces/{fs}/blocks/urls", json={"op": "put", "hashes": [digest]})
    assert body["present"] == [digest] and body["urls"] == {}
