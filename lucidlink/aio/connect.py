"""``filespace.connect``: LucidLink Connect, S3 objects surfaced as read-only files.

Data stores (S3 buckets with credentials) belong to a filespace. Managing them (add,
rekey, remove) needs an admin token; the hub keeps the secret key encrypted at rest
and hands it back only to admin tokens (``get_data_store``; ``""`` for others).
Linking objects as files needs a read-write token; listing and reading need any
token that may use the filespace. Linked files are read like any other file (same
read-ahead and cache) with ranged GETs on URLs the hub presigns; writing, truncating
or locking them exclusively raises :class:`~lucidlink.exceptions.ReadOnlyError`;
``move`` and ``delete`` work on the entry and never touch the object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lucidlink.aio.filesystem import entry_from_json
from lucidlink.exceptions import ConfigurationError, LucidLinkError, NotFoundError
from lucidlink.paths import normalize_path
from lucidlink.types import (
    DataStoreInfo,
    DirEntry,
    ExternalFileLink,
    LinkedFilesResult,
    S3Credentials,
    S3DataStoreConfig,
    validate_data_store_name,
)

if TYPE_CHECKING:
    from lucidlink.aio.link import FilespaceLink

LINK_BATCH = 5000
"""Links sent per hub call by :meth:`AsyncConnect.link_files` (each call is one transaction)."""
MAX_PAGE = 5000


def _info(data: dict[str, Any]) -> DataStoreInfo:
    return DataStoreInfo(
        name=data["name"], access_key=data["access_key"], secret_key=data.get("secret_key") or "",
        bucket_name=data["bucket_name"], region=data["region"], endpoint=data["endpoint"],
        url_expiration_minutes=int(data["url_expiration_minutes"]),
        use_virtual_addressing=bool(data["use_virtual_addressing"]), kind=data["kind"], key_id=data["key_id"],
        rekey_state=data["rekey_state"],
    )


def _link_json(link: ExternalFileLink) -> dict[str, Any]:
    out: dict[str, Any] = {"path": link.file_path, "store": link.data_store_name, "object_id": link.object_id}
    if link.size is not None:
        out["size"] = link.size
        out["checksum"] = link.checksum
    return out


class AsyncConnect:
    """Connect operations of one linked filespace (``filespace.connect``)."""

    def __init__(self, link: FilespaceLink) -> None:
        self._link = link

    def __repr__(self) -> str:
        return f"<AsyncConnect of {self._link.full_name}>"

    async def _call(self, method: str, suffix: str, **kw: Any) -> Any:
        return await self._link.call(method, "/connect" + suffix, **kw)

    # -- data stores -------------------------------------------------------------------

    async def are_data_stores_available(self) -> bool:
        """Whether this filespace can have data stores and linked files (Connect).

        LucidLink answers ``False`` for filespaces too old for Connect or where it is
        not configured; tools call it before any other Connect method. This hub
        serves Connect on every filespace, so the answer is ``True`` unless the hub
        has no Connect endpoints (an older hub). Any token that may use the filespace
        may ask; other errors (a revoked token, an unreachable hub) are raised.
        """
        try:
            await self._call("GET", "/stores")
        except LucidLinkError as exc:
            if exc.code == "route_not_found":
                return False
            raise
        return True

    async def add_data_store(self, name: str, config: S3DataStoreConfig) -> DataStoreInfo:
        """Add an S3 data store to the filespace (admin token).

        The hub first checks that the store answers and the bucket exists (HeadBucket)
        and raises ``ConfigurationError`` saying which setting is wrong when not
        (``err.details["field"]``, ``err.details["reason"]``); ``FileExistsError``
        when the name is taken. The returned info carries no secret key.
        """
        validate_data_store_name(name)
        if not isinstance(config, S3DataStoreConfig):
            raise ConfigurationError("config must be a lucidlink.S3DataStoreConfig(...)", field="config")
        fields = ("access_key", "secret_key", "bucket_name", "region", "endpoint", "url_expiration_minutes",
                  "use_virtual_addressing")
        body = {"name": name, "kind": "s3", "config": {f: getattr(config, f) for f in fields}}
        return _info(await self._call("POST", "/stores", json=body))

    async def list_data_stores(self) -> list[DataStoreInfo]:
        """The filespace's data stores, by name (``secret_key`` is always ``""``)."""
        body = await self._call("GET", "/stores")
        return [_info(s) for s in body["stores"]]

    async def get_data_store(self, name: str) -> DataStoreInfo | None:
        """One data store, or ``None`` if the filespace has none of that name.

        The secret key is returned to admin tokens only; other tokens get ``""``.
        """
        validate_data_store_name(name)
        try:
            return _info(await self._call("GET", "/store", params={"name": name}))
        except NotFoundError:
            return None

    async def rekey_data_store(self, name: str, credentials: S3Credentials | str | None = None,
                               new_secret_key: str | None = None, *,
                               new_access_key: str | None = None) -> DataStoreInfo:
        """Replace a data store's credentials (admin token); checked against the bucket first.

        Give them as ``S3Credentials(access_key=..., secret_key=...)``, or as
        ``new_access_key=..., new_secret_key=...`` (LucidLink's two forms), or as
        ``(name, access_key, secret_key)``. Linked files keep working: their next reads
        get URLs signed with the new keys. Returns the store's new info.
        """
        validate_data_store_name(name)
        if isinstance(credentials, str):  # (name, access_key, secret_key)
            credentials, new_access_key = None, credentials
        if credentials is not None:
            if not isinstance(credentials, S3Credentials) or new_access_key or new_secret_key:
                raise ConfigurationError(
                    "give credentials=S3Credentials(...) or new_access_key= and new_secret_key=, "
                    "not both", field="credentials")
            new_access_key, new_secret_key = credentials.access_key, credentials.secret_key
        if not new_access_key or not new_secret_key:
            raise ConfigurationError(
                "rekey_data_store needs S3Credentials(access_key=..., secret_key=...) or both "
                "new_access_key= and new_secret_key=", field="credentials")
        body = {"name": name, "access_key": new_access_key, "secret_key": new_secret_key}
        return _info(await self._call("POST", "/stores/rekey", json=body))

    async def remove_data_store(self, name: str, force: bool = False) -> None:
        """Remove a data store (admin token).

        Refused (``FilespaceError``, ``err.details["linked_files"]``) while files are
        linked to it, unless ``force=True``, which unlinks them first. Objects in S3
        are never touched.
        """
        validate_data_store_name(name)
        if not isinstance(force, bool):
            raise ConfigurationError(f"force must be True or False, not {force!r}", field="force")
        await self._call("POST", "/stores/remove", json={"name": name, "force": force})

    # -- linked files ------------------------------------------------------------------

    async def link_file(self, file_path: str, data_store_name: str, object_id: str, size: int | None = None,
                        checksum: str = "") -> DirEntry:
        """Link an S3 object as the read-only file ``file_path`` (one hub call; parents are created).

        Without ``size`` the hub asks S3 for the size, ETag and modification time. With
        ``size`` and ``checksum`` (best: the object's ETag as S3 lists it) it trusts
        them and makes no S3 call, which is what bulk linking wants. ``checksum=""``
        (the default, as in LucidLink's SDK) means not given; ``size`` without a
        checksum is refused (``ConfigurationError``). Linking over an
        existing path (``FileExistsError``), to a missing store or object
        (``NotFoundError``) fails and changes nothing.
        """
        link = ExternalFileLink(file_path=file_path, data_store_name=data_store_name, object_id=object_id,
                                size=size, checksum=checksum)
        await self._link.before(link.file_path, "exact")
        body = await self._call("POST", "/links", json={"links": [_link_json(link)]})
        return entry_from_json(body["entries"][0])

    async def link_files(self, links: Iterable[ExternalFileLink | Mapping[str, Any]]) -> list[DirEntry]:
        """Link many objects: :class:`~lucidlink.types.ExternalFileLink` values, or dicts of
        ``link_file``'s arguments.

        Sent in batches of :data:`LINK_BATCH`, each one hub call and one transaction
        (all of a batch land or none); when a batch fails, the batches before it stay
        linked and the error says how many.
        """
        items = [lk if isinstance(lk, ExternalFileLink) else ExternalFileLink(**lk) for lk in links]
        for lk in items:
            await self._link.before(lk.file_path, "exact")
        out: list[DirEntry] = []
        for start in range(0, len(items), LINK_BATCH):
            chunk = items[start:start + LINK_BATCH]
            try:
                body = await self._call("POST", "/links", json={"links": [_link_json(lk) for lk in chunk]})
            except LucidLinkError as exc:
                if start:
                    exc.message += f" (the {start} links of the batches before this one were made)"
                    exc.args = (exc.message,)
                raise
            out += [entry_from_json(e) for e in body["entries"]]
        return out

    async def unlink_file(self, file_path: str) -> None:
        """Remove a linked file (the S3 object is not touched); ``ValueError`` for a regular file."""
        path = normalize_path(file_path)
        await self._link.before(path, "exact")
        await self._call("POST", "/unlink", json={"path": path})

    async def list_external_files(self, data_store_name: str, limit: int = 100,
                                  cursor: str | None = "") -> LinkedFilesResult:
        """One page of at most ``limit`` (1 to 5000) files linked to a data store, in link order.

        Pass ``cursor`` from the previous page while ``has_more`` (``""`` or ``None``:
        the first page). ``file_ids[i]`` equals ``DirEntry.file_id_external`` of that
        file. Pages are stable:
        links added or removed meanwhile never make a file appear twice or be skipped.
        """
        validate_data_store_name(data_store_name, "data_store_name")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE:
            raise ConfigurationError(f"limit must be an integer from 1 to {MAX_PAGE}, not {limit!r}", field="limit")
        if cursor is not None and not isinstance(cursor, str):
            raise ConfigurationError("cursor must be a string from a previous page, or '' for the first",
                                     field="cursor")
        params = {"store": data_store_name, "limit": str(limit)}
        if cursor:
            params["cursor"] = cursor
        body = await self._call("GET", "/files", params=params)
        files = body["files"]
        return LinkedFilesResult(
            file_paths=[f["path"] for f in files], file_ids=[int(f["id"]) for f in files],
            has_more=bool(body["has_more"]), cursor=body["cursor"], object_ids=[f["object_id"] for f in files],
        )

    async def count_external_files(self, data_store_name: str) -> int:
        """How many files are linked to a data store."""
        validate_data_store_name(data_store_name, "data_store_name")
        body = await self._call("GET", "/count", params={"store": data_store_name})
        return int(body["count"])
