"""Commands that read the namespace: ``ls``, ``stat``, ``du``, ``tree`` and ``locks``."""

from __future__ import annotations

import datetime
import json
from typing import Any

import click

from lucidlink.commands.errors import CommandError
from lucidlink.commands.runtime import Runtime, pass_runtime
from lucidlink.commands.stores import Entry, RemotePlace, walk
from lucidlink.commands.urls import SCHEME, is_remote

_JSON = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (one document) instead of text."
)


def _when(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _kind(e: Entry) -> str:
    return "dir" if e.is_dir else "link" if e.is_link else "file"


def _record(path: str, e: Entry) -> dict[str, Any]:
    return {
        "path": path,
        "name": e.name,
        "type": _kind(e),
        "size": e.size,
        "mtime": _when(e.mtime_ns) + "Z",
        "mtime_ns": e.mtime_ns,
    }


def _need(place: RemotePlace) -> Entry:
    entry = place.stat()
    if entry is None:
        raise CommandError(
            f"{place}: no such file or directory; check the path "
            f"(list its parent with 'lucidlink ls {place.url.parent()}')"
        )
    return entry


def _filespaces(rt: Runtime, url_arg: str, long: bool, as_json: bool) -> None:
    url = rt.url(url_arg, need_filespace=False)
    workspace = rt.session().check_workspace(url)
    infos = sorted(workspace.list_filespaces(), key=lambda f: f.name)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": f.name,
                        "id": f.id,
                        "block_size": f.block_size,
                        "created_ns": f.created,
                    }
                    for f in infos
                ],
                indent=2,
            )
        )
        return
    for f in infos:
        click.echo(f"fs  {_when(f.created)}  {f.name}/" if long else f"{f.name}/")


@click.command()
@click.option("-l", "long", is_flag=True, help="Type, size and modification time too.")
@click.option("-R", "--recursive", is_flag=True, help="List subdirectories, recursively.")
@_JSON
@click.argument("url")
@pass_runtime
def ls(rt: Runtime, long: bool, recursive: bool, as_json: bool, url: str) -> None:
    """List a filespace directory, or a workspace's filespaces.

    lucidlink://WORKSPACE lists its filespaces; lucidlink:// the token's workspace.

    \b
    Examples:
      lucidlink ls lucidlink://acme
      lucidlink ls -l lucidlink://acme/media/2024
      lucidlink ls -R --json lucidlink://acme/media | jq '.[].path'
    """
    depth = len([p for p in url[len(SCHEME) :].split("/") if p]) if is_remote(url) else -1
    if depth == 0:
        name = rt.session().workspace().name
        click.echo(json.dumps([{"name": name}]) if as_json else f"{name}/")
        return None
    if depth == 1:
        return _filespaces(rt, url, long, as_json)
    place = rt.remote(url)
    entry = _need(place)
    if not entry.is_dir:
        rows = {entry.name: entry}
    elif recursive:
        rows = walk(place, hide_parts=False)
    else:
        rows = {e.name: e for e in place.children()}
    if as_json:
        click.echo(json.dumps([_record(rel, e) for rel, e in rows.items()], indent=2))
        return
    for rel, e in rows.items():
        name = rel + ("/" if e.is_dir else "")
        click.echo(
            f"{_kind(e):<4} {e.size:>14}  {_when(e.mtime_ns)}  {name}"
            if long
            else name
        )


@click.command()
@_JSON
@click.argument("url")
@pass_runtime
def stat(rt: Runtime, as_json: bool, url: str) -> None:
    """Show what a filespace path is: type, size, times, id.

    \b
    Example:
      lucidlink stat lucidlink://acme/media/a.mov
    """
    place = rt.remote(url)
    _need(place)
    e = place.fs.get_entry(place.url.path)
    info = {
        "url": str(place),
        "type": e.type,
        "size": e.size,
        "mtime": _when(e.mtime) + "Z",
        "ctime": _when(e.ctime) + "Z",
        "mtime_ns": e.mtime,
        "ctime_ns": e.ctime,
        "id": e.file_id,
    }
    if e.file_id_external:
        info["external_id"] = e.file_id_external
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key + ':':<12} {value}")


@click.command()
@click.option("-h", "--human-readable", "human", is_flag=True, help="Sizes in KiB, MiB, GiB.")
@_JSON
@click.argument("urls", nargs=-1, required=True)
@pass_runtime
def du(rt: Runtime, human: bool, as_json: bool, urls: tuple[str, ...]) -> None:
    """Total size and file count under filespace paths.

    \b
    Example:
      lucidlink du -h lucidlink://acme/media/2024
    """
    results: list[dict[str, Any]] = []
    for url in urls:
        place = rt.remote(url)
        entry = _need(place)
        tree = walk(place) if entry.is_dir else {entry.name: entry}
        files = [e for e in tree.values() if not e.is_dir]
        results.append(
            {
                "url": str(place),
                "size": sum(e.size for e in files),
                "files": len(files),
                "dirs": len(tree) - len(files),
            }
        )
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for r in results:
        size = _human(r["size"]) if human else str(r["size"])
        click.echo(f"{size}\t{r['files']} files\t{r['url']}")


@click.command()
@click.option(
    "-L", "--level", type=click.IntRange(1), default=None, help="Descend at most this deep."
)
@click.argument("url")
@pass_runtime
def tree(rt: Runtime, level: int | None, url: str) -> None:
    """Draw a filespace directory as a tree.

    \b
    Example:
      lucidlink tree -L 2 lucidlink://acme/media
    """
    place = rt.remote(url)
    if not _need(place).is_dir:
        raise CommandError(f"{place} is a file; tree takes a directory")
    click.echo(str(place))
    counts = [0, 0]

    def draw(at: RemotePlace, prefix: str, depth: int) -> None:
        children = at.children()
        for i, e in enumerate(children):
            last = i == len(children) - 1
            click.echo(f"{prefix}{'└── ' if last else '├── '}{e.name}{'/' if e.is_dir else ''}")
            counts[0 if e.is_dir else 1] += 1
            if e.is_dir and (level is None or depth < level):
                draw(at.child(e.name), prefix + ("    " if last else "│   "), depth + 1)

    draw(place, "", 1)
    click.echo(f"\n{counts[0]} directories, {counts[1]} files")


@click.command()
@_JSON
@click.argument("url")
@pass_runtime
def locks(rt: Runtime, as_json: bool, url: str) -> None:
    """Show who holds or waits for locks.

    On a filespace root: every lock in the filespace; else the locks on that path.

    \b
    Examples:
      lucidlink locks lucidlink://acme/media
      lucidlink locks --json lucidlink://acme/media/edit.prproj
    """
    place = rt.remote(url)
    found = place.fs.get_locks(None if place.url.path == "/" else place.url.path)
    rows = [
        {
            "path": lk.path,
            "mode": lk.mode,
            "state": lk.state,
            "client": lk.client,
            "since": lk.since,
            "expires": lk.expires,
        }
        for lk in found
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no locks")
    for r in rows:
        click.echo(f"{r['mode']:<9} {r['state']:<7} {r['client'] or '-':<20} {r['path']}")
