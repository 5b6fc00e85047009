"""Typed keys for what the hub stores on its aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from lucidlink.hub.state import Hub

HUB_KEY: web.AppKey[Hub] = web.AppKey("hub")
