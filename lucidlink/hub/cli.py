"""``lucidlink hub ...``: serve, and the admin commands that work on a data dir.

Admin commands open the metadata store directly, so they work whether or not a hub is
running on the same data dir (SQLite's WAL lets both write safely).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lucidlink.exceptions import LucidLinkError, PathExistsError
from lucidlink.hub.config import (
    BLOCK_STORE_ENV,
    EVENT_LOOP_ENV,
    INLINE_BLOCK_MAX_ENV,
    SQLITE_SYNCHRONOUS,
    SQLITE_SYNCHRONOUS_ENV,
    HubSettings,
    block_store_from_env,
    event_loop_from_env,
    inline_block_max_from_env,
    metadata_url_from_env,
    sqlite_synchronous_from_env,
)
from lucidlink.hub.core import admin
from lucidlink.hub.eventloop import EVENT_LOOPS
from lucidlink.hub.store import create_metadata_store
from lucidlink.shared import DEFAULT_HOST, DEFAULT_HUB_URL, DEFAULT_PORT

DEFAULT_WORKSPACE = "demo"
DEFAULT_FILESPACE = "production-data"


def store_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings naming the hub's two stores, from the flags every hub command takes.

    The S3 secret key comes from ``--s3-secret-access-key`` or ``AWS_SECRET_ACCESS_KEY``
    (read by the block store); it is never printed or logged.
    """
    return {
        "data_dir": Path(args.data_dir) if args.data_dir else None,
        "metadata_url": metadata_url_from_env(args.metadata_url),
        "block_store": block_store_from_env(args.block_store),
        "s3_endpoint_url": args.s3_endpoint_url,
        "s3_region": args.s3_region,
        "s3_access_key_id": args.s3_access_key_id,
        "s3_secret_access_key": args.s3_secret_access_key,
    }


def _with_store(args: argparse.Namespace, fn: Callable[..., Any], *fn_args: Any, **kwargs: Any) -> Any:
    settings = HubSettings(**store_settings(args))

    async def run() -> Any:
        store = create_metadata_store(settings)
        await store.open()
        try:
            return await store.write(fn, *fn_args, **kwargs)
        finally:
            await store.close()

    return asyncio.run(run())


def serve_settings(args: argparse.Namespace) -> HubSettings:
    """The settings ``lucidlink hub serve`` runs with (flags, else environment, else defaults)."""
    return HubSettings(
        host=args.host, port=args.port, public_url=args.public_url,
        sqlite_synchronous=sqlite_synchronous_from_env(args.sqlite_synchronous),
        inline_block_max=inline_block_max_from_env(args.inline_block_max),
        event_loop=event_loop_from_env(args.event_loop),
        **store_settings(args),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    # The server's modules take most of a second to import; the other subcommands
    # (token, workspace, filespace) and `lucidlink --help` need none of them.
    from lucidlink.hub import eventloop, logs
    from lucidlink.hub.app import serve

    settings = serve_settings(args)
    logs.configure()
    eventloop.run(serve(settings), settings.event_loop)
    return 0


def _init(tx: Any, workspace: str, filespaces: list[str], block_size: int) -> str:
    ws, _ = admin.ensure_workspace(tx, workspace)
    for name in filespaces:
        admin.ensure_filespace(tx, ws["id"], name, block_size)
    token, _ = admin.create_token(tx, ws["id"], admin=True, description="created by hub init")
    return token


def cmd_init(args: argparse.Namespace) -> int:
    token = _with_store(args, _init, args.workspace, args.filespace or [], args.block_size)
    print(f"workspace {args.workspace}: filespaces {', '.join(args.filespace or []) or '(none)'}")
    print(token)
    return 0


def _token_create(tx: Any, workspace: str, filespaces: list[str] | None, read_only: bool, is_admin: bool,
                  description: str) -> str:
    ws = admin.get_workspace(tx, workspace)
    ids = None
    if filespaces:
        ids = [admin.filespace_by_name(tx, ws["id"], name)["id"] for name in filespaces]
    token, _ = admin.create_token(tx, ws["id"], filespace_ids=ids, read_only=read_only, admin=is_admin,
                                  description=description)
    return token


def cmd_token_create(args: argparse.Namespace) -> int:
    print(_with_store(args, _token_create, args.workspace, args.filespace, args.read_only,
                      args.admin, args.description))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    _with_store(args, admin.revoke_token, args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def _token_list(tx: Any, workspace: str | None) -> list[dict[str, Any]]:
    ws_id = admin.get_workspace(tx, workspace)["id"] if workspace else None
    return admin.list_tokens(tx, ws_id)


def cmd_token_list(args: argparse.Namespace) -> int:
    for t in _with_store(args, _token_list, args.workspace):
        state = "revoked" if t["revoked"] else "active"
        rights = ("read-only" if t["read_only"] else "read-write") + (" admin" if t["admin"] else "")
        scope = ",".join(t["filespaces"]) if t["filespaces"] else "all filespaces"
        print(f"{t['key_id']}  {t['workspace']}  {rights}  {scope}  {state}")
    return 0


def cmd_workspace_create(args: argparse.Namespace) -> int:
    row = _with_store(args, admin.create_workspace, args.name)
    print(f"{row['id']}  {row['name']}")
    return 0


def cmd_workspace_list(args: argparse.Namespace) -> int:
    for row in _with_store(args, admin.list_workspaces):
        print(f"{row['id']}  {row['name']}")
    return 0


def _filespace_create(tx: Any, workspace: str, name: str, block_size: int) -> Any:
    ws = admin.get_workspace(tx, workspace)
    row, created = admin.ensure_filespace(tx, ws["id"], name, block_size)
    if not created:
        raise PathExistsError(f"filespace {name!r} already exists in {workspace!r}")
    return row


def cmd_filespace_create(args: argparse.Namespace) -> int:
    row = _with_store(args, _filespace_create, args.workspace, args.name, args.block_size)
    print(f"{row['id']}  {row['name']}  block_size={row['block_size']}")
    return 0


def _filespace_list(tx: Any, workspace: str) -> list[Any]:
    return admin.list_filespaces(tx, admin.get_workspace(tx, workspace)["id"])


def cmd_filespace_list(args: argparse.Namespace) -> int:
    for row in _with_store(args, _filespace_list, args.workspace):
        print(f"{row['id']}  {row['name']}  block_size={row['block_size']}")
    return 0


def _hub_url(args: argparse.Namespace) -> str:
    return str(args.hub_url or os.environ.get("LUCIDLINK_HUB_URL") or DEFAULT_HUB_URL).split(",")[0]


def _shown_url(url: str | None) -> str | None:
    """A store URL fit to print: without a password."""
    if not url:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def _healthz(url: str) -> dict[str, Any]:
    import aiohttp

    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.get(f"{url}/healthz") as resp:
                body = await resp.json(content_type=None)
                return {"url": url, "up": resp.status == 200, **body}
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return {"url": url, "up": False, "error": f"{type(exc).__name__}: {exc}"[:200]}


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def cmd_status(args: argparse.Namespace) -> int:
    """The hub's health (over HTTP) and what its stores hold (read from them directly)."""
    import json
    import time

    from lucidlink import __version__
    from lucidlink.hub.core.status import hub_status

    settings = HubSettings(**store_settings(args))
    health = asyncio.run(_healthz(_hub_url(args)))
    workspaces = _with_store(args, hub_status, time.time_ns())
    report = {
        "version": __version__,
        "hub": health,
        "metadata": _shown_url(settings.metadata_url) or f"sqlite {settings.metadata_path}",
        "blocks": settings.block_store or f"local {settings.blocks_path}",
        "workspaces": workspaces,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    state = "up" if health["up"] else f"not reachable ({health.get('error', 'unhealthy')})"
    engines = f" (metadata {health['metadata']}, blocks {health['blocks']})" if health["up"] else ""
    print(f"lucidlink {__version__}; hub {health['url']}: {state}{engines}")
    print(f"metadata: {report['metadata']}\nblocks:   {report['blocks']}")
    for ws in workspaces:
        print(f"workspace {ws['name']}")
        for fs in ws["filespaces"]:
            s, locks = fs["statistics"], fs["locks"]
            print(
                f"  {fs['name']}: {s['file_count']} files, {s['directory_count']} directories, "
                f"{_size(s['data_size'])} of data ({_size(s['storage_size'])} stored), "
                f"{fs['sessions']} sessions, {locks.get('held', 0)} locks held, "
                f"{locks.get('waiting', 0)} waiting"
            )
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    """Ask a running hub to collect unreferenced blocks now (an admin token's workspace)."""
    import aiohttp

    token = args.token or os.environ.get("LUCIDLINK_TOKEN") or os.environ.get("LUCIDLINK_SA_TOKEN")
    if not token:
        print("error: no token: pass --token or set LUCIDLINK_TOKEN (an admin token)",
              file=sys.stderr)
        return 2
    url = _hub_url(args)
    body = {} if args.grace_seconds is None else {"grace_seconds": args.grace_seconds}

    async def run() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/admin/gc", json=body,
                                 headers={"Authorization": f"Bearer {token.strip()}"}) as resp:
                return resp.status, await resp.json(content_type=None)

    try:
        status, answer = asyncio.run(run())
    except (aiohttp.ClientError, ValueError) as exc:
        print(f"error: hub {url} not reachable ({type(exc).__name__}); start it or pass "
              "--hub-url", file=sys.stderr)
        return 1
    if status != 200:
        message = (answer.get("error") or {}).get("message") if isinstance(answer, dict) else None
        print(f"error: {message or f'HTTP {status}'}", file=sys.stderr)
        return 1
    print(f"deleted {answer['deleted_blocks']} unreferenced blocks")
    return 0


def cmd_embedded(args: argparse.Namespace) -> int:
    """Start a throw-away hub, point a command at it, stop the hub when it exits."""
    import logging

    from lucidlink.hub import logs  # imported here for the reason cmd_serve gives
    from lucidlink.hub.embedded import EmbeddedHub

    logs.configure(level=logging.WARNING)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("give a command to run after '--', e.g. lucidlink hub embedded -- python examples/quickstart.py",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lucidhub-") as tmp:
        data_dir = args.data_dir or tmp
        with EmbeddedHub(**{**store_settings(args), "data_dir": data_dir}) as hub:
            token = hub.init(args.workspace, args.filespace or [DEFAULT_FILESPACE], admin=True)
            env = {**os.environ, "LUCIDLINK_HUB_URL": hub.url, "LUCIDLINK_TOKEN": token,
                   "LUCIDLINK_FILESPACE": (args.filespace or [DEFAULT_FILESPACE])[0]}
            print(f"lucidhub: serving {hub.url} (data dir {data_dir}); running: {' '.join(command)}",
                  file=sys.stderr)
            return subprocess.call(command, env=env)


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except LucidLinkError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1

    return run


def build_parser() -> argparse.ArgumentParser:
    """The whole ``lucidlink`` command tree."""
    parser = argparse.ArgumentParser(prog="lucidlink", description="lucidlink filespaces")
    top = parser.add_subparsers(title="commands")
    hub = top.add_parser("hub", help="run and administer a hub").add_subparsers(title="hub commands")

    def data_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default=None,
                       help="the hub's data directory (optional when metadata is in PostgreSQL "
                            "and blocks in S3)")
        p.add_argument("--metadata-url", default=None,
                       help="postgresql://user@host:port/db to keep metadata in PostgreSQL "
                            "(default: $LUCIDHUB_METADATA_URL, else SQLite in the data dir)")
        p.add_argument("--block-store", default=None, metavar="s3://BUCKET[/PREFIX]",
                       help=f"keep blocks in an S3 bucket (default: ${BLOCK_STORE_ENV}, else a "
                            "directory in the data dir); the bucket is created if missing")
        p.add_argument("--s3-endpoint-url", default=None,
                       help="S3 endpoint, scheme://host[:port] (default: $AWS_ENDPOINT_URL, "
                            "else AWS S3)")
        p.add_argument("--s3-region", default=None,
                       help="the bucket's region (default: $AWS_REGION, else us-east-1)")
        p.add_argument("--s3-access-key-id", default=None,
                       help="default: $AWS_ACCESS_KEY_ID")
        p.add_argument("--s3-secret-access-key", default=None, help=argparse.SUPPRESS)

    p = hub.add_parser("serve", help="serve the hub (default: SQLite + blocks in --data-dir)")
    data_dir(p)
    p.add_argument("--host", default=DEFAULT_HOST)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--public-url", default=None, help="base URL clients reach this hub at")
    p.add_argument("--sqlite-synchronous", type=str.upper, choices=SQLITE_SYNCHRONOUS,
                   default=None,
                   help="FULL (default: a committed change survives a power loss) or NORMAL "
                        "(faster; an OS crash may lose the last commits); "
                        f"default ${SQLITE_SYNCHRONOUS_ENV}, else FULL")
    p.add_argument("--inline-block-max", type=int, default=None, metavar="BYTES",
                   help="blocks of at most BYTES travel inside commits and live in the metadata "
                        f"store (0: never); default ${INLINE_BLOCK_MAX_ENV}, else 65536")
    p.add_argument("--event-loop", choices=EVENT_LOOPS, default=None,
                   help="asyncio or uvloop (pip install 'lucidlink[uvloop]'); "
                        f"default ${EVENT_LOOP_ENV}, else asyncio")
    p.set_defaults(func=_guard(cmd_serve))

    p = hub.add_parser("init", help="create a workspace and filespaces if missing; print an admin token")
    data_dir(p)
    p.add_argument("--workspace", required=True)
    p.add_argument("--filespace", action="append")
    p.add_argument("--block-size", type=int, default=admin.DEFAULT_BLOCK_SIZE)
    p.set_defaults(func=_guard(cmd_init))

    token = hub.add_parser("token", help="service-account tokens").add_subparsers(title="token commands")
    p = token.add_parser("create", help="print a new token")
    data_dir(p)
    p.add_argument("--workspace", required=True)
    p.add_argument("--filespace", action="append", help="limit to this filespace (repeatable)")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--admin", action="store_true")
    p.add_argument("--description", default="")
    p.set_defaults(func=_guard(cmd_token_create))
    p = token.add_parser("revoke", help="revoke a token by key id (effective at once)")
    data_dir(p)
    p.add_argument("key_id")
    p.set_defaults(func=_guard(cmd_token_revoke))
    p = token.add_parser("list", help="list tokens (never their secrets)")
    data_dir(p)
    p.add_argument("--workspace")
    p.set_defaults(func=_guard(cmd_token_list))

    ws = hub.add_parser("workspace", help="workspaces").add_subparsers(title="workspace commands")
    p = ws.add_parser("create")
    data_dir(p)
    p.add_argument("name")
    p.set_defaults(func=_guard(cmd_workspace_create))
    p = ws.add_parser("list")
    data_dir(p)
    p.set_defaults(func=_guard(cmd_workspace_list))

    fsp = hub.add_parser("filespace", help="filespaces").add_subparsers(title="filespace commands")
    p = fsp.add_parser("create")
    data_dir(p)
    p.add_argument("--workspace", required=True)
    p.add_argument("name")
    p.add_argument("--block-size", type=int, default=admin.DEFAULT_BLOCK_SIZE,
                   help=f"bytes, a power of two (default {admin.DEFAULT_BLOCK_SIZE})")
    p.set_defaults(func=_guard(cmd_filespace_create))
    p = fsp.add_parser("list")
    data_dir(p)
    p.add_argument("--workspace", required=True)
    p.set_defaults(func=_guard(cmd_filespace_list))

    p = hub.add_parser("status", help="health, stores, sizes, sessions and locks")
    data_dir(p)
    p.add_argument("--hub-url", default=None,
                   help="the hub to ask for its health (default: $LUCIDLINK_HUB_URL, else "
                        f"{DEFAULT_HUB_URL})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_guard(cmd_status))

    p = hub.add_parser("gc", help="ask a running hub to collect unreferenced blocks now")
    p.add_argument("--hub-url", default=None,
                   help=f"default: $LUCIDLINK_HUB_URL, else {DEFAULT_HUB_URL}")
    p.add_argument("--token", default=None, help="an admin token (default: $LUCIDLINK_TOKEN)")
    p.add_argument("--grace-seconds", type=float, default=None,
                   help="keep blocks unreferenced for less than this (default: the hub's)")
    p.set_defaults(func=_guard(cmd_gc))

    p = hub.add_parser("embedded", help="run COMMAND against a throw-away hub on a free loopback port")
    data_dir(p)
    p.add_argument("--workspace", default=DEFAULT_WORKSPACE)
    p.add_argument("--filespace", action="append")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=_guard(cmd_embedded))
    return parser


