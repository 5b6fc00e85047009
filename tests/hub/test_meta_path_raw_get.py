"""The SDK's hub GETs on its small HTTP client (aio/rawget): paths with every character a
query must escape reach the hub as they were given, errors keep their meaning, and a
burst of concurrent stats opens no more connections than the transport allows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import lucidlink.aio
from lucidlink.exceptions import PathNotFoundError
from tests.support.sdkfixtures import SdkHub

ODD_NAMES = ["a&b=c", "plus+sign", "per%25cent", "hash#tag", "q?mark", "sp ace", "é ü 中",
             "semi;colon", "quote'\"", "tab\tname"]


@pytest.mark.asyncio
async def test_odd_names_round_trip_through_get_entry(afilespace: Any) -> None:
    fs = afilespace.fs
    await fs.create_dir("/odd")
    for name in ODD_NAMES:
        await fs.write_file(f"/odd/{name}", name.encode())
    await afilespace.sync_all()
    async with lucidlink.aio.create_daemon(hub_url=afilespace._link.transport.hub_url) as daemon:
        ws = await daemon.authenticate(
            lucidlink.aio.ServiceAccountCredentials(token=afilespace._link.transport._token))
        async with ws.link_filespace(name="small") as fresh:  # nothing cached
            for name in ODD_NAMES:
                entry = await fresh.fs.get_entry(f"/odd/{name}")
                assert entry.name == name and entry.size == len(name.encode())
            names = sorted(e.name for e in await fresh.fs.read_dir("/odd"))
            assert names == sorted(ODD_NAMES)
            with pytest.raises(PathNotFoundError):
                await fresh.fs.get_entry("/odd/missing&x=1")


@pytest.mark.asyncio
async def test_concurrent_gets_stay_within_the_connection_limit(sdk_hub: SdkHub) -> None:
    from lucidlink.aio.transport import Transport

    transport = Transport(sdk_hub.url, sdk_hub.token, connections=4)
    opened = 0
    real = asyncio.get_running_loop().create_connection
    loop = asyncio.get_running_loop()

    async def counting(*args: Any, **kw: Any) -> Any:
        nonlocal opened
        opened += 1
        return await real(*args, **kw)

    loop.create_connection = counting  # type: ignore[method-assign]
    try:
        answers = await asyncio.gather(*(transport.call("GET", "/v1/whoami") for _ in range(50)))
    finally:
        del loop.create_connection
        await transport.close()
    assert all(a == answers[0] for a in answers)
    assert 1 <= opened <= 4


@pytest.mark.parametrize(("raw", "want"), [
    ("path=/a/b&limit=5", {"path": "/a/b", "limit": "5"}),
    ("path=/a%20b/%C3%A9", {"path": "/a b/é"}),
    ("path=/a+b", {"path": "/a b"}),
    ("path=/a%2Bb&cursor=x", {"path": "/a+b", "cursor": "x"}),
    ("&path=/&", {"path": "/"}),
    ("flag", {"flag": ""}),
])
def test_query_plain_and_escaped_pairs_decode_alike(raw: str, want: dict[str, str]) -> None:
    from aiohttp.test_utils import make_mocked_request

    from lucidlink.hub.api.http import query

    assert query(make_mocked_request("GET", f"/x?{raw}")) == want


@pytest.mark.parametrize("raw", ["path=/a&path=/b", "path=/a&pat%68=/b"])
def test_query_refuses_a_parameter_given_twice(raw: str) -> None:
    from aiohttp.test_utils import make_mocked_request

    from lucidlink.exceptions import BadRequestError
    from lucidlink.hub.api.http import query

    with pytest.raises(BadRequestError):
        query(make_mocked_request("GET", f"/x?{raw}"))




@pytest.mark.asyncio
async def test_a_redirected_get_is_followed_as_before(sdk_hub: SdkHub) -> None:
    """A redirect goes to aiohttp, which follows it (to another origin without the token,
    so the hub refuses it): the hub's own answer, not a 3xx taken for JSON."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from lucidlink.aio.transport import Transport
    from lucidlink.exceptions import AuthenticationError

    async def moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(sdk_hub.url + request.path_qs)

    app = web.Application()
    app.router.add_get("/{tail:.*}", moved)
    async with TestServer(app) as proxy:
        redirected = Transport(str(proxy.make_url("")), sdk_hub.token)
        try:
            with pytest.raises(AuthenticationError):
                await redirected.call("GET", "/v1/whoami")
        finally:
            await redirected.close()
