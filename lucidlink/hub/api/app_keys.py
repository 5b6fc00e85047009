"""Typed keys for what the hub keeps on its aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from lucidlink.hub.state import Hub

HUB_KEY: web.AppKey[Hub] = web.AppKey("hub")
"""The :class:`~lucidlink.hub.state.Hub` the app serves."""
OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("openapi", dict)
"""The app's OpenAPI document, built once with its settings (``GET /v1/openapi.json``)."""
