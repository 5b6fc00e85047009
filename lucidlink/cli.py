"""The ``lucidlink`` command line: ``lucidlink hub ...``."""

from __future__ import annotations

import sys

from lucidlink.hub.cli import build_parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lucidlink`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
