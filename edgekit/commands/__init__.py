"""The sub-commands of the ``edgekit`` command line (see :mod:`edgekit.cli`)."""

from __future__ import annotations

import argparse
import shlex


def recorded_command(args: argparse.Namespace) -> str:
    """The command line a run records (report.json's ``command``): ``edgekit`` and the arguments
    :func:`edgekit.cli.main` parsed (``args._argv``), shell-quoted. Not ``sys.argv``: ``main(argv)``
    called in a process (tests, an embedding script) was given other arguments than the process."""
    return shlex.join(["edgekit", *args._argv])
