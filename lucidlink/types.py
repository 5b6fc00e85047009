"""The SDK's public value objects: frozen attrs classes with a readable ``str``."""

from __future__ import annotations

import enum
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from lucidlink.exceptions import ConfigurationError
from lucidlink.paths import normalize_path
from lucidlink.tokens import check_token_shape


class SyncMode(str, enum.Enum):
    """When a linked filespace pushes and pulls changes on its own."""

    SYNC_ALL = "all"
    """``unlink()`` and leaving ``with`` call ``sync_all()`` first (the default)."""
    SYNC_NONE = "none"
    """``unlink()`` does not pull changes; closed files are still committed first."""

    def __str__(self) -> str:
        return self.value


class LockType(str, enum.Enum):
    """Whole-file lock taken by ``open(..., lock_type=...)``."""

    NONE = ""
    SHARED = "shared"
    EXCLUSIVE = "exclusive"

    def __str__(self) -> str:
        return self.value


class StorageMode(enum.Enum):
    """Where a daemon keeps its state (see :class:`StorageConfig`)."""

    PHYSICAL = "physical"
    """In ``<root_path>/.lucid``, kept after ``stop`` when ``persist_on_exit``."""
    SANDBOXED = "sandboxed"
    """In a private temporary directory, always removed on ``stop``."""


def _optional_path(value: str | Path | None) -> Path | None:
    return None if value is None or value == "" else Path(value)


@attrs.frozen
class StorageConfig:
    """Where a daemon keeps its state: ``Daemon(storage=StorageConfig(...))``.

    ``PHYSICAL`` keeps it in ``<root_path>/.lucid`` (``root_path`` ``None``: the working
    directory) and removes that ``.lucid`` directory on ``stop`` unless
    ``persist_on_exit``; ``SANDBOXED`` (the default) keeps it in a private temporary
    directory, always removed. ``root_path`` and ``persist_on_exit`` apply to
    ``PHYSICAL`` only.
    """

    mode: StorageMode = attrs.field(default=StorageMode.SANDBOXED, converter=StorageMode)
    persist_on_exit: bool = attrs.field(default=False, converter=bool)
    root_path: Path | None = attrs.field(default=None, converter=_optional_path)

    def get_root_path(self) -> Path:
        """The directory the state goes under: ``root_path`` or the working directory
        (``PHYSICAL``, state in its ``.lucid``), the system temporary directory
        (``SANDBOXED``, state in a private directory made there on ``start``)."""
        if self.mode is StorageMode.SANDBOXED:
            return Path(tempfile.gettempdir())
        return (self.root_path or Path.cwd()).absolute()

    def should_cleanup(self) -> bool:
        """Whether ``stop`` removes the state: always, but ``PHYSICAL`` with ``persist_on_exit``."""
        return self.mode is StorageMode.SANDBOXED or not self.persist_on_exit


@attrs.frozen
class DaemonStatus:
    """A daemon's state, from ``daemon.get_status()``."""

    is_running: bool
    """Whether ``start`` was called and ``stop`` not yet."""
    is_authenticated: bool
    """Whether ``authenticate`` succeeded at least once while running."""
    is_linked: bool
    """Whether any of its workspaces has a filespace linked."""
    root_path: str
    """The daemon's root dir (``""`` for a sandboxed daemon that is not running)."""


@attrs.frozen(repr=False)
class ServiceAccountCredentials:
    """A service-account token; this hub issues ``sa_live:<key-id>:<secret>``.

    Checked as LucidLink's SDK checks it: ``ConfigurationError`` (a ``ValueError``)
    for an empty token, an unknown prefix (known: ``lucid_sa:``, ``sa_live:``,
    ``sa_dev:``, ``sa_staging:``, ``sa_local:``) or fewer than three colon-separated
    parts. A well-formed token the hub does not know fails at ``authenticate()``
    with ``AuthenticationError``. The repr never shows the secret.
    """

    token: str = attrs.field()

    @token.validator
    def _check(self, attribute: Any, value: object) -> None:
        try:
            check_token_shape(value)
        except ValueError as exc:
            raise ConfigurationError(str(exc), field="token") from None

    @property
    def key_id(self) -> str:
        """The public part of the token (its second colon-separated part)."""
        return self.token.strip().split(":")[1]

    def __repr__(self) -> str:
        return f"ServiceAccountCredentials(key_id={self.key_id!r}, secret='***')"

    __str__ = __repr__


def _ns_str(ns: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).isoformat(timespec="seconds")


@attrs.frozen
class DirEntry:
    """One entry of a directory listing (times in nanoseconds since the epoch)."""

    name: str
    size: int
    type: str
    """``"file"``, ``"dir"``, ``"link"`` or ``"unknown"``."""
    file_id: str
    """The entry's id, stable across moves and renames (a string, as in LucidLink's SDK)."""
    file_id_external: int
    """For a linked (Connect) file, the id that ``LinkedFilesResult.file_ids`` gives it;
    ``0`` for any other entry."""
    ctime: int
    mtime: int
    path: str = ""
    target: str = ""
    """For a symbolic link, its target as it was created (``fs.read_symlink``); ``""``
    for any other entry."""

    def is_file(self) -> bool:
        """Whether this is a regular (or Connect) file."""
        return self.type == "file"

    def is_dir(self) -> bool:
        """Whether this is a directory."""
        return self.type == "dir"

    def is_link(self) -> bool:
        """Whether this is a symbolic link (``fs.create_symlink``); ``is_file`` and ``is_dir``
        are then false, whatever the link points to."""
        return self.type == "link"

    def __str__(self) -> str:
        return f"{self.type:4} {self.size:>12}  {_ns_str(self.mtime)}  {self.path or self.name}"


@attrs.frozen
class FilespaceInfo:
    """A filespace of the workspace."""

    id: str
    name: str
    created: int
    """Creation time, nanoseconds since the epoch."""
    block_size: int = 0

    def __str__(self) -> str:
        return f"{self.name} ({self.id}, created {_ns_str(self.created)})"


@attrs.frozen
class WorkspaceInfo:
    """A workspace a ``Client`` is logged in to (``client.list_workspaces()``)."""

    id: str
    name: str

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


@attrs.frozen
class ClientConfig:
    """Settings of a ``Client``; ``None`` keeps the default."""

    fs_cache_size_mb: int | None = None
    """On-disk block cache size in MB (the daemon's ``fs.cache.size``)."""


@attrs.frozen
class FilespaceSize:
    """Sizes of a filespace, in bytes (``entries`` is a count)."""

    entries: int
    data: int
    storage: int
    external_files_size: int
    external_files_count: int

    def __str__(self) -> str:
        return (f"{self.entries} entries, {self.data} bytes of data, {self.storage} bytes stored, "
                f"{self.external_files_count} external files ({self.external_files_size} bytes)")


@attrs.frozen
class FilespaceStatistics:
    """Counts and sizes of a filespace."""

    file_count: int
    directory_count: int
    symlink_count: int
    entries_size: int
    data_size: int
    storage_size: int
    external_files_size: int
    external_files_count: int

    def __str__(self) -> str:
        return (f"{self.file_count} files, {self.directory_count} directories, {self.data_size} bytes "
                f"of data ({self.storage_size} stored), {self.external_files_count} external files")


@attrs.frozen
class LockInfo:
    """A lock held on, or requested for, a path (see ``fs.get_locks``)."""

    path: str
    mode: str
    """``"shared"`` or ``"exclusive"``."""
    state: str
    """``"held"`` or ``"waiting"``."""
    session_id: str
    client: str
    since: int
    expires: int
    token: int
    """The fencing token of the grant."""

    def __str__(self) -> str:
        return f"{self.mode} lock on {self.path} {self.state} by {self.client or self.session_id}"


# -- Connect: data stores and files linked from them ---------------------------------------
# The validators below run in the SDK (when a value is built) and again in the hub, which
# builds the same classes from each request: the hub never trusts the client.

MAX_URL_EXPIRATION_MINUTES = 7 * 24 * 60
"""The longest lifetime SigV4 allows a presigned URL (7 days)."""
MAX_OBJECT_ID_BYTES = 1024
"""S3's limit on an object key, in bytes of UTF-8."""
_STORE_NAME_RE = re.compile(r"[A-Za-z0-9 _-]{1,64}")
_KEY_RE = re.compile(r"[\x21-\x7e]+")
_CHECKSUM_RE = re.compile(r"[\x20-\x7e]{1,256}")
_REGION_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_IP_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def _bad(field: str, message: str) -> ConfigurationError:
    return ConfigurationError(message, field=field)


def validate_data_store_name(name: object, field: str = "name") -> str:
    """A data store name: 1-64 ASCII letters, digits, spaces, ``_`` or ``-`` (no edge spaces)."""
    if not isinstance(name, str) or not _STORE_NAME_RE.fullmatch(name) or name != name.strip():
        shown = repr(name) if isinstance(name, str) else f"of type {type(name).__name__}"
        raise _bad(field, f"data store name {shown} is invalid: use 1-64 letters, digits, spaces, '_' "
                          "or '-', not starting or ending with a space")
    return name


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` breaks the S3 bucket naming rules, or ``None`` when it follows them."""
    if not 3 <= len(name) <= 63:
        return f"a bucket name has 3 to 63 characters, not {len(name)}"
    if not re.fullmatch(r"[a-z0-9.-]+", name):
        return "it may hold only lowercase letters, digits, '.' and '-'"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "it must begin and end with a letter or a digit"
    if ".." in name:
        return "it must not contain two adjacent periods"
    if _IP_RE.fullmatch(name):
        return "it must not be formatted as an IP address"
    if name.startswith(_BUCKET_PREFIXES):
        return f"it must not start with {', '.join(_BUCKET_PREFIXES)}"
    if name.endswith(_BUCKET_SUFFIXES):
        return f"it must not end with {', '.join(_BUCKET_SUFFIXES)}"
    return None


def _check_str(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise _bad(field, f"{field} must be a string, not {type(value).__name__}")
    return value


def _check_access_key(instance: Any, attribute: Any, value: Any) -> None:
    value = _check_str(attribute.name, value)
    if not 1 <= len(value) <= 128 or not _KEY_RE.fullmatch(value):
        raise _bad(attribute.name, f"{attribute.name} is invalid: give 1-128 printable ASCII characters "
                                   "without spaces (an access key id such as AKIA...)")


def _check_secret_key(instance: Any, attribute: Any, value: Any) -> None:
    # The message never shows the value.
    value = _check_str(attribute.name, value)
    if not 1 <= len(value) <= 256 or not _KEY_RE.fullmatch(value):
        raise _bad(attribute.name, f"{attribute.name} is invalid: give 1-256 printable ASCII characters "
                                   "without spaces (the secret access key)")


def _check_bucket(instance: Any, attribute: Any, value: Any) -> None:
    value = _check_str("bucket_name", value)
    problem = bucket_name_problem(value)
    if problem:
        raise _bad("bucket_name", f"bucket_name {value[:80]!r} breaks the S3 bucket naming rules: {problem}")


def _check_region(instance: Any, attribute: Any, value: Any) -> None:
    value = _check_str("region", value)
    if value and not _REGION_RE.fullmatch(value):
        raise _bad("region", f"region {value[:80]!r} is invalid: use letters, digits, '-' or '_' "
                             "(such as us-east-1), or '' with an endpoint")


def _check_endpoint(instance: Any, attribute: Any, value: Any) -> None:
    value = _check_str("endpoint", value)
    if not value:
        return
    shown = value[:120]
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise _bad("endpoint", f"endpoint {shown!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise _bad("endpoint", f"endpoint {shown!r} must use the http or https scheme "
                               "(such as https://s3.example.com or http://127.0.0.1:8333)")
    if not parts.hostname:
        raise _bad("endpoint", f"endpoint {shown!r} names no host")
    if parts.username or parts.password:
        raise _bad("endpoint", "endpoint must not hold credentials; give them as access_key/secret_key")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _bad("endpoint", f"endpoint {shown!r} must be a scheme, host and optional port only, "
                               "with no path, query or fragment")


def _check_expiration(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_URL_EXPIRATION_MINUTES:
        raise _bad("url_expiration_minutes", f"url_expiration_minutes must be an integer from 1 to "
                                             f"{MAX_URL_EXPIRATION_MINUTES} (7 days), not {value!r}")


def _check_bool(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, bool):
        raise _bad(attribute.name, f"{attribute.name} must be True or False, not {value!r}")


def _mask(secret: str) -> str:
    return "'***'" if secret else "''"


@attrs.frozen(repr=False)
class S3DataStoreConfig:
    """How to reach an S3 bucket (AWS or any S3-compatible store) for LucidLink Connect.

    ``endpoint`` ``""`` means AWS (then ``region`` is required); otherwise an
    ``http(s)://host[:port]`` URL. Presigned read URLs live ``url_expiration_minutes``
    (at most 7 days). Invalid values raise ``ConfigurationError`` naming the field.
    ``repr`` and ``str`` never show the secret key.
    """

    access_key: str = attrs.field(validator=_check_access_key)
    secret_key: str = attrs.field(validator=_check_secret_key)
    bucket_name: str = attrs.field(validator=_check_bucket)
    region: str = attrs.field(default="", validator=_check_region)
    endpoint: str = attrs.field(default="", validator=_check_endpoint)
    url_expiration_minutes: int = attrs.field(default=MAX_URL_EXPIRATION_MINUTES, validator=_check_expiration)
    use_virtual_addressing: bool = attrs.field(default=False, validator=_check_bool)

    def __attrs_post_init__(self) -> None:
        if not self.region and not self.endpoint:
            raise _bad("region", "give a region (for AWS S3) or an endpoint (for another S3-compatible "
                                 "store); both are empty")

    def __repr__(self) -> str:
        return (f"S3DataStoreConfig(access_key={self.access_key!r}, secret_key={_mask(self.secret_key)}, "
                f"bucket_name={self.bucket_name!r}, region={self.region!r}, endpoint={self.endpoint!r}, "
                f"url_expiration_minutes={self.url_expiration_minutes!r}, "
                f"use_virtual_addressing={self.use_virtual_addressing!r})")

    def __str__(self) -> str:
        where = self.endpoint or f"AWS S3 {self.region}"
        return f"S3 bucket {self.bucket_name} at {where} (access key {self.access_key}, secret ***)"


class DataStoreKind(str, enum.Enum):
    """The kind of a Connect data store."""

    S3 = "S3DataStore"
    """Amazon S3 or an S3-compatible object store."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> DataStoreKind | None:
        # The hub's wire name of the kind.
        return cls.S3 if value == "s3" else None


class DataStoreRekeyState(str, enum.Enum):
    """Whether a data store's credentials are being rotated (``DataStoreInfo.rekey_state``).

    This hub rotates them in the call to ``rekey_data_store``, so a store is never
    seen ``IN_PROGRESS``.
    """

    NO_REKEY = "no_rekey"
    """No rotation is under way."""
    IN_PROGRESS = "in_progress"
    """A rotation is under way."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> DataStoreRekeyState | None:
        # The hub's states: never rekeyed, or rekeyed (and done) at least once.
        return cls.NO_REKEY if value in ("", "none", "rekeyed") else None


@attrs.frozen(repr=False)
class S3Credentials:
    """New credentials for a data store: ``connect.rekey_data_store(name, S3Credentials(...))``.

    Checked like :class:`S3DataStoreConfig`'s (``ConfigurationError`` naming the
    field); ``repr`` and ``str`` never show the secret key.
    """

    access_key: str = attrs.field(validator=_check_access_key)
    secret_key: str = attrs.field(validator=_check_secret_key)
    kind: DataStoreKind = attrs.field(default=DataStoreKind.S3, converter=DataStoreKind)

    def __repr__(self) -> str:
        return (f"S3Credentials(access_key={self.access_key!r}, "
                f"secret_key={_mask(self.secret_key)}, kind={self.kind!r})")

    __str__ = __repr__


DataStoreCredentials = S3Credentials
"""The credentials of a data store of any kind (S3 is the only kind)."""


@attrs.frozen(repr=False)
class DataStoreInfo:
    """A Connect data store of a filespace.

    ``secret_key`` is filled only by ``get_data_store`` called with an admin token;
    it is ``""`` everywhere else. ``key_id`` names the credentials in use (it changes
    with every rekey); ``rekey_state`` is ``DataStoreRekeyState.NO_REKEY`` (a rekey
    completes within its call). ``repr`` and ``str`` never show the secret key.
    """

    name: str
    access_key: str = ""
    secret_key: str = ""
    bucket_name: str = ""
    region: str = ""
    endpoint: str = ""
    url_expiration_minutes: int = 0
    use_virtual_addressing: bool = False
    kind: DataStoreKind = attrs.field(default=DataStoreKind.S3, converter=DataStoreKind)
    key_id: str = ""
    rekey_state: DataStoreRekeyState = attrs.field(default=DataStoreRekeyState.NO_REKEY,
                                                   converter=DataStoreRekeyState)

    @classmethod
    def from_dict(cls, store: dict[str, Any]) -> DataStoreInfo:
        """A ``DataStoreInfo`` from a dict of its fields (missing ones take their defaults)."""
        return cls(**{f.name: store[f.name] for f in attrs.fields(cls) if f.name in store})

    def __repr__(self) -> str:
        return (f"DataStoreInfo(name={self.name!r}, kind={self.kind!r}, access_key={self.access_key!r}, "
                f"secret_key={_mask(self.secret_key)}, bucket_name={self.bucket_name!r}, "
                f"region={self.region!r}, endpoint={self.endpoint!r}, "
                f"url_expiration_minutes={self.url_expiration_minutes!r}, "
                f"use_virtual_addressing={self.use_virtual_addressing!r}, key_id={self.key_id!r}, "
                f"rekey_state={self.rekey_state!r})")

    def __str__(self) -> str:
        where = self.endpoint or f"AWS S3 {self.region}"
        return (f"data store {self.name!r}: {self.kind} bucket {self.bucket_name} at {where} "
                f"(access key {self.access_key}, key id {self.key_id})")


@attrs.frozen
class LinkedFilesResult:
    """One page of the files linked to a data store (see ``list_external_files``).

    ``file_paths[i]`` is the path of file ``file_ids[i]`` (its entry id), linked to
    object ``object_ids[i]``. Pass ``cursor`` back for the next page while
    ``has_more``; a cursor stays valid while links are added and removed.
    """

    file_paths: list[str]
    file_ids: list[int]
    has_more: bool
    cursor: str | None
    object_ids: list[str] = attrs.field(factory=list)

    def __str__(self) -> str:
        more = f"; more after cursor {self.cursor}" if self.has_more else ""
        return f"{len(self.file_paths)} linked files{more}"


def _check_object_id(instance: Any, attribute: Any, value: Any) -> None:
    value = _check_str("object_id", value)
    try:
        n = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _bad("object_id", "object_id is not valid UTF-8 (it holds a lone surrogate)") from None
    if not 1 <= n <= MAX_OBJECT_ID_BYTES or "\x00" in value:
        raise _bad("object_id", f"object_id {value[:80]!r} must be 1-{MAX_OBJECT_ID_BYTES} bytes of UTF-8 "
                                "without NUL (an S3 object key)")


def _check_size(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63):
        raise _bad("size", f"size must be None or an integer of bytes >= 0, not {value!r}")


def _check_checksum(instance: Any, attribute: Any, value: Any) -> None:
    if value is None:
        return
    value = _check_str("checksum", value)
    if not _CHECKSUM_RE.fullmatch(value):
        raise _bad("checksum", "checksum must be 1-256 printable ASCII characters (such as the object's ETag)")


def _empty_is_none(value: Any) -> Any:
    # LucidLink's SDK spells "no checksum" as ""; one spelling inside.
    return None if value == "" else value


@attrs.frozen
class ExternalFileLink:
    """One object of a data store to link as the file ``file_path`` (``link_files``).

    ``size`` and ``checksum`` go together: given, they are trusted and the hub makes no
    S3 call; omitted (``None``, or ``""`` for the checksum), the hub asks S3 for the
    object's size, ETag and modification time. ``checksum`` is best the object's ETag
    (as S3 lists it): reads then check every response against it.
    """

    file_path: str = attrs.field(converter=normalize_path)
    data_store_name: str = attrs.field(validator=lambda i, a, v: validate_data_store_name(v, a.name))
    object_id: str = attrs.field(validator=_check_object_id)
    size: int | None = attrs.field(default=None, validator=_check_size)
    checksum: str | None = attrs.field(default=None, converter=_empty_is_none,
                                       validator=_check_checksum)

    def __attrs_post_init__(self) -> None:
        if self.file_path == "/":
            raise _bad("file_path", "file_path must name a file, not the root directory")
        if (self.size is None) != (self.checksum is None):
            raise _bad("size" if self.size is None else "checksum",
                       "give size and checksum together (the caller vouches for the object, no S3 call) "
                       "or neither (the hub asks S3)")

    def __str__(self) -> str:
        return f"{self.file_path} -> {self.data_store_name}:{self.object_id}"
