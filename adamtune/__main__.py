"""`python -m adamtune` is the `adamtune` command."""

import sys

from adamtune.cli import main

sys.exit(main())
