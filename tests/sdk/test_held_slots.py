"""Slots written whole with immutable bytes are uploaded from them, never staged.

``AsyncFile.write`` keeps such a slot in the caller's ``bytes`` until its upload lands;
then the slot reads (and is patched) from the hub like a committed block. A partial
rewrite, a truncate or a failed upload writes the held bytes to staging first. These
tests count what reaches staging and check, against a plain ``bytearray`` model, every
order of writes, reads and truncates around uploads that land, fail or are still running.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lucidlink import directio
from lucidlink.aio.blocks import BlockIO
from lucidlink.exceptions import HubUnavailableError
from tests.support.sdkfixtures import SMALL_BLOCK

B = SMALL_BLOCK


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The byte counts of every write to a staging file, in order."""
    counts: list[int] = []
    real = directio.DirectWriter.pwrite

    def counting(self: Any, fd: int, path: Path, data: Any, pos: int) -> None:
        pieces = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
        if "staging" in str(path):
            counts.append(sum(len(memoryview(p).cast("B")) for p in pieces))
        real(self, fd, path, data, pos)

    monkeypatch.setattr(directio.DirectWriter, "pwrite", counting)
    return counts


@pytest.mark.asyncio
async def test_whole_slots_of_bytes_never_reach_staging(afilespace: Any, staged: list[int]) -> None:
    fs = afilespace.fs
    data = os.urandom(3 * B + 100)
    async with fs.open("/held.bin", "wb") as f:
        await f.write(data[:10])  # a head in the first slot: staged
        await f.write(data[10:])  # slots 1 and 2 whole (held), then a 100-byte tail (staged)
    assert sum(staged) == len(data) - 2 * B
    await afilespace.sync_all()
    assert await fs.read_file("/held.bin") == data


@pytest.mark.asyncio
async def test_mutable_buffers_are_staged(afilespace: Any, staged: list[int]) -> None:
    """A bytearray may change after write returns: its bytes are copied to staging."""
    fs = afilespace.fs
    data = bytearray(os.urandom(2 * B))
    async with fs.open("/mutable.bin", "wb") as f:
        await f.write(data)
        data[:5] = b"XXXXX"  # the caller reuses its buffer
    assert sum(staged) == 2 * B
    await afilespace.sync_all()
    assert (await fs.read_file("/mutable.bin"))[:5] != b"XXXXX"


@pytest.mark.asyncio
async def test_failed_uploads_are_staged_and_committed_by_the_flusher(
        afilespace: Any, staged: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every upload made while writing fails: write still succeeds, each held slot goes to
    staging, and the flusher uploads and commits them after close."""
    real = BlockIO.upload
    refused = []

    async def failing(self: BlockIO, blocks: Any, *, best_effort: bool = False) -> None:
        if best_effort:
            refused.append(len(blocks))
            raise HubUnavailableError("injected: the hub is away")
        await real(self, blocks, best_effort=best_effort)

    monkeypatch.setattr(BlockIO, "upload", failing)
    fs = afilespace.fs
    data = os.urandom(12 * B)
    async with fs.open("/refused.bin", "wb") as f:
        for i in range(0, len(data), B):
            await f.write(data[i:i + B])
    assert refused and sum(staged) == len(data)  # each slot staged once, after its failure
    await afilespace.sync_all()
    assert await fs.read_file("/refused.bin") == data


_SIZES = st.sampled_from([1, 100, B - 1, B, B + 1, 2 * B, 3 * B - 7])
_OFFSETS = st.one_of(st.sampled_from([0, B, 2 * B, 3 * B, 4 * B]), st.integers(0, 5 * B))
_OPS = st.lists(st.one_of(
    st.tuples(st.just("write"), _OFFSETS, _SIZES, st.booleans()),
    st.tuples(st.just("read"), _OFFSETS, _SIZES, st.just(False)),
    st.tuples(st.just("truncate"), _OFFSETS, st.just(0), st.just(False)),
    st.tuples(st.just("settle"), st.just(0), st.just(0), st.just(False)),
), min_size=1, max_size=12)


@pytest.mark.asyncio
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=_OPS, initial=st.sampled_from([0, 2 * B + 5]))
async def test_one_handle_matches_a_bytearray(afilespace: Any, ops: list[Any],
                                              initial: int) -> None:
    """Writes of ``bytes`` (held when whole) or ``bytearray`` (staged), reads, truncates and
    pauses that let uploads land, in any order on one ``r+b`` handle: every read and the
    committed file equal the model."""
    fs = afilespace.fs
    path = f"/model-{os.urandom(4).hex()}.bin"
    model = bytearray(os.urandom(initial))
    await fs.write_file(path, bytes(model))
    async with fs.open(path, "r+b") as f:
        for op, offset, size, immutable in ops:
            if op == "write":
                chunk = os.urandom(size)
                await f.seek(offset)
                await f.write(chunk if immutable else bytearray(chunk))
                if offset > len(model):
                    model += bytes(offset - len(model))
                model[offset:offset + size] = chunk
            elif op == "read":
                await f.seek(offset)
                assert await f.read(size) == bytes(model[offset:offset + size])
            elif op == "truncate":
                await f.truncate(offset)
                model = model[:offset] + bytes(max(0, offset - len(model)))
            else:
                await asyncio.sleep(0.05)  # uploads in flight land
        await f.seek(0)
        assert await f.read() == bytes(model)
    assert await fs.read_file(path) == bytes(model)
    await afilespace.sync_all()
    assert await fs.read_file(path) == bytes(model)


GATE_DEADLINE = 30.0
"""Longest a gated upload, or a wait for uploads to land, may take: a test that failed
before opening the gate then fails at close instead of hanging."""


class UploadGate:
    """Holds the uploads made while writing until opened; counts those that landed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = asyncio.Event()
        self.landed = 0
        self._changed = asyncio.Condition()
        real = BlockIO.upload

        async def gated(io: BlockIO, blocks: Any, *, best_effort: bool = False) -> None:
            if best_effort:
                await asyncio.wait_for(self.open.wait(), GATE_DEADLINE)
            await real(io, blocks, best_effort=best_effort)
            async with self._changed:
                self.landed += best_effort
                self._changed.notify_all()

        monkeypatch.setattr(BlockIO, "upload", gated)

    async def landing(self, count: int) -> None:
        """Open the gate and wait until ``count`` uploads have landed."""
        self.open.set()
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.landed >= count),
                                   GATE_DEADLINE)


@pytest.mark.asyncio
async def test_truncate_below_an_uploaded_slot_then_extend(
        afilespace: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slot uploaded from held bytes, then cut off by a truncate, stays cut off when the
    file grows past it again (the grown range reads as zeros, and commits as zeros)."""
    gate = UploadGate(monkeypatch)
    fs = afilespace.fs
    data = os.urandom(3 * B)
    expected = data[:10] + bytes(4 * B - 10) + b"x"
    async with fs.open("/cut.bin", "w+b") as f:
        await f.write(data)
        await gate.landing(3)
        await f.truncate(10)  # slot 1 is neither the new nor the old last slot
        await f.seek(4 * B)
        await f.write(b"x")
        await f.seek(0)
        assert await f.read() == expected
    await afilespace.sync_all()
    assert await fs.read_file("/cut.bin") == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("landed", [True, False], ids=["after-upload", "during-upload"])
async def test_partial_rewrite_and_truncate_into_a_held_slot(
        afilespace: Any, monkeypatch: pytest.MonkeyPatch, landed: bool) -> None:
    """A held slot rewritten in part, read, and cut by a truncate: before its upload lands
    (the held bytes are staged first) and after (the slot is fetched back from the hub)."""
    gate = UploadGate(monkeypatch)
    fs = afilespace.fs
    data = bytearray(os.urandom(3 * B))
    async with fs.open("/patch.bin", "w+b") as f:
        await f.write(bytes(data))
        if landed:
            await gate.landing(3)
        await f.seek(B + 5)
        await f.write(b"abc")
        data[B + 5:B + 8] = b"abc"
        await f.seek(2 * B - 3)
        assert await f.read(6) == bytes(data[2 * B - 3:2 * B + 3])
        await f.truncate(2 * B + 7)
        del data[2 * B + 7:]
        await f.seek(0)
        assert await f.read() == bytes(data)
        gate.open.set()
    await afilespace.sync_all()
    assert await fs.read_file("/patch.bin") == bytes(data)


@pytest.mark.asyncio
async def test_a_journalling_daemon_stages_every_slot(
        sdk_hub: Any, tmp_path: Path, staged: list[int]) -> None:
    """A daemon with ``persist_files`` may resume its changes after the hub's GC grace
    has passed: every byte it writes is in staging, so a resume can upload it again."""
    import lucidlink.aio

    data = os.urandom(3 * B)
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url, sandboxed=False, persist_files=True,
                                           root_path=str(tmp_path / "root")) as daemon:
        ws = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=sdk_hub.token))
        async with ws.link_filespace(name="small") as filespace:
            async with filespace.fs.open("/journalled.bin", "wb") as f:
                await f.write(data)
            await filespace.sync_all()
            assert await filespace.fs.read_file("/journalled.bin") == data
    assert sum(staged) == len(data)
