"""Connect routes: data stores of a filespace, linking objects as files, presigned reads.

Rights: managing data stores (add, rekey, remove) needs an **admin**, read-write token;
``GET .../connect/store`` returns the secret key to admin tokens only (others get
``""``); listing stores and linked files, counting them and presigning reads need any
token that may use the filespace; linking and unlinking files need a read-write token
(like any other write to the namespace). Store names travel in bodies and query
strings, never in the URL path.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

import structlog
from aiohttp import web

from lucidlink.exceptions import BadRequestError, ConfigurationError
from lucidlink.hub.api.context import body_of, changed, filespace_of, hub_of, write_as
from lucidlink.hub.api.http import bool_field, int_arg, ok, path_arg, query
from lucidlink.hub.api.route import RouteTable, obj, ref
from lucidlink.hub.core import connect
from lucidlink.hub.s3 import client as s3
from lucidlink.hub.secrets_box import SecretBox
from lucidlink.hub.state import Hub
from lucidlink.hub.store.base import MAX_INT64
from lucidlink.shared import normalize_etag
from lucidlink.types import (
    MAX_OBJECT_ID_BYTES,
    ExternalFileLink,
    S3DataStoreConfig,
    validate_data_store_name,
)

log = structlog.get_logger("lucidlink.hub")
ROUTES = RouteTable()
route = ROUTES.route

MAX_LINK_BATCH = 10_000
MAX_URL_BATCH = 1024
MAX_FILES_LIMIT = 5000
HEAD_CONCURRENCY = 16
CONFIG_KEYS = ("access_key", "secret_key", "bucket_name", "region", "endpoint", "url_expiration_minutes",
               "use_virtual_addressing")

async def secret_box(hub: Hub) -> SecretBox:
    """The hub's Connect key, loaded when the hub started (:func:`lucidlink.hub.app.open_keys`)."""
    if hub.secret_box is None:
        raise RuntimeError("the hub has no Connect key: it loads one when it starts")
    return hub.secret_box


def _config_of(value: Any) -> S3DataStoreConfig:
    """Validate a store config from JSON with the SDK's own rules (never trust the client)."""
    if not isinstance(value, dict):
        raise ConfigurationError("'config' must be an object with access_key, secret_key, bucket_name, region, "
                                 "endpoint, url_expiration_minutes and use_virtual_addressing", field="config")
    unknown = sorted(set(value) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigurationError(f"unknown data store setting(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(CONFIG_KEYS)}", field=unknown[0])
    for key in ("access_key", "secret_key", "bucket_name"):
        if key not in value:
            raise ConfigurationError(f"{key} is required", field=key)
    try:
        return S3DataStoreConfig(**value)
    except TypeError as exc:  # pragma: no cover - keys are checked above
        raise ConfigurationError(str(exc), field="config") from None


def _target(config: dict[str, Any], access_key: str, secret_key: str) -> s3.S3Target:
    return s3.S3Target(bucket=config["bucket_name"], access_key=access_key, secret_key=secret_key,
                       region=config["region"], endpoint=config["endpoint"],
                       virtual=config["use_virtual_addressing"])


async def _store_target(hub: Hub, row: Any) -> s3.S3Target:
    box = await secret_box(hub)
    secret = box.open(row["secret_sealed"], row["id"], f"the secret key of data store {row['name']!r}")
    return _target(json.loads(row["config"]), row["access_key"], secret)


def _name_arg(value: Any, field: str = "name") -> str:
    if value is None:
        raise BadRequestError(f"'{field}' (the data store's name) is required")
    return validate_data_store_name(value, field)


def _admin(principal: Any, what: str) -> None:
    principal.require_admin(what)
    principal.require_write(what)


# -- data stores ---------------------------------------------------------------------------

STORE = ref("DataStore")
STORE_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_-](?:[A-Za-z0-9 _-]{0,62}[A-Za-z0-9_-])?$",
              "description": "1-64 ASCII letters, digits, spaces, '_' or '-', not starting or ending with a space"}
S3_KEY = {"type": "string", "pattern": "^[\\x21-\\x7e]+$", "minLength": 1}
OBJECT_ID = {"type": "string", "minLength": 1, "maxLength": MAX_OBJECT_ID_BYTES,
             "description": f"an S3 key: 1 to {MAX_OBJECT_ID_BYTES} bytes of UTF-8"}


@route("GET", "/v1/filespaces/{fs}/connect/stores", "Connect: the filespace's data stores (never their secrets).",
       response=obj({"stores": {"type": "array", "items": STORE}}))
async def list_stores(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    rows = await hub_of(request).store.read(connect.list_stores, fs["id"])
    return ok({"stores": [connect.store_json(r) for r in rows]})


@route("POST", "/v1/filespaces/{fs}/connect/stores",
       "Connect: add an S3 data store (admin); the bucket is checked first, the secret is encrypted at rest.",
       request=obj({"name": STORE_NAME, "kind": {"enum": ["s3"]}, "config": ref("StoreConfig")}, ("name", "config")),
       status=201, response=STORE, errors=(403, 409))
async def add_store(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request)
    _admin(principal, "add Connect data stores")
    body = await body_of(request)
    name = _name_arg(body.get("name"))
    if body.get("kind", "s3") != "s3":
        raise ConfigurationError(f"data store kind {body.get('kind')!r} is not supported; use 's3'", field="kind")
    config = _config_of(body.get("config"))
    hub = hub_of(request)
    await hub.store.read(connect.check_name_free, fs["id"], name)
    target = s3.S3Target(bucket=config.bucket_name, access_key=config.access_key, secret_key=config.secret_key,
                         region=config.region, endpoint=config.endpoint, virtual=config.use_virtual_addressing)
    async with s3.session() as http:
        await s3.check_bucket(http, target)
    store_id = uuid.uuid4().hex
    sealed = (await secret_box(hub)).seal(config.secret_key, store_id)
    public = {k: getattr(config, k) for k in connect.CONFIG_FIELDS}
    row = await hub.store.write(connect.insert_store, fs["id"], store_id, name, "s3", config.access_key, sealed,
                                public)
    log.info("hub.connect.store_added", filespace=fs["id"], store=name, bucket=config.bucket_name,
             endpoint=target.where, access_key=config.access_key)
    return ok(connect.store_json(row), status=201)


@route("GET", "/v1/filespaces/{fs}/connect/store",
       "Connect: one data store by name; the secret key only for admin tokens ('' otherwise).",
       params={"name": STORE_NAME}, required_params=("name",), response=STORE)
async def get_store(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request)
    name = _name_arg(query(request).get("name"))
    hub = hub_of(request)
    row = await hub.store.read(connect.store_by_name, fs["id"], name)
    secret = ""
    if principal.admin:
        secret = (await secret_box(hub)).open(row["secret_sealed"], row["id"],
                                              f"the secret key of data store {name!r}")
    return ok(connect.store_json(row, secret))


@route("POST", "/v1/filespaces/{fs}/connect/stores/rekey",
       "Connect: replace a data store's credentials (admin); the new ones are checked against the bucket first.",
       request=obj({"name": STORE_NAME, "access_key": {**S3_KEY, "maxLength": 128},
                    "secret_key": {**S3_KEY, "maxLength": 256}}),
       response=STORE, errors=(403,))
async def rekey_store(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request)
    _admin(principal, "rekey Connect data stores")
    body = await body_of(request)
    name = _name_arg(body.get("name"))
    hub = hub_of(request)
    row = await hub.store.read(connect.store_by_name, fs["id"], name)
    config = json.loads(row["config"])
    try:  # the SDK's validators, on the stored config with the new keys
        S3DataStoreConfig(access_key=body.get("access_key"), secret_key=body.get("secret_key"),  # type: ignore[arg-type]
                          **{k: config[k] for k in connect.CONFIG_FIELDS})
    except TypeError:  # pragma: no cover
        raise ConfigurationError("access_key and secret_key are required", field="access_key") from None
    access_key, secret_key = body["access_key"], body["secret_key"]
    async with s3.session() as http:
        await s3.check_bucket(http, _target(config, access_key, secret_key))
    sealed = (await secret_box(hub)).seal(secret_key, row["id"])
    row = await hub.store.write(connect.rekey_store, fs["id"], row["id"], name, access_key, sealed)
    log.info("hub.connect.store_rekeyed", filespace=fs["id"], store=name, access_key=access_key)
    return ok(connect.store_json(row))


@route("POST", "/v1/filespaces/{fs}/connect/stores/remove",
       "Connect: remove a data store (admin); refused while files are linked to it unless 'force' unlinks them.",
       request=obj({"name": STORE_NAME, "force": {"type": "boolean"}}, ("name",)),
       response=obj({"removed": {"type": "boolean"}, "unlinked": {"type": "integer"}}), errors=(403, 409))
async def remove_store(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request)
    _admin(principal, "remove Connect data stores")
    body = await body_of(request)
    name = _name_arg(body.get("name"))
    force = bool_field(body, "force")
    result = await write_as(request, principal, connect.remove_store, fs["id"], name, force=force)
    if result["unlinked"]:
        changed(request, fs["id"])
    log.info("hub.connect.store_removed", filespace=fs["id"], store=name, unlinked=result["unlinked"])
    return ok(result)


# -- linked files --------------------------------------------------------------------------


def _links_of(body: dict[str, Any]) -> list[ExternalFileLink]:
    items = body.get("links")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_LINK_BATCH:
        raise BadRequestError(f"'links' must be a list of 1 to {MAX_LINK_BATCH} links "
                              "({path, store, object_id, size?, checksum?})")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequestError(f"link {i} must be an object {{path, store, object_id, size?, checksum?}}")
        unknown = set(item) - {"path", "store", "object_id", "size", "checksum"}
        if unknown:
            raise BadRequestError(f"link {i} has unknown field(s) {', '.join(sorted(unknown))}")
        if item.get("path") is None:
            raise BadRequestError(f"link {i}: 'path' is required")
        # The SDK sends its "" (LucidLink's "no checksum") as none: the wire has one spelling.
        if item.get("checksum") == "":
            raise ConfigurationError(f"link {i}: checksum must be 1-256 printable ASCII characters or absent",
                                     field="checksum")
        fields: dict[str, Any] = {"data_store_name": item.get("store"), "object_id": item.get("object_id"),
                                  "size": item.get("size"), "checksum": item.get("checksum")}
        out.append(ExternalFileLink(file_path=path_arg(item.get("path")), **fields))  # validated there
    return out


@route("POST", "/v1/filespaces/{fs}/connect/links",
       "Connect: link S3 objects as read-only files (one transaction: all or none; parents are created). "
       "Without size the hub asks S3 (HeadObject); with size and checksum it trusts the caller.",
       request=obj({"links": {"type": "array", "minItems": 1, "maxItems": MAX_LINK_BATCH, "items": ref("LinkItem")}}),
       status=201, response=obj({"entries": {"type": "array", "items": {"type": "object"}}}),
       errors=(403, 409, 503))
async def link_files(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request, write="link files from data stores")
    body = await body_of(request)
    links = _links_of(body)
    hub = hub_of(request)
    stores = await hub.store.read(connect.stores_by_names, fs["id"], [lk.data_store_name for lk in links])
    prepared: list[dict[str, Any]] = [
        {"path": lk.file_path, "store": lk.data_store_name, "store_id": stores[lk.data_store_name]["id"],
         "object_id": lk.object_id, "size": lk.size, "checksum": lk.checksum,
         "etag": normalize_etag(lk.checksum) if lk.checksum and s3.looks_like_etag(lk.checksum) else None,
         "mtime": None}
        for lk in links
    ]
    to_head = [item for item in prepared if item["size"] is None]
    if to_head:
        targets = {name: await _store_target(hub, row) for name, row in stores.items()
                   if any(item["store"] == name for item in to_head)}
        sem = asyncio.Semaphore(HEAD_CONCURRENCY)
        async with s3.session() as http:
            async def head(item: dict[str, Any]) -> None:
                async with sem:
                    info = await s3.head_object(http, targets[item["store"]], item["object_id"], item["store"])
                item.update(size=info.size, etag=info.etag, mtime=info.mtime)

            await asyncio.gather(*(head(item) for item in to_head))
    entries = await write_as(request, principal, connect.link, fs["id"], prepared)
    changed(request, fs["id"])
    return ok({"entries": entries}, status=201)


@route("POST", "/v1/filespaces/{fs}/connect/unlink",
       "Connect: remove a linked file's entry (the S3 object is never touched).",
       request=obj({"path": ref("NonRootPath")}), response=obj({"deleted": {"type": "integer"}, "seq": {"type": "integer"}}),
       errors=(403, 409))
async def unlink_file(request: web.Request) -> web.StreamResponse:
    principal, fs = await filespace_of(request, write="unlink files")
    body = await body_of(request)
    result = await write_as(request, principal, connect.unlink, fs["id"], path_arg(body.get("path")))
    changed(request, fs["id"])
    return ok(result)


def _cursor_arg(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not re.fullmatch(r"[0-9]{1,19}", value):  # not isdigit(): it takes "²", which int() refuses
        raise BadRequestError(f"cursor {value[:40]!r} is not one this hub handed out; start again without it")
    return int(value)


@route("GET", "/v1/filespaces/{fs}/connect/files",
       "Connect: one page of the files linked to a data store (stable keyset cursor).",
       params={"store": STORE_NAME, "limit": {"type": "integer", "minimum": 1, "maximum": MAX_FILES_LIMIT},
               "cursor": {"type": "string", "pattern": "^[0-9]{0,19}$"}}, required_params=("store",),
       response=obj({"files": {"type": "array", "items": obj({"id": {"type": "integer"}, "path": {"type": "string"},
                                                               "object_id": {"type": "string"}})},
                     "has_more": {"type": "boolean"}, "cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]}}))
async def list_linked(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    q = query(request)
    name = _name_arg(q.get("store"), "store")
    limit = int_arg(q.get("limit"), "limit", default=1000, lo=1, hi=MAX_FILES_LIMIT)
    files, cursor = await hub_of(request).store.read(connect.list_external, fs["id"], name, limit,
                                                     _cursor_arg(q.get("cursor")))
    return ok({"files": files, "has_more": cursor is not None, "cursor": None if cursor is None else str(cursor)})


@route("GET", "/v1/filespaces/{fs}/connect/count", "Connect: how many files are linked to a data store.",
       params={"store": STORE_NAME}, required_params=("store",), response=obj({"count": {"type": "integer"}}))
async def count_linked(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    name = _name_arg(query(request).get("store"), "store")
    return ok({"count": await hub_of(request).store.read(connect.count_external, fs["id"], name)})


@route("POST", "/v1/filespaces/{fs}/connect/urls",
       "Connect: presigned GET URLs (ranged reads straight from S3) for linked files, by entry id.",
       request=obj({"ids": {"type": "array", "minItems": 1, "maxItems": MAX_URL_BATCH,
                            "items": {"type": "integer", "minimum": 0, "maximum": MAX_INT64}}}),
       response=obj({"urls": {"type": "object"}, "missing": {"type": "array", "items": {"type": "integer"}}}),
       errors=(503,))
async def presign_urls(request: web.Request) -> web.StreamResponse:
    _, fs = await filespace_of(request)
    body = await body_of(request)
    ids = body.get("ids")
    if (not isinstance(ids, list) or not 1 <= len(ids) <= MAX_URL_BATCH
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= MAX_INT64 for i in ids)):
        raise BadRequestError(f"'ids' must be a list of 1 to {MAX_URL_BATCH} entry ids (integers)")
    hub = hub_of(request)
    rows, stores = await hub.store.read(connect.links_by_ids, fs["id"], sorted(set(ids)))
    targets: dict[str, s3.S3Target] = {}
    now = time.time()
    urls: dict[str, Any] = {}
    for r in rows:
        store = stores[r["store_id"]]
        if store["id"] not in targets:
            targets[store["id"]] = await _store_target(hub, store)
        ttl = min(int(json.loads(store["config"])["url_expiration_minutes"]) * 60, s3.MAX_EXPIRES)
        urls[str(r["node_id"])] = {
            "url": s3.presign(targets[store["id"]], "GET", r["object_id"], ttl),
            "expires": int(now + ttl), "etag": r["etag"], "size": r["size"], "key_id": store["key_id"],
        }
    missing = sorted(i for i in set(ids) if str(i) not in urls)
    return ok({"urls": urls, "missing": missing})

