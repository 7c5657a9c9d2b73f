"""`python -m sapa.cli ...`: the same as the installed `sapa` command."""

import sys

from sapa.cli import main

sys.exit(main())
