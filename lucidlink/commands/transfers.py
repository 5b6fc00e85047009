"""Commands that change files: ``cp``, ``mv``, ``rm``, ``mkdir``, ``cat`` and ``sync``."""

from __future__ import annotations

import concurrent.futures
import os
import sys
from collections.abc import Callable

import click

from lucidlink.commands.engine import DEFAULT_JOBS, Job, run_jobs
from lucidlink.commands.errors import CommandError, Interrupted, UsageProblem
from lucidlink.commands.runtime import Runtime, pass_runtime
from lucidlink.commands.stores import (
    Entry,
    Place,
    RemotePlace,
    resolve_rel,
    same_filespace,
    sha256,
    walk,
)
from lucidlink.commands.urls import is_remote

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class Rate(click.ParamType):  # type: ignore[type-arg]  # not subscriptable in click 8.1
    """A rate in bytes per second: ``500K``, ``20M``, ``1G`` (binary units) or a plain number."""

    name = "RATE"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        """The rate in bytes per second."""
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in _UNITS else ""
        try:
            number = float(text[: len(text) - len(unit)])
        except ValueError:
            self.fail(f"{value!r} is not a rate; write e.g. 500K, 20M or 1G (bytes per second)")
        return max(0, int(number * _UNITS[unit]))


def _transfer_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option(
        "--bwlimit",
        type=Rate(),
        default=0,
        help="Limit the total rate, in bytes/s (e.g. 20M); default: none.",
    )(fn)
    return click.option(
        "-j",
        "--jobs",
        type=click.IntRange(1, 64),
        default=DEFAULT_JOBS,
        show_default=True,
        help="Files transferred at once.",
    )(fn)


def _check_sides(src: str, dst: str) -> None:
    if not is_remote(src) and not is_remote(dst):
        raise UsageProblem(
            f"{src!r} and {dst!r} are both local paths; one must be "
            "lucidlink://WORKSPACE/FILESPACE/PATH"
        )


def _into_dir(dst: Place, dst_arg: str) -> bool:
    entry = dst.stat()
    return (entry is not None and entry.is_dir) or dst_arg.endswith(("/", os.sep))


def _require(place: Place) -> Entry:
    entry = place.stat()
    if entry is None:
        raise CommandError(
            f"{place}: no such file or directory; check the path (list it with 'lucidlink ls')"
        )
    return entry


def _require_parent(place: Place) -> None:
    parent = place.parent().stat()
    if parent is None or not parent.is_dir:
        raise CommandError(
            f"{place.parent()}: no such directory; create it first "
            "('lucidlink mkdir -p' or 'mkdir -p')"
        )


def plan_copy(
    src: Place, dst: Place, dst_arg: str, recursive: bool
) -> tuple[list[Place], list[Job]]:
    """The directories to create and files to copy for ``cp [-r] SRC DST``, as cp does it."""
    entry = _require(src)
    if _into_dir(dst, dst_arg):
        dst = dst.child(src.name)
    target = dst.stat()
    if not entry.is_dir:
        if target is not None and target.is_dir:
            raise CommandError(f"{dst} is a directory; cannot overwrite it with file {src}")
        _require_parent(dst)
        return [], [Job(src, dst, entry.size, entry.mtime_ns)]
    if not recursive:
        raise CommandError(f"{src} is a directory; pass -r to copy it and everything in it")
    if target is not None and not target.is_dir:
        raise CommandError(f"{dst} is a file; cannot copy directory {src} onto it")
    if target is None:
        _require_parent(dst)
    tree = walk(src, links="warn")
    dirs = [dst] + [resolve_rel(dst, rel) for rel, e in tree.items() if e.is_dir]
    jobs = [
        Job(resolve_rel(src, rel), resolve_rel(dst, rel), e.size, e.mtime_ns)
        for rel, e in tree.items()
        if not e.is_dir
    ]
    return dirs, jobs


@click.command()
@click.option("-r", "-R", "--recursive", is_flag=True, help="Copy directories and what they hold.")
@_transfer_options
@click.argument("sources", nargs=-1, required=True)
@click.argument("destination")
@pass_runtime
def cp(
    rt: Runtime,
    recursive: bool,
    jobs: int,
    bwlimit: int,
    sources: tuple[str, ...],
    destination: str,
) -> None:
    """Copy files to, from or between filespaces.

    When DESTINATION is an existing directory (or ends in /), SOURCE is copied into it;
    otherwise DESTINATION becomes the copy. A copy inside one filespace moves no bytes.

    \b
    Examples:
      lucidlink cp report.pdf lucidlink://acme/media/docs/
      lucidlink cp -r lucidlink://acme/media/raw ./raw-copy
      lucidlink cp lucidlink://acme/media/a.mov lucidlink://acme/archive/a.mov
    """
    for src in sources:
        _check_sides(src, destination)
    dst = rt.place(destination)
    if len(sources) > 1 and not _into_dir(dst, destination):
        raise CommandError(f"{destination} is not a directory; copying several sources needs one")
    all_dirs: list[Place] = []
    all_jobs: list[Job] = []
    for src in sources:
        dirs, work = plan_copy(rt.place(src), dst, destination, recursive)
        all_dirs += dirs
        all_jobs += work
    for d in all_dirs:
        d.mkdir(parents=True)
    run_jobs(all_jobs, rt.options(jobs, bwlimit))


@click.command()
@_transfer_options
@click.argument("source")
@click.argument("destination")
@pass_runtime
def mv(rt: Runtime, jobs: int, bwlimit: int, source: str, destination: str) -> None:
    """Move or rename a file or directory.

    Inside one filespace this is one rename; otherwise a copy, then the source is deleted.

    \b
    Examples:
      lucidlink mv lucidlink://acme/media/a.txt lucidlink://acme/media/b.txt
      lucidlink mv ./upload.bin lucidlink://acme/media/incoming/
    """
    _check_sides(source, destination)
    src, dst = rt.place(source), rt.place(destination)
    entry = _require(src)
    if _into_dir(dst, destination):
        dst = dst.child(src.name)
    if same_filespace(src, dst):
        assert isinstance(src, RemotePlace) and isinstance(dst, RemotePlace)
        _require_parent(dst)
        src.fs.move(src.url.path, dst.url.path, overwrite=not entry.is_dir)
        return
    target = dst.stat()
    if entry.is_dir and target is not None:
        raise CommandError(f"{dst} already exists; remove it first, or move {src} elsewhere")
    dirs, work = plan_copy(src, dst, str(dst), recursive=True)
    for d in dirs:
        d.mkdir(parents=True)
    run_jobs(work, rt.options(jobs, bwlimit), label="moving")
    src.remove(recursive=True)


@click.command()
@click.option(
    "-r", "-R", "--recursive", is_flag=True, help="Delete directories and what they hold."
)
@click.argument("urls", nargs=-1, required=True)
@pass_runtime
def rm(rt: Runtime, recursive: bool, urls: tuple[str, ...]) -> None:
    """Delete files or directories (-r) in a filespace.

    \b
    Examples:
      lucidlink rm lucidlink://acme/media/old.mov
      lucidlink rm -r lucidlink://acme/media/scratch
    """
    places = [rt.remote(u) for u in urls]
    for place in places:
        entry = _require(place)
        if place.url.path == "/":
            raise CommandError(f"{place} is the filespace's root; remove what is inside it instead")
        if entry.is_dir and not recursive:
            raise CommandError(f"{place} is a directory; pass -r to delete it and everything in it")
        place.remove(recursive=recursive)


@click.command()
@click.option(
    "-p", "--parents", is_flag=True, help="Create missing parents; no error if it exists."
)
@click.argument("urls", nargs=-1, required=True)
@pass_runtime
def mkdir(rt: Runtime, parents: bool, urls: tuple[str, ...]) -> None:
    """Create directories in a filespace.

    \b
    Examples:
      lucidlink mkdir lucidlink://acme/media/2024
      lucidlink mkdir -p lucidlink://acme/media/2024/06/raw
    """
    for url in urls:
        rt.remote(url).mkdir(parents=parents)


@click.command()
@click.argument("urls", nargs=-1, required=True)
@pass_runtime
def cat(rt: Runtime, urls: tuple[str, ...]) -> None:
    """Write files of a filespace to stdout.

    \b
    Example:
      lucidlink cat lucidlink://acme/media/notes.txt | grep todo
    """
    out = sys.stdout.buffer
    for url in urls:
        place = rt.remote(url)
        if _require(place).is_dir:
            raise CommandError(f"{place} is a directory; list it with 'lucidlink ls'")
        with place.open_read() as f:
            while block := f.read(1 << 20):
                out.write(block)
    out.flush()


def _deletions(
    src_tree: dict[str, Entry], dst_tree: dict[str, Entry], delete: bool
) -> tuple[list[str], list[str]]:
    """What sync removes: clashes (a file where the source has a directory, or the reverse),
    always; with ``delete``, what the source lacks. Never something inside a removed directory."""
    clash = [
        rel for rel in dst_tree if rel in src_tree and dst_tree[rel].is_dir != src_tree[rel].is_dir
    ]
    gone = [rel for rel in dst_tree if rel not in src_tree] if delete else []
    picked: list[str] = []
    for rel in sorted(clash + gone):  # parents sort before their children
        if not any(rel.startswith(p + "/") for p in picked):
            picked.append(rel)
    return [r for r in picked if r in clash], [r for r in picked if r not in clash]


def _differs(src: Place, dst: Place, s: Entry, d: Entry | None, checksum: bool) -> bool:
    if d is None or d.is_dir or d.size != s.size:
        return True
    if checksum:
        return sha256(src) != sha256(dst)
    return d.mtime_ns < s.mtime_ns


@click.command()
@click.option(
    "--checksum", "-c", is_flag=True, help="Compare contents (SHA-256) instead of size and time."
)
@click.option("--delete", is_flag=True, help="Delete what DESTINATION has and SOURCE has not.")
@click.option("-n", "--dry-run", is_flag=True, help="Print what would change; change nothing.")
@_transfer_options
@click.argument("source")
@click.argument("destination")
@pass_runtime
def sync(
    rt: Runtime,
    checksum: bool,
    delete: bool,
    dry_run: bool,
    jobs: int,
    bwlimit: int,
    source: str,
    destination: str,
) -> None:
    """Copy only what differs, to make DESTINATION like SOURCE.

    SOURCE and DESTINATION are directories.

    A file is copied when it is missing, its size differs, or the destination is older
    than the source (with --checksum: when the contents differ).

    \b
    Examples:
      lucidlink sync ./renders lucidlink://acme/media/renders
      lucidlink sync --delete --dry-run lucidlink://acme/media/renders ./renders
    """
    _check_sides(source, destination)
    src, dst = rt.place(source), rt.place(destination)
    if not _require(src).is_dir:
        raise CommandError(
            f"{src} is a file; sync takes directories (use 'lucidlink cp' for a file)"
        )
    target = dst.stat()
    if target is not None and not target.is_dir:
        raise CommandError(f"{dst} is a file; sync needs a directory there")
    src_tree = walk(src, links="warn")
    dst_tree = walk(dst, links="skip") if target is not None else {}
    dirs = [
        rel
        for rel, e in src_tree.items()
        if e.is_dir and not (rel in dst_tree and dst_tree[rel].is_dir)
    ]
    files = [(rel, e) for rel, e in src_tree.items() if not e.is_dir]

    def differs(item: tuple[str, Entry]) -> bool:
        rel, e = item
        return _differs(
            resolve_rel(src, rel), resolve_rel(dst, rel), e, dst_tree.get(rel), checksum
        )

    # With --checksum each comparison reads both files: run them as parallel as the copies.
    pool = concurrent.futures.ThreadPoolExecutor(jobs, thread_name_prefix="lucidlink-compare")
    try:
        changed = list(pool.map(differs, files))
    except KeyboardInterrupt:
        raise Interrupted("interrupted while comparing files; nothing was changed") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    jobs_ = [
        Job(resolve_rel(src, rel), resolve_rel(dst, rel), e.size, e.mtime_ns)
        for (rel, e), change in zip(files, changed, strict=True)
        if change
    ]
    clash, stale = _deletions(src_tree, dst_tree, delete)
    if dry_run:
        for rel in clash + stale:
            click.echo(f"would delete {resolve_rel(dst, rel)}")
        for j in jobs_:
            click.echo(f"would copy {j.src} -> {j.dst}")
        return
    for rel in clash + stale:
        resolve_rel(dst, rel).remove(recursive=True)
    if target is None:
        dst.mkdir(parents=True)
    for rel in dirs:
        resolve_rel(dst, rel).mkdir(parents=True)
    run_jobs(jobs_, rt.options(jobs, bwlimit), label="syncing")
    rt.echo(
        f"{len(jobs_)} copied, {len(stale)} deleted, "
        f"{sum(1 for e in src_tree.values() if not e.is_dir) - len(jobs_)} unchanged"
    )
