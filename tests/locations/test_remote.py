"""Remote boards over SSH, against a real sshd on 127.0.0.1 whose python is the emulated ARM64 one.

The test starts its own sshd (key auth only, high port, its own config and host key) and
writes the client's known_hosts itself: host keys are verified, never blindly accepted.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from tests.helpers.sshd import SSHD_MISSING, keygen, running_sshd

from edgekit.artifact import Artifact
from edgekit.bench.api import Timing, benchmark
from edgekit.locations.qemu import guest_command, qemu_unavailable_reason
from edgekit.locations.ssh import run_ssh, ssh_command, ssh_unavailable_reason
from edgekit.bench.tiny import tiny_data, write_tiny_onnx
from edgekit.errors import TargetError
from edgekit.targets import SshOptions, Target, get_target

ARM = get_target("arm64-qemu")
QEMU_REASON = qemu_unavailable_reason(ARM)
pytestmark = [pytest.mark.skipif(SSHD_MISSING is not None, reason=SSHD_MISSING or "")]
FAST = Timing(warmup_runs=1, min_runs=5, min_seconds=0.02, max_seconds=5.0)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield {"dir": server.dir, "port": server.port, "key": server.key, "known_hosts": server.known_hosts}


def _board(sshd: dict, python: str, known_hosts: Path | None = None) -> Target:
    import getpass

    return Target(name="test-board", arch="aarch64", location="ssh", runtimes=("onnxruntime",), threads=(1,),
                  batch_sizes=(1, 4), ssh=SshOptions(host="127.0.0.1", user=getpass.getuser(), port=sshd["port"],
                                                     key=str(sshd["key"]), known_hosts=str(known_hosts or sshd["known_hosts"]),
                                                     python=python, timeout_s=600, connect_timeout_s=10))


def _wrapper(path: Path, argv: list[str], env: str = "") -> str:
    """A board 'python': a script that execs ``argv`` with the caller's arguments."""
    quoted = " ".join(f"'{a}'" for a in argv)
    path.write_text(f"#!/bin/sh\n{env}exec {quoted} \"$@\"\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.arm64
@pytest.mark.slow  # a whole benchmark under emulation, over a real sshd (~10 s)
@pytest.mark.skipif(QEMU_REASON is not None, reason=f"needs the ARM64 sysroot: {QEMU_REASON}")
def test_benchmark_on_ssh_board_running_emulated_arm64(sshd: dict, tmp_path: Path) -> None:
    python = _wrapper(sshd["dir"] / "arm-python", guest_command(ARM)[:-1], env="QEMU_CPU=neoverse-n1 ")
    board = _board(sshd, python)
    assert ssh_unavailable_reason(board) is None
    model = write_tiny_onnx(tmp_path / "tiny model.onnx")  # a space: remote arguments are quoted
    x, y = tiny_data(24)
    art = Artifact(id="tiny", stage="external", format="onnx", precision="fp32", path=model, parent_id=None)
    rows = benchmark([art], x, y, [get_target("x86-cpu"), board], timing=FAST)
    remote = [r for r in rows if r["target"] == "test-board"]
    assert remote and all(r["status"] == "ok" for r in remote), [r["reason"] for r in remote]
    assert all(r["provider"] == "CPUExecutionProvider" and r["latency_ms"]["p50"] > 0 for r in remote)
    assert all(r["target_agreement"] >= 0.999 for r in remote)
    left = subprocess.run(ssh_command(board, "sh", "-c", "ls -d /tmp/edgekit.* 2>/dev/null | wc -l"),
                          capture_output=True, text=True, timeout=30).stdout.strip()
    assert left == "0"  # the remote temp dir was cleaned up


def test_unknown_host_key_is_refused(sshd: dict, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd['port']} {keygen(tmp_path / 'impostor')}\n")
    board = _board(sshd, "python3", known_hosts=other)
    reason = ssh_unavailable_reason(board)
    assert reason and "host key" in reason.lower()


def test_board_without_onnxruntime_gives_clear_error(sshd: dict, tmp_path: Path) -> None:
    """A board whose python has numpy but no onnxruntime (Debian's python with only numpy on its path)."""
    import numpy

    if not Path("/usr/bin/python3").exists():
        pytest.skip("needs /usr/bin/python3 as the board's bare python")
    site = sshd["dir"] / "numpy-only"
    site.mkdir(exist_ok=True)
    src = Path(numpy.__file__).parent
    for p in (src, src.parent / "numpy.libs"):
        if p.exists() and not (site / p.name).exists():
            (site / p.name).symlink_to(p)
    python = _wrapper(sshd["dir"] / "bare-python", ["/usr/bin/python3"], env=f"PYTHONPATH='{site}' ")
    board = _board(sshd, python)
    reason = ssh_unavailable_reason(board)
    assert reason is not None and "lacks onnxruntime" in reason
    work = tmp_path / "work"
    work.mkdir()
    model = write_tiny_onnx(work / "m.onnx")
    x, y = tiny_data(4)
    np.savez(work / "data.npz", x=x, y=y)
    with pytest.raises(TargetError, match="lacks onnxruntime"):
        run_ssh(board, {"model": str(model), "data": str(work / "data.npz"), "runtime": "onnxruntime"}, work)
