"""lucidlink: self-hostable cloud filespaces and a LucidLink-compatible Python SDK.

The blocking API below is generated from the async core in :mod:`lucidlink.aio`
(``tools/generate_sync.py``); both faces behave the same.

>>> with lucidlink.create_daemon() as daemon:
...     workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token="sa_live:..."))
...     with workspace.link_filespace(name="production-data") as filespace:
...         filespace.fs.write_file("/hello.txt", b"hi")
"""

from lucidlink import exceptions
from lucidlink._generated import Client, Daemon, Filespace, Filesystem, Workspace, create_daemon
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
    DirEntry,
    FilespaceInfo,
    FilespaceSize,
    FilespaceStatistics,
    LockInfo,
    LockType,
    ServiceAccountCredentials,
    SyncMode,
    WorkspaceInfo,
)
from lucidlink.types import DataStoreInfo, ExternalFileLink, LinkedFilesResult, S3DataStoreConfig  # Connect

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "Client",
    "ClientConfig",
    "ClientError",
    "ConfigurationError",
    "Daemon",
    "DaemonError",
    "DirEntry",
    "Filespace",
    "FilespaceAlreadyLinkedError",
    "FilespaceError",
    "FilespaceInfo",
    "FilespaceSize",
    "FilespaceStatistics",
    "Filesystem",
    "LockInfo",
    "LockType",
    "LucidLinkError",
    "ServiceAccountCredentials",
    "SyncMode",
    "Workspace",
    "WorkspaceInfo",
    "create_daemon",
    "exceptions",
]
