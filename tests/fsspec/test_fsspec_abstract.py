"""fsspec's own abstract test suite (the classes s3fs derives), unmodified, on a real hub.

One hub and one file-system instance serve the module (the suite's fixtures clean up
after each test); each test gets a fresh directory of filespace ``small``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec.tests.abstract as abstract
import pytest

from lucidlink.fsspec import LucidLinkFileSystem
from lucidlink.hub.embedded import EmbeddedHub
from tests.support.sdkfixtures import SMALL_BLOCK


@pytest.fixture(scope="module")
def _abstract_fs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LucidLinkFileSystem]:
    data_dir: Path = tmp_path_factory.mktemp("fsspec-abstract-hub")
    with EmbeddedHub(data_dir, gc_interval_seconds=3600) as hub:
        token = hub.init("demo", ["small"], block_size=SMALL_BLOCK)
        fs = LucidLinkFileSystem(token=token, hub_url=hub.url, skip_instance_cache=True)
        try:
            yield fs
        finally:
            fs.close()


class LucidLinkFixtures(abstract.AbstractFixtures):
    @pytest.fixture
    def fs(self, _abstract_fs: LucidLinkFileSystem) -> LucidLinkFileSystem:
        _abstract_fs.invalidate_cache()
        return _abstract_fs

    @pytest.fixture
    def fs_path(self) -> str:
        return f"demo/small/{uuid.uuid4().hex[:8]}"


class TestLucidLinkCopy(abstract.AbstractCopyTests, LucidLinkFixtures):
    pass


class TestLucidLinkGet(abstract.AbstractGetTests, LucidLinkFixtures):
    pass


class TestLucidLinkPut(abstract.AbstractPutTests, LucidLinkFixtures):
    pass


class TestLucidLinkPipe(abstract.AbstractPipeTests, LucidLinkFixtures):
    pass


class TestLucidLinkOpen(abstract.AbstractOpenTests, LucidLinkFixtures):
    pass
