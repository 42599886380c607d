"""The ``ssh`` location, remote boards: copy the model, the runner and the evaluation data, run, read back JSON.

Every command is an argument list (no local shell). ssh joins the remote argv
with spaces and hands it to the board's shell, so each remote argument is
quoted with :func:`shlex.quote`. Host keys are verified against the profile's
``known_hosts`` (``StrictHostKeyChecking=yes``: an unknown or changed key is an
error, never accepted), ``BatchMode`` forbids password prompts, and the remote
temporary folder is removed afterwards.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path
from typing import Any

from edgekit.errors import TargetError
from edgekit.fsutil import write_json
from edgekit.locations.base import Location
from edgekit.locations.process import run_command
from edgekit.runtime.archive import runner_archive
from edgekit.targets import SshOptions, Target

log = logging.getLogger(__name__)

REMOTE_TMP_RE = re.compile(r"^/[A-Za-z0-9._/-]*/edgekit\.[A-Za-z0-9]+$")
_PROBE = ("import json, platform, sys\n"
          "info = {'machine': platform.machine(), 'python': platform.python_version()}\n"
          "try:\n import numpy; info['numpy'] = numpy.__version__\nexcept ImportError: pass\n"
          "try:\n import onnxruntime as o; info['onnxruntime'] = o.__version__; "
          "info['providers'] = o.get_available_providers()\n"
          "except ImportError: pass\n"
          "for m in ('ai_edge_litert', 'tflite_runtime'):\n"
          " try:\n  __import__(m); info['litert'] = m; break\n except ImportError: pass\n"
          "print(json.dumps(info))\n")


def _ssh(target: Target) -> SshOptions:
    if target.ssh is None:
        raise TargetError(f"{target.name}: not a remote profile (location = {target.location!r})")
    return target.ssh


def _options(o: SshOptions) -> list[str]:
    opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={Path(o.known_hosts).expanduser()}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"ConnectTimeout={o.connect_timeout_s}", "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR"]
    if o.key:
        opts += ["-o", "IdentitiesOnly=yes", "-i", str(Path(o.key).expanduser())]
    if o.user:
        opts += ["-o", f"User={o.user}"]
    return opts


def ssh_command(target: Target, *remote_argv: str) -> list[str]:
    """``ssh`` argument list that runs ``remote_argv`` on the board (each argument shell-quoted for the far side)."""
    o = _ssh(target)
    return ["ssh", *_options(o), "-p", str(o.port), "--", o.host, " ".join(shlex.quote(a) for a in remote_argv)]


def scp_command(target: Target, files: list[Path], remote_dir: str) -> list[str]:
    """``scp`` argument list that copies ``files`` into ``remote_dir`` on the board."""
    o = _ssh(target)
    host = f"[{o.host}]" if ":" in o.host else o.host
    return ["scp", "-q", *_options(o), "-P", str(o.port), "--", *map(str, files), f"{host}:{remote_dir}/"]


def _python_argv(o: SshOptions) -> list[str]:
    return shlex.split(o.python)


def _call(target: Target, cmd: list[str], timeout_s: float, what: str) -> str:
    try:
        return run_command(cmd, timeout_s, f"{target.name}: {what}")
    except TargetError as e:
        if "Host key verification failed" in str(e) or "host key" in str(e).lower():
            raise TargetError(f"{e} (add the board's key to {_ssh(target).known_hosts} "
                              "after checking its fingerprint)") from None
        raise


def _local_reason(o: SshOptions) -> str | None:
    if o.host.startswith("-") or not o.host or any(c.isspace() for c in o.host):
        return f"ssh.host {o.host!r} is not a host name"
    if o.key and not Path(o.key).expanduser().is_file():
        return f"ssh key {o.key} not found"
    kh = Path(o.known_hosts).expanduser()
    if not kh.is_file():
        return f"known_hosts file {o.known_hosts} not found (host keys are verified; add the board's key first)"
    return None


def probe_board(target: Target) -> dict[str, Any]:
    """Connect and ask the board's python what it has (machine, numpy, onnxruntime, LiteRT)."""
    o = _ssh(target)
    out = _call(target, ssh_command(target, *_python_argv(o), "-c", _PROBE), o.connect_timeout_s + 120, "probe")
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise TargetError(f"{target.name}: the board's python ({o.python}) printed no JSON") from None


def _missing_runtime(target: Target, info: dict[str, Any]) -> str | None:
    if "numpy" not in info:
        return f"the board's python ({_ssh(target).python}) lacks numpy (pip install numpy)"
    if target.runtimes == ("litert",) and "litert" not in info:
        return f"the board's python ({_ssh(target).python}) lacks ai-edge-litert/tflite-runtime"
    if "onnxruntime" in target.runtimes and "onnxruntime" not in info:
        return f"the board's python ({_ssh(target).python}) lacks onnxruntime (pip install onnxruntime)"
    if info.get("machine") and info["machine"].replace("arm64", "aarch64") != target.arch:
        return f"the board is {info['machine']}, the profile says {target.arch}"
    return None


def ssh_unavailable_reason(target: Target, probe: bool = True) -> str | None:
    """``None`` when the board can run benchmarks, else why not; ``probe=False`` skips the network."""
    reason = _local_reason(_ssh(target))
    if reason or not probe:
        return reason
    try:
        info = probe_board(target)
    except TargetError as e:
        return str(e).removeprefix(f"{target.name}: ")
    return _missing_runtime(target, info)


def run_ssh(target: Target, request: dict[str, Any], workdir: Path, check_runtime: bool = True) -> dict[str, Any]:
    """Copy the request's model and data with the runner to the board, run it there, return its result.

    ``check_runtime=False`` skips asking the board's python what it has first (its probe already answered).
    """
    o = _ssh(target)
    reason = _local_reason(o)
    if reason:
        raise TargetError(f"{target.name}: {reason}")
    model, data = Path(request["model"]), Path(request["data"])
    out = _call(target, ssh_command(target, "mktemp", "-d", "/tmp/edgekit.XXXXXXXX"), o.connect_timeout_s + 30,
                "creating a remote temp dir")
    remote = out.strip().splitlines()[-1] if out.strip() else ""
    if not REMOTE_TMP_RE.match(remote):
        raise TargetError(f"{target.name}: mktemp on the board returned {remote!r}")
    try:
        model_name = "model" + model.suffix
        staged_model = workdir / model_name
        if not staged_model.exists():
            staged_model.symlink_to(model.resolve())
        req = {**request, "model": f"{remote}/{model_name}", "data": f"{remote}/{data.name}"}
        req_file = write_json(workdir / "remote-request.json", req)
        runner = runner_archive(workdir)
        _call(target, scp_command(target, [runner, req_file, staged_model, data], remote),
              o.connect_timeout_s + o.timeout_s, "copying files")
        py = _python_argv(o)
        missing = _missing_runtime(target, probe_board(target)) if check_runtime else None
        if missing:
            raise TargetError(f"{target.name}: {missing}")
        result = f"{remote}/result.json"
        _call(target, ssh_command(target, *py, f"{remote}/{runner.name}", f"{remote}/remote-request.json", result),
              o.connect_timeout_s + o.timeout_s, "benchmark runner")
        text = _call(target, ssh_command(target, "cat", "--", result), o.connect_timeout_s + 60, "reading the result")
        try:
            return json.loads(text)
        except ValueError as e:
            raise TargetError(f"{target.name}: unreadable result JSON from the board ({e})") from None
    finally:
        try:
            _call(target, ssh_command(target, "rm", "-rf", "--", remote), o.connect_timeout_s + 30, "cleaning up")
        except TargetError as e:
            log.warning("%s: could not remove %s on the board: %s", target.name, remote, e)


class SshLocation(Location):
    """A board reached over SSH (host keys verified, no password prompts)."""

    kind = "ssh"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._answered = False  # the board's probe found what the runner needs (checked once, not per model)

    def where(self) -> str:
        return f"ssh {_ssh(self.target).host}"

    def machine(self) -> str:
        o = _ssh(self.target)
        return f"ssh://[{o.host}]:{o.port}" if ":" in o.host else f"ssh://{o.host}:{o.port}"

    def unavailable_reason(self, probe: bool = True) -> str | None:
        reason = ssh_unavailable_reason(self.target, probe=probe)
        self._answered = probe and reason is None
        return reason

    def setup(self, force: bool = False) -> str:
        reason = ssh_unavailable_reason(self.target, probe=False)
        if reason:
            raise TargetError(f"{self.target.name}: {reason}")
        return (f"{self.target.name}: board answers: {probe_board(self.target)}; install what is missing on the "
                "board itself (pip install numpy onnxruntime)")

    def run(self, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
        return run_ssh(self.target, request, workdir, check_runtime=not self._answered)
