"""What every command receives: the global options, the session and path resolution."""

from __future__ import annotations

import click

from lucidlink.commands.credentials import resolve
from lucidlink.commands.engine import DEFAULT_JOBS, Options
from lucidlink.commands.errors import UsageProblem
from lucidlink.commands.session import Session
from lucidlink.commands.stores import LocalPlace, Place, RemotePlace
from lucidlink.commands.urls import RemoteURL, is_remote, parse_remote


class Runtime:
    """The state of one run: global options, and a session opened on first use."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.hub_url: str | None = None
        self.profile: str | None = None
        self.quiet = False
        self.progress: bool | None = None
        self._session: Session | None = None

    def session(self) -> Session:
        """The session (resolving credentials and starting the daemon on first use)."""
        if self._session is None:
            self._session = Session(resolve(self.token, self.hub_url, self.profile))
        return self._session

    def place(self, arg: str) -> Place:
        """A local path or a filespace URL as a :class:`~lucidlink.commands.stores.Place`."""
        if is_remote(arg):
            url = parse_remote(arg)
            return RemotePlace(url, self.session().fs(url))
        if not arg:
            raise UsageProblem("an empty path was given; name a file or directory")
        return LocalPlace(arg)

    def remote(self, arg: str) -> RemotePlace:
        """A filespace URL as a place; :class:`UsageProblem` for a local path."""
        if not is_remote(arg):
            raise UsageProblem(
                f"{arg!r} is a local path; this command takes lucidlink://WORKSPACE/FILESPACE/PATH"
            )
        place = self.place(arg)
        assert isinstance(place, RemotePlace)
        return place

    def url(self, arg: str, need_filespace: bool = True) -> RemoteURL:
        """A parsed filespace URL (no session needed)."""
        return parse_remote(arg, need_filespace=need_filespace)

    def options(self, jobs: int = DEFAULT_JOBS, bwlimit: int = 0) -> Options:
        """The transfer options of this run."""
        return Options(jobs=jobs, progress=self.progress, quiet=self.quiet, bwlimit=bwlimit)

    def echo(self, text: str) -> None:
        """Print a status line on stdout unless ``--quiet``."""
        if not self.quiet:
            click.echo(text)

    def finish(self, ok: bool) -> None:
        """Commit (when ``ok``) and stop the session, if one was opened."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if ok:
                session.commit()
        finally:
            session.close()


pass_runtime = click.make_pass_decorator(Runtime)
"""Decorator giving a command the run's :class:`Runtime` as first argument."""
