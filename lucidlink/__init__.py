"""lucidlink: self-hostable cloud filespaces and a LucidLink-compatible Python SDK.

The blocking API below is generated from the async core in :mod:`lucidlink.aio`
(``tools/generate_sync.py``); both faces behave the same. Every name LucidLink's SDK
exports from its package is exported here too (see ``docs/compatibility.md``).

>>> with lucidlink.create_daemon() as daemon:
...     workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token="sa_live:..."))
...     with workspace.link_filespace(name="production-data") as filespace:
...         filespace.fs.write_file("/hello.txt", b"hi")
"""

from lucidlink import exceptions
from lucidlink._generated import Client, Daemon, Filespace, Workspace, create_daemon
from lucidlink._generated_fs import Connect, Filesystem
from lucidlink.exceptions import (
    AuthenticationError,
    ClientError,
    ConfigurationError,
    DaemonError,
    FilespaceAlreadyLinkedError,
    FilespaceError,
    LucidLinkError,
)
from lucidlink.stream import FileHandle, LucidFileStream, open_buffered, open_text
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

ConnectManager = Connect
"""LucidLink's name for the class of ``filespace.connect`` (ours: :class:`Connect`)."""

try:  # fsspec is an optional dependency, as in LucidLink's SDK
    from lucidlink.fsspec import LucidLinkFileSystem
except ImportError:  # pragma: no cover - without the fsspec extra
    LucidLinkFileSystem = None  # type: ignore[assignment,misc]

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "Client",
    "ClientConfig",
    "ClientError",
    "ConfigurationError",
    "Connect",
    "ConnectManager",
    "Daemon",
    "DaemonError",
    "DaemonStatus",
    "DataStoreCredentials",
    "DataStoreInfo",
    "DataStoreKind",
    "DataStoreRekeyState",
    "DirEntry",
    "ExternalFileLink",
    "FileHandle",
    "Filespace",
    "FilespaceAlreadyLinkedError",
    "FilespaceError",
    "FilespaceInfo",
    "FilespaceSize",
    "FilespaceStatistics",
    "Filesystem",
    "LinkedFilesResult",
    "LockInfo",
    "LockType",
    "LucidFileStream",
    "LucidLinkError",
    "LucidLinkFileSystem",
    "S3Credentials",
    "S3DataStoreConfig",
    "ServiceAccountCredentials",
    "StorageConfig",
    "StorageMode",
    "SyncMode",
    "Workspace",
    "WorkspaceInfo",
    "create_daemon",
    "exceptions",
    "open_buffered",
    "open_text",
]
