"""Subprocess helpers for every location: argument lists only (no shell), one-line errors, JSON results."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from edgekit.errors import TargetError


def run_command(cmd: list[str], timeout_s: float, what: str, *, env: dict[str, str] | None = None,
                stdin: str | None = None) -> str:
    """Run ``cmd`` (an argument list, no shell); return its stdout, or raise a one-line TargetError."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, input=stdin, check=False)
    except subprocess.TimeoutExpired:
        raise TargetError(f"{what} timed out after {timeout_s:.0f} s") from None
    except OSError as e:
        raise TargetError(f"{what}: cannot start {cmd[0]} ({e.strerror})") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise TargetError(f"{what} failed (exit {proc.returncode}): {lines[-1] if lines else 'no output'}")
    return proc.stdout


def run_and_read(cmd: list[str], result: Path, timeout_s: float, env: dict[str, str] | None = None,
                 where: str = "local") -> dict[str, Any]:
    """Run the runner command ``cmd`` and read its JSON result from ``result``."""
    run_command(cmd, timeout_s, f"{where}: benchmark runner", env=env)
    try:
        return json.loads(result.read_text())
    except (OSError, ValueError) as e:
        raise TargetError(f"{where}: benchmark runner wrote no readable result ({e})") from None
