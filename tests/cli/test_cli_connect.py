"""``lucidlink connect`` in a subprocess: data stores and linked files on a real S3 (SeaweedFS)."""

from __future__ import annotations

import asyncio
import json

from tests.cli.conftest import CliHub, one_line_error
from tests.support.seaweed import SeaweedS3


def test_data_stores_and_linked_files(cli_hub: CliHub, seaweed: SeaweedS3) -> None:
    prefix = seaweed.prefix()
    for i in range(3):
        asyncio.run(seaweed.put(f"{prefix}clip{i}.mov", b"frame" * (i + 1)))
    fsp = cli_hub.url_of("")
    secret_env = cli_hub.env(LUCIDLINK_S3_SECRET_KEY=seaweed.secret_key)
    store = [
        "--bucket",
        seaweed.bucket,
        "--endpoint",
        seaweed.endpoint,
        "--region",
        seaweed.region,
        "--access-key",
        seaweed.access_key,
    ]
    added = cli_hub.run("connect", "stores", "add", *store, fsp, "footage", env=secret_env)
    assert added.code == 0, added.err
    assert seaweed.secret_key not in added.out + added.err
    listed = cli_hub.run("connect", "stores", "list", "--json", fsp)
    assert [s["name"] for s in json.loads(listed.out)] == ["footage"]
    assert seaweed.secret_key not in listed.out
    for i in range(3):
        linked = cli_hub.run(
            "connect",
            "link",
            "--store",
            "footage",
            "--object",
            f"{prefix}clip{i}.mov",
            cli_hub.url_of(f"linked/clip{i}.mov"),
        )
        assert linked.code == 0, linked.err
    assert cli_hub.run("cat", cli_hub.url_of("linked/clip1.mov")).out == "frame" * 2
    assert cli_hub.run("connect", "count", fsp, "--store", "footage").out.strip() == "3"
    page = cli_hub.run("connect", "list", "--json", "--limit", "2", fsp, "--store", "footage")
    first = json.loads(page.out)
    assert [f["path"] for f in first["files"]] == ["/linked/clip0.mov", "/linked/clip1.mov"]
    rest = cli_hub.run(
        "connect",
        "list",
        "--limit",
        "2",
        "--cursor",
        first["next_cursor"],
        fsp,
        "--store",
        "footage",
    )
    assert rest.out.split("\t")[0] == "/linked/clip2.mov" and "next:" not in rest.err
    every = cli_hub.run("connect", "list", "--all", "--limit", "1", fsp, "--store", "footage")
    assert len(every.out.splitlines()) == 3
    assert cli_hub.run("connect", "unlink", cli_hub.url_of("linked/clip0.mov")).code == 0
    in_use = cli_hub.run("connect", "stores", "remove", fsp, "footage")
    assert in_use.code == 1
    one_line_error(in_use)
    rekey = cli_hub.run(
        "connect",
        "stores",
        "rekey",
        "--access-key",
        seaweed.access_key,
        fsp,
        "footage",
        env=secret_env,
    )
    assert rekey.code == 0, rekey.err
    removed = cli_hub.run("connect", "stores", "remove", "--force", fsp, "footage")
    assert removed.code == 0, removed.err
    missing = cli_hub.run(
        "connect", "link", "--store", "footage", "--object", "x", cli_hub.url_of("y")
    )
    assert missing.code == 1 and "footage" in one_line_error(missing)
    no_store = cli_hub.run("connect", "count", fsp)
    assert no_store.code == 2 and "--store" in one_line_error(no_store)
