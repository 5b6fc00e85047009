"""The async SDK: the one implementation of all client behaviour.

>>> async with lucidlink.aio.create_daemon() as daemon:
...     workspace = await daemon.authenticate(ServiceAccountCredentials(token=...))
...     async with workspace.link_filespace(name="production-data") as filespace:
...         await filespace.fs.write_file("/hello.txt", b"hi")
"""

from lucidlink.aio._util import AwaitableContext
from lucidlink.aio.client import AsyncClient
from lucidlink.aio.connect import AsyncConnect
from lucidlink.aio.daemon import AsyncDaemon, create_daemon
from lucidlink.aio.file import AsyncFile
from lucidlink.aio.filespace import AsyncFilespace
from lucidlink.aio.filesystem import AsyncFilesystem
from lucidlink.aio.workspace import AsyncWorkspace
from lucidlink.exceptions import ClientError, FilespaceAlreadyLinkedError
from lucidlink.types import (
    ClientConfig,
    DataStoreInfo,
    DirEntry,
    ExternalFileLink,
    FilespaceInfo,
    FilespaceSize,
    FilespaceStatistics,
    LinkedFilesResult,
    LockType,
    S3DataStoreConfig,
    ServiceAccountCredentials,
    SyncMode,
    WorkspaceInfo,
)

__all__ = [
    "AsyncClient",
    "AsyncConnect",
    "AsyncDaemon",
    "AsyncFile",
    "AsyncFilespace",
    "AsyncFilesystem",
    "AsyncWorkspace",
    "AwaitableContext",
    "ClientConfig",
    "ClientError",
    "DataStoreInfo",
    "DirEntry",
    "ExternalFileLink",
    "FilespaceAlreadyLinkedError",
    "FilespaceInfo",
    "FilespaceSize",
    "FilespaceStatistics",
    "LinkedFilesResult",
    "LockType",
    "S3DataStoreConfig",
    "ServiceAccountCredentials",
    "SyncMode",
    "WorkspaceInfo",
    "create_daemon",
]
