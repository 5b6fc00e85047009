"""The SDK's logger: structlog events handed to the standard ``logging`` module.

A library never configures logging. Events go to the ``lucidlink`` stdlib logger, so
they are silent unless the application sets logging up (Python's last-resort handler
still shows warnings on stderr), and they follow the application's structlog or
logging configuration when it has one. Nothing is ever printed to stdout.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog


def get_logger(name: str = "lucidlink") -> Any:
    """A structlog logger bound to the stdlib logger ``name``."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        wrapper_class=structlog.stdlib.BoundLogger,
        processors=[structlog.stdlib.filter_by_level, structlog.stdlib.render_to_log_kwargs],
    )
