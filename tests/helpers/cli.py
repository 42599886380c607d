"""Run the ``edgekit`` command line inside the test process, as ``python -m edgekit`` would run it.

A subprocess pays Python's start-up and edgekit's imports (about a second on the 2-core CI machine)
for every case; most CLI tests only need the exit code and what was printed. :func:`edgekit_in_process`
calls :func:`edgekit.cli.main` with the subprocess's surroundings and returns the same
:class:`subprocess.CompletedProcess` (``returncode``, ``stdout``, ``stderr``):

- the environment is *replaced* by ``env`` when given (as ``subprocess.run(env=...)`` does), and the
  working folder is ``cwd``; both, the logging set-up, the progress switch and the SIGINT/SIGTERM
  handlers are restored afterwards, so nothing leaks into the next case; the root logger's handlers
  (pytest's caplog, ``--log-file``) are taken off it during the call, so the CLI's
  ``basicConfig(force=True)`` does not close them, and put back open;
- stdout/stderr are captured at the Python level *and* at file descriptors 1 and 2 (what native code
  writes straight to them), and Python warnings are shown on the captured stderr with Python's default
  filters, as a fresh interpreter shows them;
- ``SystemExit`` becomes the exit code, and an exception escaping ``main`` is printed as a traceback
  with exit code 1, as the interpreter does.

What only a real process shows stays in subprocess tests: that a light command imports no
TensorFlow, signals, locks held by another process, the console-script entry point, and warnings
emitted while a module is first imported.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


def edgekit_subprocess(*args: str, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
                       timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m edgekit ARGS`` in a real child process (for what only a process shows)."""
    return subprocess.run([sys.executable, "-m", "edgekit", *args], cwd=cwd, env=None if env is None else dict(env),
                          capture_output=True, text=True, timeout=timeout)


def edgekit_in_process(*args: str, cwd: Path | str | None = None,
                       env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``edgekit ARGS`` run by :func:`edgekit.cli.main` in this process; see the module docstring."""
    from edgekit.cli import main

    argv = [str(a) for a in args]
    code = 0
    with _surroundings(cwd, env), _captured() as output:
        try:
            code = int(main(argv) or 0)
        except SystemExit as e:
            code = _exit_code(e, output.err)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 -- what escapes main: the interpreter prints it, exit 1
            output.err.write(traceback.format_exc())
            code = 1
    return subprocess.CompletedProcess(["edgekit", *argv], code, output.stdout, output.stderr)


def _exit_code(e: SystemExit, err: TextIO) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=err)  # sys.exit("message"): the interpreter prints it and exits 1
    return 1


@contextmanager
def _surroundings(cwd: Path | str | None, env: Mapping[str, str] | None) -> Iterator[None]:
    """Working folder, environment, logging, progress switch and signal handlers, restored afterwards."""
    from edgekit import console

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    edgekit_log = logging.getLogger("edgekit")
    saved_edgekit = (list(edgekit_log.handlers), edgekit_log.level, edgekit_log.propagate)
    saved_disable = logging.root.manager.disable
    saved_progress = dict(console._STATE)  # noqa: SLF001 -- the CLI turns progress bars on for the process
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for handler in saved_root[0]:  # out of reach of the CLI's basicConfig(force=True), which closes what it
            root.removeHandler(handler)  # removes (a closed FileHandler in mode 'w', pytest's --log-file, drops records)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for handler in list(root.handlers):  # the CLI's own (its RichHandler), closed; the saved ones, open, back
            root.removeHandler(handler)
            handler.close()
        for handler in saved_root[0]:
            root.addHandler(handler)
        root.setLevel(saved_root[1])
        edgekit_log.handlers[:] = saved_edgekit[0]
        edgekit_log.setLevel(saved_edgekit[1])
        edgekit_log.propagate = saved_edgekit[2]
        logging.disable(saved_disable)
        console._STATE.clear()  # noqa: SLF001
        console._STATE.update(saved_progress)  # noqa: SLF001
        for sig, handler in saved_signals.items():
            if handler is not None:
                signal.signal(sig, handler)


class _Stream(io.TextIOWrapper):
    """A text stream over bytes (so ``.buffer`` exists, as on a real stdout) that is not a terminal."""

    def __init__(self, errors: str) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors=errors, write_through=True)

    def captured(self) -> bytes:
        self.flush()
        return self.buffer.getvalue()  # type: ignore[attr-defined,no-any-return]


class _Output:
    """The streams a call writes to; ``stdout``/``stderr`` hold the text once the capture ends."""

    def __init__(self) -> None:
        self.out, self.err = _Stream("strict"), _Stream("backslashreplace")
        self.stdout = self.stderr = ""


@contextmanager
def _captured() -> Iterator[_Output]:
    """sys.stdout/sys.stderr and file descriptors 1/2 captured. Python-level writes come first in the text,
    then what was written straight to the descriptor (native code)."""
    output = _Output()
    saved_sys = (sys.stdout, sys.stderr)
    for stream in saved_sys:
        stream.flush()
    fd_files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    saved_fds = [os.dup(1), os.dup(2)]
    os.dup2(fd_files[0].fileno(), 1)
    os.dup2(fd_files[1].fileno(), 2)
    sys.stdout, sys.stderr = output.out, output.err
    try:
        with warnings.catch_warnings():
            _default_warning_filters()
            warnings.showwarning = _shown_on(output.err)
            yield output
    finally:
        sys.stdout, sys.stderr = saved_sys
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        native = []
        for fd, f in zip(saved_fds, fd_files):
            os.close(fd)
            f.seek(0)
            native.append(f.read())
            f.close()
        output.stdout = (output.out.captured() + native[0]).decode("utf-8", "replace")
        output.stderr = (output.err.captured() + native[1]).decode("utf-8", "replace")


def _shown_on(stream: TextIO) -> Any:
    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None,
             line: str | None = None) -> None:
        stream.write(warnings.formatwarning(message, category, filename, lineno, line))
    return show


def _default_warning_filters() -> None:
    """The filters of a fresh ``python`` without -W or PYTHONWARNINGS (see the warnings module docs)."""
    warnings.resetwarnings()
    warnings.simplefilter("default")
    for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning, DeprecationWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
