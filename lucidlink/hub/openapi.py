"""The OpenAPI 3.1 document of the hub, built from the route table."""

from __future__ import annotations

import re
from typing import Any

from lucidlink import __version__
from lucidlink.hub.routes import ROUTES

ERROR_CODES_DOC = "Stable error codes are listed in lucidlink.exceptions.ERROR_CODES."

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": ERROR_CODES_DOC},
                    "message": {"type": "string"},
                    "path": {"type": "string"},
                    "details": {"type": "object"},
                },
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    },
    "Entry": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "path": {"type": "string"},
            "name": {"type": "string"},
            "type": {"enum": ["file", "dir", "external"]},
            "size": {"type": "integer"},
            "mtime": {"type": "integer", "description": "nanoseconds since the epoch"},
            "ctime": {"type": "integer"},
            "version": {"type": "integer"},
        },
    },
    "Commit": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "mode": {"enum": ["create", "exclusive", "existing"]},
            "replace": {"type": "boolean"},
            "base_version": {"type": "integer", "minimum": 0,
                             "description": "the version a partial change was built on (0: the file did "
                                            "not exist); merged at block granularity or refused"},
            "change_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$",
                          "description": "client-generated id; a retried commit is answered with the "
                                         "first result, never applied twice"},
            "truncate_to": {"type": "integer", "minimum": 0},
            "lock_id": {"type": "string"},
            "mtime": {"type": "integer"},
            "blocks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "length": {"type": "integer"},
                    },
                    "required": ["index", "hash", "length"],
                },
            },
        },
        "required": ["path", "size"],
    },
}


def build_openapi() -> dict[str, Any]:
    """The document: one operation per declared route."""
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        op: dict[str, Any] = {
            "operationId": r.handler.__name__,
            "summary": r.summary,
            "responses": {
                "200": {"description": "success", **({"content": {"application/json": {"schema": r.response}}}
                                                      if r.response else {})},
                "default": {"description": "error",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", r.path)]
        params += [{"name": n, "in": "query", "schema": {"type": "string"}} for n in r.params]
        if params:
            op["parameters"] = params
        if r.request is not None:
            op["requestBody"] = {"content": {"application/json": {"schema": r.request}}}
        if r.auth == "token":
            op["security"] = [{"serviceAccountToken": []}]
        elif r.auth == "signed":
            op["description"] = "Authorised by the HMAC signature in the query, not a token."
            op["security"] = []
        else:
            op["security"] = []
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "LucidHub", "version": __version__,
                 "description": "The lucidlink filespace server. " + ERROR_CODES_DOC},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "serviceAccountToken": {"type": "http", "scheme": "bearer",
                                        "description": "sa_live:<key-id>:<secret>"}
            },
        },
    }
