"""``lucidlink`` file commands in a subprocess against a real hub: each command, bad input,
credentials, and the ``hub`` commands still reached through the same entry point."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import click

import lucidlink
from lucidlink.commands.app import cli
from tests.cli.conftest import CliHub, listing, one_line_error


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_every_command_has_help_with_an_example() -> None:
    def commands(group: click.Group) -> Iterator[click.Command]:
        for command in group.commands.values():
            yield command
            if isinstance(command, click.Group):
                yield from commands(command)

    for command in commands(cli):
        if command.name != "hub":  # the hub's argparse tree has its own help
            assert "Example" in (command.help or ""), command.name


def test_help_usage_errors_and_the_hub_tree(cli_hub: CliHub, tmp_path: Path) -> None:
    completing = cli_hub.env(
        _LUCIDLINK_COMPLETE="bash_complete", COMP_WORDS="lucidlink sy", COMP_CWORD="1"
    )
    runs = cli_hub.run_all(
        ("--help",),
        ("cp", "--help"),
        ("ls",),
        ("cp", "a", "b"),
        ("ls", str(tmp_path)),
        ("cat", "lucidlink://demo"),
        ("hub", "token", "--help"),
        ("completion", "bash"),
        ((), completing),
        ("ls", "lucidlink://demo/media", cli_hub.token),
    )
    top, cp_help, missing, both_local, local_ls, no_fs, hub_help, completion, completed, extra = (
        runs
    )
    assert extra.code == 2 and cli_hub.token not in extra.err and "***" in one_line_error(extra)
    assert completed.code == 0 and completed.out.split() == ["plain,sync"], completed
    assert top.code == 0 and "Examples:" in top.out and "Exit codes" in top.out
    assert cli_hub.token not in top.out
    assert cp_help.code == 0 and "lucidlink cp -r" in cp_help.out
    assert missing.code == 2 and "Missing argument 'URL'" in one_line_error(missing)
    assert both_local.code == 2 and "both local paths" in one_line_error(both_local)
    assert local_ls.code == 2 and "is a local path" in one_line_error(local_ls)
    assert no_fs.code == 2 and "names no filespace" in one_line_error(no_fs)
    assert hub_help.code == 0 and "create" in hub_help.out
    assert completion.code == 0 and "_LUCIDLINK_COMPLETE" in completion.out


def test_cp_ls_stat_cat_du_tree(
    cli_hub: CliHub, sdk: dict[str, lucidlink.Filespace], tmp_path: Path
) -> None:
    src = _tree(
        tmp_path / "photos", {"a.jpg": b"A" * 1000, "raw/b.raw": b"B" * 3000, "raw/c.raw": b"C"}
    )
    sdk["media"].fs.create_dir("/t1")
    up = cli_hub.run("cp", "-r", str(src), cli_hub.url_of("t1") + "/")
    assert up.code == 0 and up.err == "", up.err
    assert listing(sdk["media"], "/t1") == {
        "photos/": 0,
        "photos/a.jpg": 1000,
        "photos/raw/": 0,
        "photos/raw/b.raw": 3000,
        "photos/raw/c.raw": 1,
    }
    u = cli_hub.url_of
    runs = cli_hub.run_all(
        ("ls", "lucidlink://"),
        ("ls", "-R", "--json", u("t1")),
        ("ls", u("t1/photos")),
        ("ls", "-l", u("t1/photos/raw")),
        ("ls", "lucidlink://demo"),
        ("stat", "--json", u("t1/photos/a.jpg")),
        ("cat", u("t1/photos/raw/c.raw"), u("t1/photos/a.jpg")),
        ("du", "--json", u("t1")),
        ("tree", u("t1/photos")),
        ("stat", u("t1/nope")),
        ("cat", u("t1/photos")),
    )
    workspace, recursive, ls, long, filespaces, info, cat, du, tree, gone, dir_cat = runs
    assert workspace.out == "demo/\n"
    assert [(e["path"], e["type"], e["size"]) for e in json.loads(recursive.out)][-2:] == [
        ("photos/raw/b.raw", "file", 3000),
        ("photos/raw/c.raw", "file", 1),
    ]
    assert ls.out.splitlines() == ["a.jpg", "raw/"]
    assert [line.split()[:2] for line in long.out.splitlines()] == [["file", "3000"], ["file", "1"]]
    assert filespaces.out.splitlines() == ["archive/", "media/"]
    assert json.loads(info.out)["type"] == "file" and json.loads(info.out)["size"] == 1000
    assert cat.code == 0 and cat.out == "C" + "A" * 1000
    assert json.loads(du.out) == [{"url": u("t1"), "size": 4001, "files": 3, "dirs": 2}]
    assert "├── a.jpg" in tree.out and "└── raw/" in tree.out
    assert tree.out.rstrip().endswith("1 directories, 3 files")
    assert gone.code == 1 and "t1/nope: no such file or directory" in one_line_error(gone)
    assert dir_cat.code == 1 and "is a directory" in one_line_error(dir_cat)


def test_cp_follows_cp(
    cli_hub: CliHub, sdk: dict[str, lucidlink.Filespace], tmp_path: Path
) -> None:
    src = _tree(tmp_path / "src", {"x.txt": b"x", "sub/y.txt": b"yy"})
    # DST missing: it becomes the copy; DST an existing directory: the copy goes inside.
    assert cli_hub.run("cp", "-r", str(src), cli_hub.url_of("t2/new")).code == 1  # no parent t2
    sdk["media"].fs.create_dir("/t2/existing")
    assert cli_hub.run("cp", "-r", str(src), cli_hub.url_of("t2/new")).code == 0
    assert cli_hub.run("cp", "-r", str(src), cli_hub.url_of("t2/existing")).code == 0
    assert listing(sdk["media"], "/t2") == {
        "existing/": 0,
        "existing/src/": 0,
        "existing/src/sub/": 0,
        "existing/src/sub/y.txt": 2,
        "existing/src/x.txt": 1,
        "new/": 0,
        "new/sub/": 0,
        "new/sub/y.txt": 2,
        "new/x.txt": 1,
    }
    no_r = cli_hub.run("cp", str(src), cli_hub.url_of("t2"))
    assert no_r.code == 1 and "pass -r" in one_line_error(no_r)
    missing = cli_hub.run("cp", str(tmp_path / "nope"), cli_hub.url_of("t2"))
    assert missing.code == 1 and "nope: no such file or directory" in one_line_error(missing)
    # Filespace to filespace (streamed), inside one filespace (no bytes moved), then back here.
    assert (
        cli_hub.run("cp", "-r", cli_hub.url_of("t2/new"), cli_hub.url_of("t2", "archive")).code == 0
    )
    assert (
        cli_hub.run("cp", cli_hub.url_of("t2/new/x.txt"), cli_hub.url_of("t2/x-copy.txt")).code == 0
    )
    assert listing(sdk["archive"], "/t2") == {"sub/": 0, "sub/y.txt": 2, "x.txt": 1}
    down = cli_hub.run("cp", "-r", cli_hub.url_of("t2/new"), str(tmp_path / "back"))
    assert down.code == 0, down.err
    assert (tmp_path / "back/sub/y.txt").read_bytes() == b"yy"
    assert (tmp_path / "back/x.txt").read_bytes() == b"x"
    one = cli_hub.run("cp", cli_hub.url_of("t2/x-copy.txt"), str(tmp_path))
    assert one.code == 0 and (tmp_path / "x-copy.txt").read_bytes() == b"x"


def test_mkdir_mv_rm(cli_hub: CliHub, sdk: dict[str, lucidlink.Filespace], tmp_path: Path) -> None:
    u = cli_hub.url_of
    no_parent = cli_hub.run("mkdir", u("t3/a/b"))
    assert no_parent.code == 1 and "pass -p" in one_line_error(no_parent)
    assert cli_hub.run("mkdir", "-p", u("t3/a/b"), u("t3/c")).code == 0
    sdk["media"].fs.write_file("/t3/f.txt", b"hello")
    sdk["media"].sync_all()
    assert cli_hub.run("mv", u("t3/f.txt"), u("t3/g.txt")).code == 0
    assert cli_hub.run("mv", u("t3/g.txt"), u("t3/a")).code == 0
    assert cli_hub.run("mv", u("t3/c"), u("t3/a/b/c2")).code == 0
    # Across sides and filespaces: a copy, then the source is deleted.
    local = _tree(tmp_path / "up", {"x": b"xx", "y/z": b"zzz"})
    assert cli_hub.run("mv", str(local), u("t3/a/")).code == 0
    assert not local.exists()
    assert cli_hub.run("mv", u("t3/a/up/y"), u("", "archive") + "/").code == 0
    assert listing(sdk["media"], "/t3") == {
        "a/": 0,
        "a/b/": 0,
        "a/b/c2/": 0,
        "a/g.txt": 5,
        "a/up/": 0,
        "a/up/x": 2,
    }
    assert sdk["archive"].fs.read_file("/y/z") == b"zzz"
    rm_dir, rm_root, rm_missing, mkdir_again = cli_hub.run_all(
        ("rm", u("t3/a")), ("rm", "-r", u("")), ("rm", u("t3/nothing")), ("mkdir", u("t3/a"))
    )
    assert mkdir_again.code == 1 and "pass -p" in one_line_error(mkdir_again)
    assert rm_dir.code == 1 and "pass -r" in one_line_error(rm_dir)
    assert rm_root.code == 1 and "root" in one_line_error(rm_root)
    assert rm_missing.code == 1 and "t3/nothing: no such file" in one_line_error(rm_missing)
    assert cli_hub.run("rm", u("t3/a/g.txt")).code == 0
    assert cli_hub.run("rm", "-r", u("t3/a")).code == 0
    assert listing(sdk["media"], "/t3") == {}


def test_sync_copies_only_what_differs(
    cli_hub: CliHub, sdk: dict[str, lucidlink.Filespace], tmp_path: Path
) -> None:
    src = _tree(tmp_path / "s", {"a": b"1" * 10, "d/b": b"2" * 20, "d/c": b"3" * 30})
    dst = cli_hub.url_of("t4/mirror")
    sdk["media"].fs.create_dir("/t4")
    first = cli_hub.run("sync", str(src), dst)
    assert first.code == 0 and first.out.strip() == "3 copied, 0 deleted, 0 unchanged"
    assert cli_hub.run("sync", str(src), dst).out.strip() == "0 copied, 0 deleted, 3 unchanged"
    (src / "a").write_bytes(b"1" * 11)  # size differs
    # Same size, older time: unchanged by size and time, changed by contents.
    (src / "d/b").write_bytes(b"X" * 20)
    os.utime(src / "d/b", ns=(10**18, 10**18))
    assert cli_hub.run("sync", str(src), dst).out.strip() == "1 copied, 0 deleted, 2 unchanged"
    assert (
        cli_hub.run("sync", "--checksum", str(src), dst).out.strip()
        == "1 copied, 0 deleted, 2 unchanged"
    )
    assert cli_hub.run("cat", dst + "/d/b").out == "X" * 20
    (src / "d/c").unlink()
    dry = cli_hub.run("sync", "--delete", "--dry-run", str(src), dst)
    assert dry.code == 0 and dry.out.strip() == f"would delete {dst}/d/c"
    assert "d/c" in listing(sdk["media"], "/t4/mirror")
    real = cli_hub.run("sync", "--delete", str(src), dst)
    assert real.out.strip() == "0 copied, 1 deleted, 2 unchanged"
    # Back down: times are kept locally, so a second sync copies nothing.
    down = tmp_path / "down"
    assert cli_hub.run("sync", dst, str(down)).out.strip() == "2 copied, 0 deleted, 0 unchanged"
    assert (down / "a").read_bytes() == b"1" * 11
    assert cli_hub.run("sync", dst, str(down)).out.strip() == "0 copied, 0 deleted, 2 unchanged"
    not_dir = cli_hub.run("sync", str(src / "a"), dst)
    assert not_dir.code == 1 and "sync takes directories" in one_line_error(not_dir)


def test_locks(cli_hub: CliHub, sdk: dict[str, lucidlink.Filespace]) -> None:
    assert cli_hub.run("locks", cli_hub.url_of("")).out.strip() == "no locks"
    with sdk["media"].fs.open("/locked.bin", "wb", lock_type="exclusive"):
        held = cli_hub.run("locks", "--json", cli_hub.url_of(""))
        assert held.code == 0, held.err
        rows = json.loads(held.out)
        assert [(r["path"], r["mode"], r["state"]) for r in rows] == [
            ("/locked.bin", "exclusive", "held")
        ]
        text = cli_hub.run("locks", cli_hub.url_of("locked.bin")).out
        assert "exclusive" in text and "/locked.bin" in text


def test_credentials(cli_hub: CliHub, tmp_path: Path) -> None:
    url = cli_hub.url_of("")
    bad = "sa_live:abcdefgh12345678:NOTTHESECRETxxxxxxxxxxxxxxxx"
    env = cli_hub.env
    refused, malformed, none, sa, other_ws, down, read_only = cli_hub.run_all(
        ("--token", bad, "ls", url),
        (("ls", url), env(LUCIDLINK_TOKEN="sa_live:oops-SECRETISH")),
        (("ls", url), env(LUCIDLINK_TOKEN="")),
        (("ls", url), env(LUCIDLINK_TOKEN="", LUCIDLINK_SA_TOKEN=cli_hub.token)),
        ("ls", "lucidlink://elsewhere/media"),
        ("--hub-url", "http://127.0.0.1:9", "ls", url),
        (("mkdir", cli_hub.url_of("ro")), env(LUCIDLINK_TOKEN=cli_hub.read_only_token)),
    )
    assert refused.code == 1 and "token" in one_line_error(refused)
    assert "NOTTHESECRET" not in refused.out + refused.err
    assert malformed.code == 1 and "SECRETISH" not in one_line_error(malformed)
    assert none.code == 1 and "lucidlink login" in one_line_error(none)
    assert sa.code == 0, sa.err
    assert other_ws.code == 1 and "belongs to workspace 'demo'" in one_line_error(other_ws)
    assert down.code == 1 and cli_hub.token not in down.err and cli_hub.token not in down.out
    one_line_error(down)
    assert read_only.code == 1
    one_line_error(read_only)
    # login writes a 0600 profile under $XDG_CONFIG_HOME that later runs use.
    home = tmp_path / "xdg"
    no_env = env(XDG_CONFIG_HOME=str(home), LUCIDLINK_HUB_URL="", LUCIDLINK_TOKEN="")
    login = cli_hub.run(
        "--hub-url",
        cli_hub.url,
        "--profile",
        "work",
        "login",
        env={**no_env, "LUCIDLINK_TOKEN": cli_hub.token},
    )
    assert login.code == 0 and "workspace demo" in login.out, login.err
    assert cli_hub.token not in login.out + login.err
    config = home / "lucidlink" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    named, from_env, unknown = cli_hub.run_all(
        (("--profile", "work", "ls", url), no_env),
        (("ls", url), {**no_env, "LUCIDLINK_PROFILE": "work"}),
        (("--profile", "nope", "ls", url), no_env),
    )
    assert named.code == 0 and from_env.code == 0, named.err + from_env.err
    assert unknown.code == 1 and "lucidlink login --profile nope" in one_line_error(unknown)
