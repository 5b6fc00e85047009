"""``ServiceAccountCredentials`` checks a token the way LucidLink's SDK does.

Made: refused (``ConfigurationError``, a ``ValueError``) only for an empty token, an
unknown prefix or fewer than three colon-separated parts. Everything else is the
hub's to judge at ``authenticate()`` (``AuthenticationError``); this hub issues and
accepts ``sa_live:<key-id>:<secret>`` tokens and says so for LucidLink's other ones.
"""

from __future__ import annotations

import pickle

import pytest

import lucidlink
import lucidlink.aio
from lucidlink.exceptions import AuthenticationError, ConfigurationError, LucidLinkError
from lucidlink.tokens import KNOWN_PREFIXES, check_token_shape, parse_token
from tests.support.sdkfixtures import SdkHub

SECRET = "s3cr3t-v4lu3-th4t-must-n3v3r-sh0w"


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (SECRET, "prefix"),
        (f"sa_test:abc:{SECRET}", "prefix"),
        (f"SA_LIVE:abc:{SECRET}", "prefix"),
        (f"bearer sa_live:abc:{SECRET}", "prefix"),
        ("sa_live", "malformed"),
        (f"sa_live:{SECRET}", "malformed"),
        ("lucid_sa:", "malformed"),
    ],
)
def test_refused_when_made(token: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as err:
        lucidlink.ServiceAccountCredentials(token=token)
    assert isinstance(err.value, ValueError) and isinstance(err.value, LucidLinkError)
    assert err.value.details["field"] == "token"
    assert SECRET not in str(err.value)
    # The async core's class is the same class.
    with pytest.raises(ConfigurationError):
        lucidlink.aio.ServiceAccountCredentials(token=token)


@pytest.mark.parametrize("bad", [None, 42, b"sa_live:a:b"])
def test_a_token_is_a_string(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="must be a string"):
        lucidlink.ServiceAccountCredentials(token=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", KNOWN_PREFIXES)
def test_every_known_prefix_is_made(prefix: str) -> None:
    creds = lucidlink.ServiceAccountCredentials(token=f"{prefix}:key123:{SECRET}")
    assert creds.key_id == "key123" and creds.token == f"{prefix}:key123:{SECRET}"
    assert SECRET not in repr(creds) and SECRET not in str(creds)
    assert pickle.loads(pickle.dumps(creds)) == creds


def test_well_formed_but_wrong_tokens_are_made() -> None:
    for token in ("sa_live:nope:nope", "sa_live::", "sa_live:a:b:c", "lucid_sa:x:y", "sa_live:é:ü"):
        assert lucidlink.ServiceAccountCredentials(token=token).token == token
    assert lucidlink.ServiceAccountCredentials(token="sa_live:nope:nope").key_id == "nope"


def test_shape_check_and_hub_parse_agree_on_hub_tokens(sdk_hub: SdkHub) -> None:
    # Every token this hub issues passes the SDK's check; the hub's stricter parse
    # stays the hub's (it is what refuses the well-formed wrong ones below).
    assert check_token_shape(sdk_hub.token) == sdk_hub.token
    assert parse_token(sdk_hub.token).key_id == sdk_hub.token.split(":")[1]
    for token in ("sa_live:nope:nope", "sa_dev:abcdef12:" + "x" * 40):
        check_token_shape(token)
        with pytest.raises(ValueError):
            parse_token(token)


@pytest.mark.asyncio
async def test_well_formed_but_wrong_fails_at_authenticate(sdk_hub: SdkHub) -> None:
    hub_secret = sdk_hub.token.split(":")[2]
    cases = {
        "sa_live:nope:nope": "malformed",
        "sa_live:abcdef1234:" + "y" * 43: "",  # well-shaped for this hub, unknown key
        sdk_hub.token[:-4] + "AAAA": "",  # a known key, the wrong secret
        sdk_hub.token + ":extra": "malformed",
        "sa_dev:abcdef12:" + "x" * 40: "only its own sa_live",
        "lucid_sa:abcdef12:" + "x" * 40: "only its own sa_live",
        "sa_live:é:ü": "characters",
        "sa_live:a:b\r\nX-Injected: 1": "characters",
    }
    async with lucidlink.aio.create_daemon(hub_url=sdk_hub.url) as daemon:
        for token, says in cases.items():
            creds = lucidlink.aio.ServiceAccountCredentials(token=token)
            with pytest.raises(AuthenticationError, match=says or None) as err:
                await daemon.authenticate(creds)
            assert hub_secret not in str(err.value) and "x" * 40 not in str(err.value)
        # The hub's own token still works, also with the spaces a paste leaves around it.
        for token in (sdk_hub.token, f" {sdk_hub.token}\n"):
            workspace = await daemon.authenticate(lucidlink.aio.ServiceAccountCredentials(token=token))
            assert "small" in [f.name for f in await workspace.list_filespaces()]


def test_blocking_authenticate_refuses_the_same_way(sdk_hub: SdkHub) -> None:
    with lucidlink.create_daemon(hub_url=sdk_hub.url) as daemon:
        with pytest.raises(AuthenticationError):
            daemon.authenticate(lucidlink.ServiceAccountCredentials(token="sa_live:nope:nope"))
        workspace = daemon.authenticate(lucidlink.ServiceAccountCredentials(token=sdk_hub.token))
        assert workspace.list_filespaces()
