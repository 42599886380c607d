"""TFLite Support in a virtual environment of its own, for the tests that read edgekit's metadata with Google's reader.

TFLite Support pins old dependencies, so it never shares an environment with TensorFlow 2.21. CI makes the
environment in its set-up (``.ci/run`` runs ``python -m tests.helpers.tflite_support``), so the tests never depend
on reaching PyPI; on a dev machine the first test run makes it. A missing environment that cannot be made is a test
failure that says how to make it, never a skip: a skipped check would pass on every offline machine.

    python -m tests.helpers.tflite_support      # makes (or checks) the environment; prints its python
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TFLITE_SUPPORT = "tflite-support==0.4.4"
VENV_ENV = "EDGEKIT_TFLITE_SUPPORT_VENV"
MAKE_COMMAND = "python -m tests.helpers.tflite_support"


class TfliteSupportMissing(RuntimeError):
    """The environment is absent or broken and could not be made; the message says how to make it."""


def venv_path() -> Path:
    """Where the environment lives: ``$EDGEKIT_TFLITE_SUPPORT_VENV``, else ~/.cache/edgekit/venv-tflite-support."""
    return Path(os.environ.get(VENV_ENV) or Path.home() / ".cache" / "edgekit" / "venv-tflite-support")


def _imports(python: Path) -> bool:
    probe = [str(python), "-c", "from tflite_support import metadata"]
    return python.exists() and subprocess.run(probe, capture_output=True).returncode == 0


def _missing(venv: Path, why: str) -> TfliteSupportMissing:
    return TfliteSupportMissing(
        f"no {TFLITE_SUPPORT} environment at {venv}: {why}. Make it with `{MAKE_COMMAND}` (needs PyPI and the "
        f"libusb-1.0-0 system package), or set {VENV_ENV} to a virtual environment that has it")


def ensure_venv() -> Path:
    """The environment's python, after making the environment if it is absent (built beside it under a temporary
    name and renamed into place, so an interrupted build leaves nothing that looks finished)."""
    venv = venv_path()
    python = venv / "bin" / "python"
    if _imports(python):
        return python
    tmp = venv.with_name(f"{venv.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", TFLITE_SUPPORT], check=True,
                       capture_output=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        detail = (getattr(e, "stderr", b"") or b"").decode(errors="replace").strip().splitlines()[-1:]
        raise _missing(venv, f"making it failed ({e.__class__.__name__}: {detail[0] if detail else e})") from None
    shutil.rmtree(venv, ignore_errors=True)
    tmp.rename(venv)  # the interpreter finds its site-packages relative to itself
    if not _imports(python):
        raise _missing(venv, f"{TFLITE_SUPPORT} installed but does not import (libusb-1.0-0 missing?)")
    return python


def main() -> int:
    try:
        print(ensure_venv())
    except TfliteSupportMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
