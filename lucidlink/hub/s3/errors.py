"""Reading S3's error answers: the ``<Code>`` of an XML error body."""

from __future__ import annotations

import re

_CODE_RE = re.compile(rb"<Code>([^<]{1,100})</Code>")


def error_code(body: bytes) -> str:
    """The S3 error code in an answer's body (``NoSuchBucket``, ...), or ``""``."""
    found = _CODE_RE.search(body)
    return found.group(1).decode("utf-8", "replace") if found else ""
