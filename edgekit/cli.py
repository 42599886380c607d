"""The ``edgekit`` command line: a thin shell over the Python API.

Each sub-command lives in ``edgekit/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``; the help texts live in
:data:`COMMANDS`. Every command module is imported to build the parser, so none
of them imports TensorFlow (or any heavy library) at module level and
``edgekit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import re
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from edgekit import __version__, interrupts
from edgekit.errors import EdgekitError

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help) -- the one table of sub-commands
    "compress": ("edgekit.commands.compress", "train/load, prune, quantize, export, verify and benchmark a model"),
    "bench": ("edgekit.commands.bench", "benchmark an .onnx or .tflite file on one or more targets"),
    "devices": ("edgekit.commands.devices", "list device profiles, check or set one up"),
    "report": ("edgekit.commands.report", "regenerate a run's report, or compare two runs"),
    "inspect": ("edgekit.commands.inspect", "show what a model file really contains"),
    "export": ("edgekit.commands.export", "convert a model file (e.g. .tflite to a C array)"),
    "analyze": ("edgekit.commands.analyze",
                "per-layer sensitivity of a Keras model to pruning and int8 (validation data)"),
    "doctor": ("edgekit.commands.doctor",
               "check versions, providers, GPU libraries, qemu and chromium; say what to fix"),
    "tune": ("edgekit.commands.tune", "search training settings (Ray Tune + ASHA) and write a recipe for compress"),
}


EXAMPLES: dict[str, str] = {
    # name: worked examples ending the command's --help (a command module's own EXAMPLES wins)
    "bench": """\
examples:
  # time and score a model on this machine's CPU profile
  edgekit bench runs/fm/models/pruned-int8-onnx.onnx --dataset fashion-mnist

  # several files on several targets (emulated ARM64 latency is not device speed)
  edgekit bench a.onnx b.tflite --target x86-cpu --target arm64-qemu

  # on the GPU, failing instead of silently falling back to the CPU provider
  edgekit bench model.onnx --target nvidia-cuda --strict

  # on your own data, into a chosen folder
  edgekit bench model.tflite --data-dir data/ --test-limit 1000 --out runs/bench-mine
""",
    "devices": """\
examples:
  # every profile, and whether it can run here
  edgekit devices

  # why a profile cannot run here, and what to install
  edgekit devices check arm64-qemu

  # fetch the ARM64 sysroot the emulated target needs
  edgekit devices setup arm64-qemu

  # your own profiles too, without connecting to SSH boards
  edgekit devices --devices-dir my-boards/ --no-probe
""",
    "report": """\
examples:
  # rewrite report.md / report.html of a run from its report.json
  edgekit report runs/fm

  # compare two runs: settings, artifacts and benchmark rows side by side
  edgekit report runs/fm runs/fm-struct50 --out runs/compare

  # replace an earlier comparison
  edgekit report runs/a runs/b --out runs/compare --force
""",
    "inspect": """\
examples:
  # what a file really holds: format, precision, sparsity, size, metadata
  edgekit inspect runs/fm/models/pruned-int8-tflite.tflite

  # with the per-layer table
  edgekit inspect model.onnx --layers

  # as JSON, for scripts
  edgekit inspect model.keras --json
""",
    "export": """\
examples:
  # a C array for a microcontroller build
  edgekit export runs/fm/models/pruned-int8-tflite.tflite --format c-array --out firmware/

  # choose the symbol and file names
  edgekit export model.tflite --format c-array --name digits_model

  # overwrite files written before
  edgekit export model.tflite --format c-array --out firmware/ --force
""",
    "doctor": """\
examples:
  # what is installed, what works, and what to fix
  edgekit doctor

  # list ONNX Runtime providers without loading a model in each
  edgekit doctor --no-load

  # the same check before a benchmark in CI, failing the job on a problem
  edgekit doctor && edgekit bench model.onnx --target x86-cpu
""",
    "analyze": """\
examples:
  # per-layer sensitivity of your model to pruning and int8, on Fashion-MNIST's validation split
  edgekit analyze runs/fm/models/baseline.keras --dataset fashion-mnist

  # a tighter accuracy budget and your own sparsity levels
  edgekit analyze model.keras --data-dir data/ --budget 0.5 --sparsities 0.5,0.8,0.9

  # as JSON, for scripts
  edgekit analyze model.keras --dataset digits --json
""",
    "tune": """\
examples:
  # eight trials on a local Ray, then compress with the best settings
  edgekit tune --dataset fashion-mnist --trials 8 --out runs/tune-fm
  edgekit compress --recipe runs/tune-fm/recipe.yaml

  # start from a recipe, with your own search space, on two cores
  edgekit tune --recipe base.yaml --space space.yaml --workers 2

  # on an existing Ray cluster sharing one cache folder
  edgekit tune --ray-address head:6379 --cache-dir /shared/edgekit-cache
""",
}

_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.*)\)$")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump; a mistyped choice gets a suggestion
        m = _INVALID_CHOICE.search(message)
        if m:
            from edgekit.schema import suggest

            choices = [c.strip().strip("'") for c in m.group("choices").split(",")]
            message += suggest(m.group("value"), choices, cutoff=0)
        self.exit(2, f"edgekit: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgekit", description="Take a Keras image model to the edge.",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="Run 'edgekit COMMAND --help' for a command's options and worked examples.")
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("-q", "--quiet", action="store_true", help="only print errors")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        command = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog=getattr(command, "EXAMPLES", None) or EXAMPLES.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(_module=module)
        command.add_arguments(p)
    return parser


def _setup_logging(verbose: bool, quiet: bool) -> None:
    from rich.logging import RichHandler

    from edgekit.console import stderr_console

    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    handler = RichHandler(console=stderr_console(), show_time=False, show_path=False, markup=False)
    root = logging.getLogger()
    for old in list(root.handlers):  # taken off, not closed (basicConfig(force=True) would close them): with
        root.removeHandler(old)      # main(argv) called in a process they are the caller's (pytest's --log-file)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    logging.getLogger("edgekit").setLevel(logging.DEBUG if verbose else logging.INFO if not quiet else logging.ERROR)


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        where = f"{e.filename}: " if e.filename else ""
        text = f"{where}{e.strerror}"
    else:
        text = f"{type(e).__name__}: {e}"
    return " ".join(text.split())[:300]  # one line, even for a file name with a newline in it


def _interrupted(terminated: bool | None = None) -> int:
    import signal

    if terminated is None:
        terminated = interrupts.received() == signal.SIGTERM
    print("edgekit: terminated" if terminated else "edgekit: interrupted", file=sys.stderr)
    return 143 if terminated else 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgekit`` console script.

    Exit codes: 0 ok, 1 runtime failure, 2 bad input, 130 interrupted, 143 terminated. Every error
    is one line on stderr; ``--debug`` (or ``EDGEKIT_DEBUG=1``) also prints the traceback.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args._argv = argv  # what the command records as its command line (edgekit.commands.recorded_command)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False)) or os.environ.get("EDGEKIT_DEBUG", "") not in ("", "0")
    _setup_logging(args.verbose, args.quiet)
    restore = interrupts.install()  # SIGTERM unwinds like Ctrl-C; a swallowed interrupt is re-raised later
    try:
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except EdgekitError as e:
        if debug:
            traceback.print_exc()
        if interrupts.received():  # the interrupt surfaced as a failure of the step it stopped
            return _interrupted()
        print(f"edgekit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        if debug:
            traceback.print_exc()
        return _interrupted(isinstance(e, interrupts.Terminated))
    except Exception as e:  # a file-system fault or a bug: one line; --debug shows where
        if debug:
            traceback.print_exc()
        if interrupts.received():
            return _interrupted()
        hint = "" if debug else " (--debug shows the traceback)"
        print(f"edgekit: error: {_one_line(e)}{hint}", file=sys.stderr)
        return 1
    finally:
        restore()


def console() -> NoReturn:
    """The ``edgekit`` executable: exit with :func:`main`'s code, also when a second Ctrl-C or SIGTERM lands
    while the stopped run returns (it would otherwise end the process by the signal, not with 130/143).

    A stopped run has cleaned up by the time :func:`main` returns, but native threads it started (TensorFlow's
    converter, tf2onnx) may still be running, and Python's finalization under them can abort the process
    (SIGABRT: "PyThreadState_Get ... finalizing"). So a stopped run flushes its output and ends without
    finalization."""
    try:
        code = main()
    except KeyboardInterrupt as e:
        code = 143 if isinstance(e, interrupts.Terminated) else 130
    if code in (130, 143):
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
