"""The hub's HTTP API: request helpers, the route modules by resource, the OpenAPI document.

Each route module declares its own :class:`~lucidlink.hub.api.route.RouteTable`;
:mod:`lucidlink.hub.api.routes` composes them into the one table the app serves.
"""
