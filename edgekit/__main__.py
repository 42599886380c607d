"""``python -m edgekit``."""

from edgekit.cli import console

console()
