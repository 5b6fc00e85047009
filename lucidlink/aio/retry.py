"""What is worth retrying, and how long to wait before the next attempt.

One policy for every retry loop of the client (the transport's quick retries and the
write-back flusher's retries that last as long as the daemon runs): capped exponential
backoff with jitter, and one rule telling a transient failure from a refusal.
"""

from __future__ import annotations

import asyncio
import random

import aiohttp

from lucidlink.exceptions import (
    BlockMissingError,
    HubUnavailableError,
    IntegrityError,
    LucidLinkError,
    SignedUrlError,
)

_TRANSIENT_CODES = {"internal", "hub_unavailable"}


def backoff_delay(attempt: int, *, base: float = 0.05, cap: float = 2.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): ``base * 2**attempt``, capped, jittered."""
    return float(min(cap, base * (2 ** min(attempt, 30))) * (0.5 + random.random()))


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may go away by itself, so the work must be kept and retried.

    Transient: the hub unreachable, reset, timed out or restarting; any 5xx; a signed
    URL that expired; blocks the GC took between upload and commit; bytes damaged in
    transit. Everything else the hub answers (a lock conflict, a lost lease, a
    read-only token, an invalid path, a file deleted under the change, a version
    conflict) is a refusal: retrying would get the same answer.
    """
    if isinstance(exc, (HubUnavailableError, SignedUrlError, BlockMissingError, IntegrityError)):
        return True
    if isinstance(exc, LucidLinkError):
        return exc.code in _TRANSIENT_CODES
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError))
