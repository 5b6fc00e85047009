"""``python -m lucidlink`` runs the command line."""

import sys

from lucidlink.cli import main

sys.exit(main())
