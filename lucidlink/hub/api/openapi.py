"""The OpenAPI 3.1 document of the hub, built from the route table.

The document states what the handlers enforce, so that a client (or a fuzzer such as
schemathesis) generating requests from it reaches the handlers' logic, and so that a
request it calls invalid is refused: path patterns (absolute paths, ids, SHA-256
digests), bounds, required fields, no ``null`` where a handler refuses one, every
status a route answers with (errors in the one :data:`ERROR_ENVELOPE`), and the shape
of every success body. ``tests/hub/test_hub_openapi_fuzz.py`` holds it to that.

What JSON Schema cannot say is in the descriptions and, for paths, in the custom
format ``lucid-path``: names are at most 255 *bytes* of UTF-8 and a path at most 4096
(``pattern`` and ``maxLength`` count code points, so they bound only ASCII exactly).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from lucidlink import __version__
from lucidlink.exceptions import ERROR_CODES
from lucidlink.hub.api.route import Route, Setting
from lucidlink.hub.api.routes import ROUTES
from lucidlink.hub.config import HubSettings
from lucidlink.hub.core.admin import MAX_BLOCK_SIZE
from lucidlink.hub.core.inline_blocks import BASE64_PATTERN
from lucidlink.hub.store.base import MAX_INT64
from lucidlink.paths import MAX_NAME_BYTES, MAX_PATH_BYTES
from lucidlink.types import MAX_OBJECT_ID_BYTES

ERROR_CODES_DOC = "Stable error codes are listed in lucidlink.exceptions.ERROR_CODES."
ROUTING_CODES = ("route_not_found", "method_not_allowed")
"""Codes the error middleware gives aiohttp's own refusals (no route, wrong method)."""

_COMPONENT = r"(?:[^/.\x00][^/\x00]{0,254}|\.[^/.\x00][^/\x00]{0,253}|\.\.[^/\x00]{1,253})"
"""One path name: 1 to 255 characters, no '/' or NUL, not '.' or '..'."""
PATH_PATTERN = rf"^/+(?:{_COMPONENT}(?:/+{_COMPONENT})*/*)?$"
NON_ROOT_PATTERN = rf"^/+{_COMPONENT}(?:/+{_COMPONENT})*/*$"
PATH_DOC = (f"An absolute filespace path ('/' is the root; repeated and trailing '/' are ignored). Names "
            f"are at most {MAX_NAME_BYTES} bytes of UTF-8, never '.' or '..', never contain NUL; a "
            f"path is at most {MAX_PATH_BYTES} bytes.")
HEX32 = "^[0-9a-f]{32}$"
HASH = "^[0-9a-f]{64}$"
INT64 = MAX_INT64

STORE_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_-](?:[A-Za-z0-9 _-]{0,62}[A-Za-z0-9_-])?$",
              "description": "1-64 ASCII letters, digits, spaces, '_' or '-', not starting or ending with a space"}
S3_KEY = {"type": "string", "pattern": "^[\\x21-\\x7e]+$"}
BUCKET = {
    "type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    "not": {"anyOf": [{"pattern": "\\.\\."}, {"pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$"},
                      {"pattern": "^(xn--|sthree-|amzn-s3-demo-)"},
                      {"pattern": "(-s3alias|--ol-s3|\\.mrap|--x-s3|--table-s3)$"}]},
    "description": "an S3 bucket name (AWS's naming rules)",
}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _int(lo: int = 0, hi: int = INT64) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi}


_LINK_ITEM = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "path": {"$ref": "#/components/schemas/NonRootPath"},
        "store": STORE_NAME,
        "object_id": {"type": "string", "minLength": 1, "maxLength": MAX_OBJECT_ID_BYTES, "pattern": "^[^\\x00]+$",
                      "description": f"an S3 key: 1 to {MAX_OBJECT_ID_BYTES} bytes of UTF-8"},
        "size": _nullable(_int()),
        "checksum": _nullable({"type": "string", "pattern": "^[\\x20-\\x7e]{1,256}$"}),
    },
    "required": ["path", "store", "object_id"],
    "description": "size and checksum come together (the caller vouches for the object) or not at all",
    "anyOf": [
        {"properties": {"size": {"type": "null"}, "checksum": {"type": "null"}}},
        {"properties": {"size": {"type": "integer"}, "checksum": {"type": "string"}},
         "required": ["size", "checksum"]},
    ],
}

SCHEMAS: dict[str, Any] = {
    "ErrorEnvelope": {
        "type": "object",
        "description": "Every error the hub answers with. " + ERROR_CODES_DOC,
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"enum": sorted({*ERROR_CODES, *ROUTING_CODES})},
                    "message": {"type": "string"},
                    "path": {"type": "string"},
                    "details": {"type": "object"},
                },
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    },
    "Path": {"type": "string", "format": "lucid-path", "pattern": PATH_PATTERN, "maxLength": MAX_PATH_BYTES,
             "description": PATH_DOC},
    "NonRootPath": {"type": "string", "format": "lucid-path", "pattern": NON_ROOT_PATTERN,
                    "maxLength": MAX_PATH_BYTES, "description": PATH_DOC + " Not the root."},
    "Hash": {"type": "string", "pattern": HASH, "description": "a block's SHA-256, 64 lowercase hex digits"},
    "Entry": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "path": {"type": "string"},
            "name": {"type": "string"},
            "type": {"enum": ["file", "dir", "external", "link"]},
            "size": {"type": "integer", "minimum": 0},
            "mtime": {"type": "integer", "description": "nanoseconds since the epoch"},
            "ctime": {"type": "integer"},
            "version": {"type": "integer", "minimum": 1},
            "external": {"type": "object", "properties": {"store": {"type": "string"},
                                                          "object_id": {"type": "string"}},
                         "required": ["store", "object_id"]},
            "target": {"type": "string", "description": "a symbolic link's target, as created"},
        },
        "required": ["id", "path", "name", "type", "size", "mtime", "ctime", "version"],
    },
    "Filespace": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "created": {"type": "integer"},
                       "block_size": {"type": "integer"}, "seq": {"type": "integer"},
                       "inline_block_max": {"type": "integer", "minimum": 0,
                                            "description": "blocks of at most this many bytes may be "
                                                           "committed with their bytes ('data'); 0: none"},
                       "max_request_bytes": {"type": "integer", "minimum": 1,
                                             "description": "the largest JSON request body this hub "
                                                            "reads (413 over it): clients cut their "
                                                            "commit batches under it"}},
        "required": ["id", "name", "created", "block_size"],
    },
    "Commit": {
        "type": "object",
        "properties": {
            "path": {"$ref": "#/components/schemas/NonRootPath"},
            "size": _int(),
            "mode": {"enum": ["create", "exclusive", "existing"]},
            "replace": {"type": "boolean"},
            "base_version": _nullable({**_int(), "description": "the version a partial change was built on "
                                       "(0: the file did not exist); merged at block granularity or refused"}),
            "change_id": _nullable({"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$",
                                    "description": "client-generated id; a retried commit is answered with "
                                                   "the first result, never applied twice"}),
            "truncate_to": _nullable(_int()),
            "lock_id": _nullable({"type": "string"}),
            "mtime": _nullable(_int(-INT64)),
            "blocks": {
                "type": "array",
                "description": "the slots this change writes; a slot starts before 'size' "
                               "(index * block_size < size), appears once, and is at most the filespace's "
                               "block_size long",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": _int(),
                        "hash": {"$ref": "#/components/schemas/Hash"},
                        "length": _int(1, MAX_BLOCK_SIZE),
                        "data": {"type": "string", "contentEncoding": "base64", "pattern": BASE64_PATTERN,
                                 "description": "the block's bytes (base64), only when 'length' is at most "
                                                "the hub's inline_block_max (GET /v1/filespaces/{fs}): the "
                                                "hub verifies them and keeps the block with the metadata; "
                                                "a wrong length or hash is 422, nothing changed"},
                    },
                    "required": ["index", "hash", "length"],
                    "if": {"required": ["data"]},
                    "then": {"properties": {"length": {"maximum": Setting("inline_block_max")}}},
                },
            },
        },
        "required": ["path", "size"],
    },
    "CommitResult": {
        "type": "object",
        "properties": {"entry": {"$ref": "#/components/schemas/Entry"}, "seq": {"type": "integer"},
                       "created": {"type": "boolean"}, "replayed": {"type": "boolean"}},
        "required": ["entry", "seq"],
    },
    "Change": {
        "type": "object",
        "properties": {
            "seq": {"type": "integer"}, "time": {"type": "integer"}, "op": {"type": "string"},
            "node_id": _nullable({"type": "integer"}), "type": _nullable({"type": "string"}),
            "path": {"type": "string"}, "new_path": _nullable({"type": "string"}),
            "size": _nullable({"type": "integer"}), "version": _nullable({"type": "integer"}),
            "session_id": _nullable({"type": "string"}),
        },
        "required": ["seq", "time", "op", "path"],
    },
    "DataStore": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "kind": {"enum": ["s3"]}, "access_key": {"type": "string"},
            "secret_key": {"type": "string", "description": "only in GET .../connect/store answers to admin tokens"},
            "bucket_name": {"type": "string"}, "region": {"type": "string"}, "endpoint": {"type": "string"},
            "url_expiration_minutes": {"type": "integer"}, "use_virtual_addressing": {"type": "boolean"},
            "key_id": {"type": "string"}, "rekey_state": {"enum": ["none", "rekeyed"]},
            "created": {"type": "integer"}, "updated": {"type": "integer"},
        },
        "required": ["name", "kind", "access_key", "secret_key", "bucket_name", "region", "endpoint",
                     "url_expiration_minutes", "use_virtual_addressing", "key_id", "rekey_state"],
    },
    "StoreConfig": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "access_key": {**S3_KEY, "minLength": 1, "maxLength": 128},
            "secret_key": {**S3_KEY, "minLength": 1, "maxLength": 256},
            "bucket_name": BUCKET,
            "region": {"type": "string", "pattern": "^[A-Za-z0-9_-]{0,64}$",
                       "description": "required (for AWS) unless an endpoint is given"},
            "endpoint": {"type": "string", "pattern": "^(https?://[^/?#@\\s]+/?)?$",
                         "description": "'' (AWS) or http(s)://host[:port]"},
            "url_expiration_minutes": _int(1, 7 * 24 * 60),
            "use_virtual_addressing": {"type": "boolean"},
        },
        "required": ["access_key", "secret_key", "bucket_name"],
        "anyOf": [{"properties": {"region": {"minLength": 1}}, "required": ["region"]},
                  {"properties": {"endpoint": {"minLength": 1}}, "required": ["endpoint"]}],
    },
    "LinkItem": _LINK_ITEM,
}

PATH_PARAMS: dict[str, Any] = {
    "fs": {"type": "string", "pattern": HEX32, "description": "a filespace id"},
    "sid": {"type": "string", "description": "a session id (unknown and expired ones are 410)"},
    "hash": {"type": "string", "pattern": HASH, "description": "a block's SHA-256"},
}
"""Schemas of the path parameters, by name (the same name means the same thing in every route)."""

_STATUS_TEXT = {200: "success", 201: "created", 202: "accepted, not done yet (see the body)",
                206: "a range of the block", 400: "malformed request", 401: "no valid token",
                403: "the token's rights, or the URL's signature, do not allow it",
                404: "no such filespace, path or object", 405: "method not allowed", 409: "conflicts with the "
                "current state", 410: "the session expired", 413: "body too large", 416: "range not satisfiable",
                422: "bytes do not match their hash", 500: "internal error (see the hub's log)",
                503: "the hub cannot serve it now; retry"}


def _parameters(r: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in re.findall(r"{(\w+)}", r.path):
        schema = r.path_params.get(name) or PATH_PARAMS.get(name, {"type": "string"})
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    query: dict[str, Any] = r.params if isinstance(r.params, dict) else {n: {"type": "string"} for n in r.params}
    for name, schema in query.items():
        params.append({"name": name, "in": "query", "required": name in r.required_params, "schema": schema})
    for name, schema in r.headers.items():
        params.append({"name": name, "in": "header", "required": True, "schema": schema})
    return params


def _responses(r: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    success = r.statuses or (r.status,)
    for status in success:
        out: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "success")}
        schema = r.responses.get(status, r.response)
        if r.content_type == "application/json":
            if schema is not None:
                out["content"] = {"application/json": {"schema": schema}}
        else:
            out["content"] = {r.content_type: {"schema": schema or {"type": "string"}}}
        responses[str(status)] = out
    errors = {500}
    if r.auth == "token":
        errors |= {400, 401}
    if r.auth == "signed":
        errors |= {400, 403, 404}
    if "{fs}" in r.path and r.auth == "token":
        errors.add(404)
    if r.request is not None:
        errors |= {400, 413}
    errors |= set(r.errors)
    for status in sorted(errors):
        content: dict[str, Any] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
        if status == 400:  # aiohttp's HTTP parser refuses a malformed or oversized request line or header itself
            content["text/plain"] = {"schema": {"type": "string"}}
        responses[str(status)] = {"description": _STATUS_TEXT[status], "content": content}
    return responses


def _settle(value: Any, settings: HubSettings | None) -> Any:
    """``value`` with every :class:`Setting` replaced by this hub's setting (its default if none)."""
    if isinstance(value, Setting):
        if settings is not None:
            return getattr(settings, value.name)
        return attrs.fields_dict(HubSettings)[value.name].default
    if isinstance(value, dict):
        return {k: _settle(v, settings) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_settle(v, settings) for v in value]
    return value


def build_openapi(settings: HubSettings | None = None) -> dict[str, Any]:
    """The document: one operation per declared route, with this hub's settings as bounds."""
    return _settle(_build(), settings)  # type: ignore[no-any-return]


def _build() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        op: dict[str, Any] = {"operationId": r.handler.__name__, "summary": r.summary,
                              "responses": _responses(r)}
        params = _parameters(r)
        if params:
            op["parameters"] = params
        if r.request is not None:
            # A body without required fields may be left out: the handler reads it as {}.
            required = "$ref" in r.request or bool(r.request.get("required")) or r.request.get("type") != "object"
            op["requestBody"] = {"required": required, "content": {r.request_content_type: {"schema": r.request}}}
        if r.auth == "token":
            op["security"] = [{"serviceAccountToken": []}]
        else:
            if r.auth == "signed":
                op["description"] = "Authorised by the HMAC signature in the query, not a token."
            op["security"] = []
        if r.links:
            for status, links in r.links.items():
                op["responses"][str(status)]["links"] = links
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
