"""anyio's asyncio backend, imported with the modules that hand work to threads.

anyio imports its backend module at the first ``anyio.to_thread.run_sync`` call, and in
this package that call runs on an event loop: the hub's while it starts, the SDK's at a
file's first read. The import took 50 ms on a 2-vCPU VM, one step of the loop that
serves nothing else meanwhile (asyncio's debug mode reports such a step, and a test
that runs an example under ``PYTHONDEVMODE`` failed on it when the machine was slow).
Imported here, it happens at import time, off every loop. The module is anyio's own:
should a release move it, anyio imports its backend lazily as before, so nothing breaks.
"""

from __future__ import annotations

import contextlib
import importlib

with contextlib.suppress(ImportError):
    importlib.import_module("anyio._backends._asyncio")
