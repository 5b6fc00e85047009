"""The click application: global options, every command, and exit codes.

click rather than argparse: each command is one decorated function whose docstring is its
``--help``, nested groups (``connect stores add``) need no dispatch code, and shell
completion comes for free. ``lucidlink hub ...`` stays the argparse tree of
:func:`lucidlink.hub.cli.build_parser`, mounted as a pass-through command.
"""

from __future__ import annotations

import os
import re
import sys

import click
from click.shell_completion import get_completion_class

from lucidlink import __version__
from lucidlink.commands import connect, listing, transfers
from lucidlink.commands.credentials import HUB_ENV, Credentials, save_profile
from lucidlink.commands.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Interrupted,
    UsageProblem,
    describe,
)
from lucidlink.commands.runtime import Runtime, pass_runtime
from lucidlink.commands.session import Session
from lucidlink.exceptions import LucidLinkError
from lucidlink.hub.cli import build_parser
from lucidlink.shared import DEFAULT_HUB_URL
from lucidlink.tokens import KNOWN_PREFIXES

PROG = "lucidlink"
COMPLETE_VAR = "_LUCIDLINK_COMPLETE"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--token",
    metavar="TOKEN",
    default=None,
    show_default=False,
    help="Service-account token (else $LUCIDLINK_TOKEN, $LUCIDLINK_SA_TOKEN, the profile).",
)
@click.option(
    "--hub-url",
    metavar="URL",
    default=None,
    help="The hub (else $LUCIDLINK_HUB_URL, the profile, http://127.0.0.1:8470).",
)
@click.option(
    "--profile",
    default=None,
    help="Profile of ~/.config/lucidlink/config.toml (else $LUCIDLINK_PROFILE, else 'default').",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or status lines.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Force progress bars on or off (default: on when stdout is a terminal; "
    "also $LUCIDLINK_PROGRESS=1/0).",
)
@click.version_option(__version__, prog_name=PROG)
@pass_runtime
def cli(
    rt: Runtime,
    token: str | None,
    hub_url: str | None,
    profile: str | None,
    quiet: bool,
    progress: bool | None,
) -> None:
    """Work with lucidlink filespaces from a shell or a cron job.

    Paths are local, or lucidlink://WORKSPACE/FILESPACE/PATH in a filespace.

    \b
    Examples:
      export LUCIDLINK_TOKEN=sa_live:...    # or: lucidlink login
      lucidlink ls -l lucidlink://acme/media
      lucidlink cp -r ./renders lucidlink://acme/media/renders
      lucidlink sync --delete lucidlink://acme/media/renders ./renders

    Exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted (Ctrl-C).
    """
    rt.token, rt.hub_url, rt.profile, rt.quiet, rt.progress = (
        token,
        hub_url,
        profile,
        quiet,
        progress,
    )


@cli.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    }
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hub(args: tuple[str, ...]) -> int:
    """Run and administer a hub (see lucidlink hub --help)."""
    return run_hub(["hub", *args])


def run_hub(argv: list[str]) -> int:
    """The argparse tree of ``lucidlink hub ...``, exactly as before the click app existed."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_USAGE
    return int(args.func(args) or 0)


@cli.command()
@click.option("--no-verify", is_flag=True, help="Save without checking the token with the hub.")
@pass_runtime
def login(rt: Runtime, no_verify: bool) -> None:
    """Save a token (and hub) as a profile.

    The profile is a table of ~/.config/lucidlink/config.toml ($XDG_CONFIG_HOME), mode 0600.

    The token comes from --token, $LUCIDLINK_TOKEN, or is asked for (not echoed).

    \b
    Examples:
      lucidlink login                                   # asks for the token
      lucidlink --hub-url https://hub.example.com --profile prod login
    """
    token = rt.token or os.environ.get("LUCIDLINK_TOKEN") or os.environ.get("LUCIDLINK_SA_TOKEN")
    if not token:
        token = click.prompt("Token", hide_input=True, err=True)
    hub_url = rt.hub_url or os.environ.get(HUB_ENV) or ""
    name = rt.profile or os.environ.get("LUCIDLINK_PROFILE") or "default"
    if not no_verify:
        credentials = Credentials(token.strip(), hub_url.rstrip("/") or DEFAULT_HUB_URL, "login")
        with Session(credentials) as session:
            workspace = session.workspace()
            rt.echo(f"token accepted: workspace {workspace.name} at {session.hub_url}")
    path = save_profile(name, {"token": token.strip(), "hub_url": hub_url.rstrip("/")})
    rt.echo(f"saved profile {name!r} in {path}")


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script.

    \b
    Examples:
      eval "$(lucidlink completion bash)"        # in ~/.bashrc
      lucidlink completion fish > ~/.config/fish/completions/lucidlink.fish
    """
    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, PROG, COMPLETE_VAR).source())


for command in (
    listing.ls,
    listing.stat,
    listing.du,
    listing.tree,
    listing.locks,
    transfers.cat,
    transfers.cp,
    transfers.mv,
    transfers.rm,
    transfers.mkdir,
    transfers.sync,
    connect.connect,
):
    cli.add_command(command)


_TOKEN_LIKE = re.compile(rf"(?:{'|'.join(map(re.escape, KNOWN_PREFIXES))}):\S+")


def _fail(message: str, code: int) -> int:
    # A token typed in the wrong place (an extra argument, a path) must not be echoed back.
    click.echo(f"{PROG}: error: {_TOKEN_LIKE.sub('***', message)}", err=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit code (0 ok, 1 failure, 2 usage, 130 Ctrl-C)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if os.environ.get(COMPLETE_VAR):
        cli.main(args, prog_name=PROG, complete_var=COMPLETE_VAR)
        return EXIT_OK
    runtime = Runtime()
    ok = False
    try:
        try:
            result = cli.main(args, prog_name=PROG, standalone_mode=False, obj=runtime)
            ok = True
        finally:
            runtime.finish(ok)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "")
        return EXIT_USAGE
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path if exc.ctx else PROG} --help')"
        return _fail(" ".join(exc.format_message().split()) + hint, EXIT_USAGE)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.Abort, KeyboardInterrupt, Interrupted) as exc:
        message = str(exc) if isinstance(exc, Interrupted) else "interrupted"
        return _fail(message, EXIT_INTERRUPTED)
    except UsageProblem as exc:
        return _fail(describe(exc), EXIT_USAGE)
    except (LucidLinkError, OSError, click.ClickException) as exc:
        text = exc.format_message() if isinstance(exc, click.ClickException) else describe(exc)
        return _fail(text, EXIT_FAILURE)
    return result if isinstance(result, int) else EXIT_OK


__all__ = ["cli", "main", "run_hub"]
