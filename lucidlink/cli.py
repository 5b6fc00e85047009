"""The ``lucidlink`` command line (console script ``lucidlink``; ``python -m lucidlink``).

The commands live in :mod:`lucidlink.commands`; ``lucidlink hub ...`` is the hub's
argparse tree (:func:`lucidlink.hub.cli.build_parser`), reached through the same app.
"""

from __future__ import annotations

import sys

from lucidlink.commands.app import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
