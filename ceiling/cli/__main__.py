"""`python -m ceiling.cli`: the `ceiling` command without the installed script."""

import sys

from ceiling.cli import main

sys.exit(main())
