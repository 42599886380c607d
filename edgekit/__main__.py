"""``python -m edgekit``."""

import sys

from edgekit.cli import main

sys.exit(main())
