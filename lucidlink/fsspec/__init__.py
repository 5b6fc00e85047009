"""fsspec for filespaces: ``lucidlink://<workspace>/<filespace>/<path>``.

>>> fs = fsspec.filesystem("lucidlink", token="sa_live:...")      # hub: LUCIDLINK_HUB_URL
>>> fs.ls("lucidlink://demo/production-data/")
>>> pd.read_csv("lucidlink://demo/production-data/a.csv", storage_options={"token": ...})

:class:`LucidLinkFileSystem` is an :class:`fsspec.asyn.AsyncFileSystem` whose ``_``
coroutines are written directly on the public API of the async core
(:mod:`lucidlink.aio`); fsspec derives the blocking methods from them. Decisions
worth knowing:

Loops
    Used synchronously, an instance runs its coroutines on the SDK's one background
    loop (:func:`lucidlink._loop.get_loop`), the loop the blocking SDK uses too, so
    there is one set of connections per process. With ``asynchronous=True`` it runs on
    the caller's loop (``await fs._ls(...)``); its daemon is bound to the first loop
    that uses it and is dropped, unused, if that loop has closed when another one
    calls. Nothing is connected at construction (:mod:`lucidlink.fsspec.connection`).

File objects
    ``open`` returns the standard :mod:`io` stack over the core's own file
    (:mod:`lucidlink.fsspec.files`), not :class:`fsspec.spec.AbstractBufferedFile`:
    its read caches and upload buffer would duplicate what the core already does per
    stream (read-ahead of blocks that grows with sequential access, a bounded on-disk
    block cache, writes staged on disk and uploaded in the background while the writer
    continues), so a second layer would only add copies and memory. The result is
    what the builtin ``open`` returns, so pandas, pyarrow and ``io.TextIOWrapper``
    behave as with local files; ``wb`` is memory-bounded and ``rb`` seeks freely.

Consistency
    Writes are committed when the file closes (``commit_on_close=True``, the
    default): ``close``, ``pipe``, ``put`` and ``cp`` return once the change is in the
    hub, so another process (a Dask worker, another machine) sees it at once, as with
    an object store. ``commit_on_close=False`` leaves commits to the daemon's
    background flusher (faster for many small files; ``close()`` or the finalizer
    commits the rest).

Listing cache
    fsspec's ``dircache``, invalidated by every mutating call of the instance
    (:mod:`lucidlink.fsspec.namespace`). Changes made by other clients are seen after
    ``refresh=True``, ``invalidate_cache()`` or expiry.

Lifetime
    Instances are shared per process by fsspec's instance cache and pickle as their
    storage options (never their daemon). ``close()`` commits pending writes of every
    linked filespace and stops the daemon; the instance stays usable and reconnects
    on next use. A :func:`weakref.finalize` does the same at interpreter exit, bounded
    in time, and only removes the sandbox directory when the loop is gone.

Ranges
    ``cat_ranges`` opens each file once and reads its ranges through up to
    :data:`~lucidlink.fsspec.ranges.RANGE_STREAMS` concurrent handles on that one
    version (:mod:`lucidlink.fsspec.ranges`).

Modules: :mod:`~lucidlink.fsspec.paths` (where a path points, ``info``),
:mod:`~lucidlink.fsspec.connection` (daemon, workspace, filespaces, the loop),
:mod:`~lucidlink.fsspec.files` (file objects), :mod:`~lucidlink.fsspec.namespace`
and :mod:`~lucidlink.fsspec.filesystem` (the file-system class),
:mod:`~lucidlink.fsspec.ranges` (``cat_ranges``).
"""

from lucidlink.fsspec.files import (
    LucidLinkAsyncFile,
    LucidLinkBufferedRandom,
    LucidLinkBufferedReader,
    LucidLinkBufferedWriter,
)
from lucidlink.fsspec.filesystem import LucidLinkFileSystem
from lucidlink.fsspec.paths import PROTOCOL, WorkspaceMismatchError

__all__ = [
    "PROTOCOL",
    "LucidLinkAsyncFile",
    "LucidLinkBufferedRandom",
    "LucidLinkBufferedReader",
    "LucidLinkBufferedWriter",
    "LucidLinkFileSystem",
    "WorkspaceMismatchError",
]
