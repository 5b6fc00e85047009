"""``lucidlink connect``: a filespace's S3 data stores and the objects linked from them."""

from __future__ import annotations

import json
from typing import Any

import click

from lucidlink.commands.errors import CommandError
from lucidlink.commands.runtime import Runtime, pass_runtime
from lucidlink.types import DataStoreInfo, S3DataStoreConfig

_FILESPACE = click.argument("filespace_url", metavar="lucidlink://WORKSPACE/FILESPACE")
_STORE = click.option("--store", "store", required=True, help="The data store's name.")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
_SECRET_KEY = click.option(
    "--secret-key",
    envvar="LUCIDLINK_S3_SECRET_KEY",
    prompt=True,
    hide_input=True,
    show_envvar=False,
    show_default=False,
    help="The S3 secret key (default: $LUCIDLINK_S3_SECRET_KEY, else asked for; never shown).",
)


def _connect(rt: Runtime, url: str) -> Any:
    # The blocking Connect class is not exported by name; it is what filespace.connect gives.
    return rt.session().filespace(rt.url(url)).connect


def _store_dict(s: DataStoreInfo) -> dict[str, object]:
    return {
        "name": s.name,
        "kind": s.kind,
        "bucket": s.bucket_name,
        "region": s.region,
        "endpoint": s.endpoint,
        "access_key": s.access_key,
        "key_id": s.key_id,
        "url_expiration_minutes": s.url_expiration_minutes,
        "virtual_addressing": s.use_virtual_addressing,
    }


@click.group()
def connect() -> None:
    """S3 data stores and linked files (Connect).

    A data store is an S3 bucket; objects in it are linked as read-only files.

    \b
    Examples:
      lucidlink connect stores add lucidlink://acme/media footage --bucket raw \\
          --endpoint https://s3.example.com --access-key AKIA...
      lucidlink connect link lucidlink://acme/media/raw/a.mov --store footage --object a.mov
      lucidlink connect list lucidlink://acme/media --store footage --all
    """


@connect.group()
def stores() -> None:
    """List, add, rekey and remove a filespace's data stores (admin token to change them).

    \b
    Examples:
      lucidlink connect stores list lucidlink://acme/media
      lucidlink connect stores remove --force lucidlink://acme/media footage
    """


@stores.command("list")
@_JSON
@_FILESPACE
@pass_runtime
def stores_list(rt: Runtime, as_json: bool, filespace_url: str) -> None:
    """List the data stores (secrets are never shown).

    \b
    Example:
      lucidlink connect stores list lucidlink://acme/media
    """
    found = _connect(rt, filespace_url).list_data_stores()
    if as_json:
        click.echo(json.dumps([_store_dict(s) for s in found], indent=2))
        return
    for s in found:
        click.echo(f"{s.name}\t{s.kind}\t{s.bucket_name}\t{s.endpoint or '-'}")


@stores.command("add")
@click.option("--bucket", required=True, help="The S3 bucket.")
@click.option("--access-key", required=True, help="The S3 access key id.")
@_SECRET_KEY
@click.option("--endpoint", default="", help="The S3 endpoint URL (default: AWS).")
@click.option("--region", default="", help="The bucket's region.")
@click.option("--url-expiration-minutes", type=int, default=None, help="How long signed URLs live.")
@click.option("--virtual-addressing", is_flag=True, help="bucket.host URLs instead of host/bucket.")
@_FILESPACE
@click.argument("name")
@pass_runtime
def stores_add(
    rt: Runtime,
    bucket: str,
    access_key: str,
    secret_key: str,
    endpoint: str,
    region: str,
    url_expiration_minutes: int | None,
    virtual_addressing: bool,
    filespace_url: str,
    name: str,
) -> None:
    """Add an S3 data store NAME (the hub checks the bucket answers first).

    \b
    Example:
      LUCIDLINK_S3_SECRET_KEY=... lucidlink connect stores add lucidlink://acme/media footage \\
          --bucket raw --endpoint https://s3.example.com --access-key AKIA...
    """
    extra = (
        {} if url_expiration_minutes is None else {"url_expiration_minutes": url_expiration_minutes}
    )
    try:
        config = S3DataStoreConfig(
            access_key=access_key,
            secret_key=secret_key,
            bucket_name=bucket,
            endpoint=endpoint,
            region=region,
            use_virtual_addressing=virtual_addressing,
            **extra,
        )
    except (TypeError, ValueError) as exc:
        raise CommandError(f"data store {name!r}: {exc}") from None
    added = _connect(rt, filespace_url).add_data_store(name, config)
    rt.echo(f"added data store {added.name} (bucket {added.bucket_name})")


@stores.command("rekey")
@click.option("--access-key", required=True, help="The new S3 access key id.")
@_SECRET_KEY
@_FILESPACE
@click.argument("name")
@pass_runtime
def stores_rekey(
    rt: Runtime, access_key: str, secret_key: str, filespace_url: str, name: str
) -> None:
    """Replace data store NAME's S3 credentials (checked against the bucket first).

    \b
    Example:
      lucidlink connect stores rekey lucidlink://acme/media footage --access-key AKIA...
    """
    _connect(rt, filespace_url).rekey_data_store(
        name, new_access_key=access_key, new_secret_key=secret_key
    )
    rt.echo(f"rekeyed data store {name}")


@stores.command("remove")
@click.option("--force", is_flag=True, help="Unlink the store's files first (S3 is never touched).")
@_FILESPACE
@click.argument("name")
@pass_runtime
def stores_remove(rt: Runtime, force: bool, filespace_url: str, name: str) -> None:
    """Remove data store NAME (refused while files are linked to it, unless --force).

    \b
    Example:
      lucidlink connect stores remove --force lucidlink://acme/media footage
    """
    _connect(rt, filespace_url).remove_data_store(name, force=force)
    rt.echo(f"removed data store {name}")


@connect.command("link")
@_STORE
@click.option("--object", "object_id", required=True, help="The S3 object key.")
@click.option(
    "--size", type=click.IntRange(0), default=None, help="Trust this size (needs --checksum)."
)
@click.option("--checksum", default="", help="The object's ETag, trusted with --size.")
@click.argument("url")
@pass_runtime
def link(
    rt: Runtime, store: str, object_id: str, size: int | None, checksum: str, url: str
) -> None:
    """Link an S3 object as the read-only file URL (missing parents are created).

    \b
    Example:
      lucidlink connect link lucidlink://acme/media/raw/a.mov --store footage --object 2024/a.mov
    """
    target = rt.url(url)
    entry = _connect(rt, url).link_file(target.path, store, object_id, size, checksum)
    rt.echo(f"linked {target} ({entry.size} bytes)")


@connect.command("unlink")
@click.argument("url")
@pass_runtime
def unlink(rt: Runtime, url: str) -> None:
    """Remove the linked file URL (the S3 object is not touched).

    \b
    Example:
      lucidlink connect unlink lucidlink://acme/media/raw/a.mov
    """
    _connect(rt, url).unlink_file(rt.url(url).path)


@connect.command("list")
@_STORE
@click.option(
    "--limit", type=click.IntRange(1, 5000), default=100, show_default=True, help="Files per page."
)
@click.option("--cursor", default="", help="Continue from the cursor a previous page printed.")
@click.option("--all", "every", is_flag=True, help="Follow the pages to the end.")
@_JSON
@_FILESPACE
@pass_runtime
def list_files(
    rt: Runtime, store: str, limit: int, cursor: str, every: bool, as_json: bool, filespace_url: str
) -> None:
    """List the files linked to a data store, a page at a time (in link order).

    Without --all, the cursor of the next page is printed last (on stderr, as "next: ...").

    \b
    Examples:
      lucidlink connect list lucidlink://acme/media --store footage --limit 500
      lucidlink connect list lucidlink://acme/media --store footage --all --json
    """
    api = _connect(rt, filespace_url)
    rows: list[dict[str, object]] = []
    next_cursor: str | None = cursor
    while True:
        page = api.list_external_files(store, limit, next_cursor)
        objects = page.object_ids or [""] * len(page.file_paths)
        rows += [
            {"path": p, "id": i, "object": o}
            for p, i, o in zip(page.file_paths, page.file_ids, objects, strict=False)
        ]
        next_cursor = page.cursor if page.has_more else None
        if not every or next_cursor is None:
            break
    if as_json:
        click.echo(json.dumps({"files": rows, "next_cursor": next_cursor}, indent=2))
        return
    for r in rows:
        click.echo(f"{r['path']}\t{r['object']}")
    if next_cursor is not None:
        click.echo(f"next: {next_cursor}", err=True)


@connect.command("count")
@_STORE
@_FILESPACE
@pass_runtime
def count(rt: Runtime, store: str, filespace_url: str) -> None:
    """Print how many files are linked to a data store.

    \b
    Example:
      lucidlink connect count lucidlink://acme/media --store footage
    """
    click.echo(str(_connect(rt, filespace_url).count_external_files(store)))
