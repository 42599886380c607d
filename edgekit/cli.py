"""The ``edgekit`` command line: a thin shell over the Python API.

Each sub-command lives in ``edgekit/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``; the help texts live in
:data:`COMMANDS`. Every command module is imported to build the parser, so none
of them imports TensorFlow (or any heavy library) at module level and
``edgekit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import traceback
from typing import Sequence

from edgekit import __version__
from edgekit.errors import EdgekitError

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help) -- the one table of sub-commands
    "compress": ("edgekit.commands.compress", "train/load, prune, quantize, export, verify and benchmark a model"),
    "bench": ("edgekit.commands.bench", "benchmark an .onnx or .tflite file on one or more targets"),
    "devices": ("edgekit.commands.devices", "list device profiles, check or set one up"),
    "report": ("edgekit.commands.report", "regenerate a run's report, or compare two runs"),
    "inspect": ("edgekit.commands.inspect", "show what a model file really contains"),
    "export": ("edgekit.commands.export", "convert a model file (e.g. .tflite to a C array)"),
    "doctor": ("edgekit.commands.doctor", "check versions, providers, GPU libraries, qemu and chromium; say what to fix"),
    "tune": ("edgekit.commands.tune", "search training settings (Ray Tune + ASHA) and write a recipe for compress"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(2, f"edgekit: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgekit", description="Take a Keras image model to the edge.")
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print errors")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def _setup_logging(verbose: bool, quiet: bool) -> None:
    from rich.logging import RichHandler

    from edgekit.console import stderr_console

    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    handler = RichHandler(console=stderr_console(), show_time=False, show_path=False, markup=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("edgekit").setLevel(logging.DEBUG if verbose else logging.INFO if not quiet else logging.ERROR)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, CI cancellation, ``docker stop``), unwound like Ctrl-C so every cleanup runs."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror}"
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgekit`` console script.

    Exit codes: 0 ok, 1 runtime failure, 2 bad input, 130 interrupted, 143 terminated. Every error
    is one line on stderr; ``--debug`` (or ``EDGEKIT_DEBUG=1``) also prints the traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False)) or os.environ.get("EDGEKIT_DEBUG", "") not in ("", "0")
    _setup_logging(args.verbose, args.quiet)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (main() called from a worker)
        pass
    try:
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except EdgekitError as e:
        if debug:
            traceback.print_exc()
        print(f"edgekit: error: {e}", file=sys.stderr)
        return e.exit_code
    except Terminated:
        if debug:
            traceback.print_exc()
        print("edgekit: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("edgekit: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a file-system fault or a bug: one line; --debug shows where
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (--debug shows the traceback)"
        print(f"edgekit: error: {_one_line(e)}{hint}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
