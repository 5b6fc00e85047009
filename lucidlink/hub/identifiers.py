"""The forms of the identifiers the hub hands out and checks: one home for both patterns."""

from __future__ import annotations

import re

ID_RE = re.compile(r"[0-9a-f]{32}")
"""Ids the hub makes (``uuid4().hex``): filespaces, sessions. Always ``fullmatch``."""
HASH_RE = re.compile(r"[0-9a-f]{64}")
"""A block's name: the SHA-256 of its bytes, lowercase hex. Always ``fullmatch``."""
