"""Where the token and the hub come from, and the profiles ``lucidlink login`` writes.

Order: ``--token``, ``$LUCIDLINK_TOKEN``, ``$LUCIDLINK_SA_TOKEN``, the profile's
``token``; the hub: ``--hub-url``, ``$LUCIDLINK_HUB_URL``, the profile's ``hub_url``,
:data:`~lucidlink.shared.DEFAULT_HUB_URL`. Profiles live in
``$XDG_CONFIG_HOME/lucidlink/config.toml`` (``~/.config`` when unset), one table each,
written with mode 0600. The token is never printed: :class:`Credentials` hides it in
``repr`` and no error message quotes it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import attrs

from lucidlink.commands.errors import CommandError
from lucidlink.shared import DEFAULT_HUB_URL

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TOKEN_ENVS = ("LUCIDLINK_TOKEN", "LUCIDLINK_SA_TOKEN")
"""The environment variables holding a token, in the order they are read."""
HUB_ENV = "LUCIDLINK_HUB_URL"
"""The environment variable naming the hub."""
PROFILE_ENV = "LUCIDLINK_PROFILE"
"""The environment variable naming the profile (default ``default``)."""
DEFAULT_PROFILE = "default"
"""The profile used when none is named."""


@attrs.frozen(repr=False)
class Credentials:
    """A token and the hub it is for (``repr`` never shows the token)."""

    token: str
    hub_url: str
    source: str
    """Where the token came from (``--token``, an environment variable, a profile)."""

    def __repr__(self) -> str:
        return f"Credentials(token='***', hub_url={self.hub_url!r}, source={self.source!r})"


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/lucidlink/config.toml``, or ``~/.config/lucidlink/config.toml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lucidlink" / "config.toml"


def load_profiles(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every profile of the config file (``{}`` when it does not exist)."""
    path = path or config_path()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise CommandError(
            f"{path} is not valid TOML ({exc}); fix it or run 'lucidlink login' "
            "again after removing it"
        ) from None
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def save_profile(name: str, values: dict[str, str], path: Path | None = None) -> Path:
    """Write (or replace) one profile, keeping the others; the file gets mode 0600."""
    path = path or config_path()
    profiles = load_profiles(path)
    profiles[name] = {k: v for k, v in values.items() if v}
    lines: list[str] = []
    for profile, table in profiles.items():
        lines.append(f"[{json.dumps(profile)}]")
        # A JSON string is a valid TOML basic string (same escapes).
        lines.extend(f"{key} = {json.dumps(str(value))}" for key, value in table.items())
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def resolve(token: str | None, hub_url: str | None, profile: str | None) -> Credentials:
    """The credentials a command uses; :class:`CommandError` saying how to give a token."""
    name = profile or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    table: dict[str, Any] = {}
    if (
        profile is not None
        or not (token or any(os.environ.get(e) for e in TOKEN_ENVS))
        or not (hub_url or os.environ.get(HUB_ENV))
    ):
        table = load_profiles().get(name, {})
        if profile is not None and not table:
            raise CommandError(
                f"no profile {name!r} in {config_path()}; create it with "
                f"'lucidlink login --profile {name}'"
            )
    source = "--token"
    if not token:
        for env in TOKEN_ENVS:
            if os.environ.get(env):
                token, source = os.environ[env], f"${env}"
                break
    if not token and table.get("token"):
        token, source = str(table["token"]), f"profile {name!r}"
    if not token:
        raise CommandError(
            "no token: pass --token, set LUCIDLINK_TOKEN, or run 'lucidlink login' "
            "(a token is printed by 'lucidlink hub init' or 'lucidlink hub token create')"
        )
    hub = hub_url or os.environ.get(HUB_ENV) or str(table.get("hub_url") or "") or DEFAULT_HUB_URL
    return Credentials(token.strip(), hub.rstrip("/"), source)
