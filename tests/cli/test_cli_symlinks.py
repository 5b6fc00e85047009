"""``lucidlink cp -r`` and ``sync`` around a filespace's symbolic links: skipped, with a warning."""

from __future__ import annotations

from pathlib import Path

import lucidlink
from tests.cli.conftest import CliHub, listing


def test_cp_r_and_sync_skip_links_with_a_warning(
    cli_hub: CliHub, sdk: dict[str, lucidlink.Filespace], tmp_path: Path
) -> None:
    fs = sdk["media"].fs
    fs.create_dir("/lk/sub")
    fs.write_file("/lk/sub/y.txt", b"yy")
    fs.create_symlink("sub/y.txt", "/lk/to-file")
    fs.create_symlink("sub", "/lk/to-dir")
    fs.create_symlink("/lk", "/lk/sub/loop")  # followed, this would never end
    sdk["media"].sync_all()  # the command runs another daemon
    down = cli_hub.run("cp", "-r", cli_hub.url_of("lk"), str(tmp_path / "down"))
    assert down.code == 0, down.err
    assert sorted(
        p.relative_to(tmp_path / "down").as_posix() for p in (tmp_path / "down").rglob("*")
    ) == ["sub", "sub/y.txt"]
    for name in ("lk/to-file", "lk/to-dir", "lk/sub/loop"):
        assert f"warning: skipped {cli_hub.url_of(name)}: a symbolic link" in down.err, down.err
    across = cli_hub.run("cp", "-r", cli_hub.url_of("lk"), cli_hub.url_of("lk", "archive"))
    assert across.code == 0 and "symbolic link" in across.err
    assert listing(sdk["archive"], "/lk") == {"sub/": 0, "sub/y.txt": 2}
    synced = cli_hub.run("sync", cli_hub.url_of("lk"), str(tmp_path / "synced"))
    assert synced.code == 0 and "warning: skipped" in synced.err
    assert (tmp_path / "synced/sub/y.txt").read_bytes() == b"yy"
    # Naming a link copies what it points to; ls -R lists links.
    one = cli_hub.run("cp", cli_hub.url_of("lk/to-file"), str(tmp_path / "followed.txt"))
    assert one.code == 0 and (tmp_path / "followed.txt").read_bytes() == b"yy"
    ls = cli_hub.run("ls", "-R", cli_hub.url_of("lk"))
    assert ls.code == 0 and "to-dir" in ls.out and "warning" not in ls.err
    # ls -l and --json say what a link is.
    long = cli_hub.run("ls", "-l", cli_hub.url_of("lk"))
    kinds = {line.split()[-1]: line.split()[0] for line in long.out.splitlines() if line.strip()}
    assert kinds["to-file"] == "link" and kinds["to-dir"] == "link" and kinds["sub/"] == "dir"
