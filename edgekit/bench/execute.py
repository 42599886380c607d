"""Where a benchmark runs: the self-contained runner (``runner.py``) is started
locally, under qemu-user emulation, or on a board over SSH; each returns the
runner's JSON. The runner is the same file everywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgekit.errors import TargetError
from edgekit.fsutil import write_json
from edgekit.targets import Target

RUNNER = Path(__file__).resolve().parent / "runner.py"


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


def run_local(request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run the runner with this Python, in a subprocess (``request["timeout_s"]``, default 1 h)."""
    req = workdir / "request.json"
    res = workdir / "result.json"
    write_json(req, request)
    return run_and_read([sys.executable, str(RUNNER), str(req), str(res)], res, float(request.get("timeout_s", 3600)))


def run_on_target(target: Target, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run one benchmark request where ``target`` says (local, qemu or ssh)."""
    if target.location == "local":
        return run_local(request, workdir)
    if target.location == "qemu":
        from edgekit.bench.emulate import run_qemu

        return run_qemu(target, request, workdir)
    if target.location == "ssh":
        from edgekit.bench.remote import run_ssh

        return run_ssh(target, request, workdir)
    raise TargetError(f"{target.name}: unknown location {target.location!r}")  # pragma: no cover
