"""Logging for the hub process (an application, so it may configure structlog).

The SDK never calls this: a library leaves logging configuration to its application.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(json_logs: bool | None = None, level: int = logging.INFO) -> None:
    """Configure structlog: JSON lines when stderr is not a terminal, readable text when it is."""
    if json_logs is None:
        json_logs = not sys.stderr.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
