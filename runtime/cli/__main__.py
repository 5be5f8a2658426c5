"""`python -m reverie.runtime.cli`: the `reverie` command."""

import sys

from . import main

sys.exit(main())
