"""The async SDK: the one implementation of all client behaviour.

The async twin of every class of :mod:`lucidlink` is its name with ``Async`` in front
(``AsyncDaemon``, ``AsyncConnect`` for ``ConnectManager``, ``AsyncFile`` for the
streams); value and exception classes are the same objects as in :mod:`lucidlink`.

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
from lucidlink.exceptions import (
    AuthenticationError,
    ClientError,
    ConfigurationError,
    DaemonError,
    FilespaceAlreadyLinkedError,
    FilespaceError,
    LucidLinkError,
)
from lucidlink.types import (
    ClientConfig,
    DaemonStatus,
    DataStoreCredentials,
    DataStoreInfo,
    DataStoreKind,
    DataStoreRekeyState,
    DirEntry,
    ExternalFileLink,
    FilespaceInfo,
    FilespaceSize,
    FilespaceStatistics,
    LinkedFilesResult,
    LockInfo,
    LockType,
    S3Credentials,
    S3DataStoreConfig,
    ServiceAccountCredentials,
    StorageConfig,
    StorageMode,
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
    "AuthenticationError",
    "AwaitableContext",
    "ClientConfig",
    "ClientError",
    "ConfigurationError",
    "DaemonError",
    "DaemonStatus",
    "DataStoreCredentials",
    "DataStoreInfo",
    "DataStoreKind",
    "DataStoreRekeyState",
    "DirEntry",
    "ExternalFileLink",
    "FilespaceAlreadyLinkedError",
    "FilespaceError",
    "FilespaceInfo",
    "FilespaceSize",
    "FilespaceStatistics",
    "LinkedFilesResult",
    "LockInfo",
    "LockType",
    "LucidLinkError",
    "S3Credentials",
    "S3DataStoreConfig",
    "ServiceAccountCredentials",
    "StorageConfig",
    "StorageMode",
    "SyncMode",
    "WorkspaceInfo",
    "create_daemon",
]
