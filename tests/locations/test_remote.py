"""Remote boards over SSH, against a real sshd on 127.0.0.1 whose python is the emulated ARM64 one.

The test starts its own sshd (key auth only, high port, its own config and host key) and
writes the client's known_hosts itself: host keys are verified, never blindly accepted.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from edgekit.artifact import Artifact
from edgekit.bench.api import Timing, benchmark
from edgekit.locations.qemu import guest_command, qemu_unavailable_reason
from edgekit.locations.ssh import run_ssh, ssh_command, ssh_unavailable_reason
from edgekit.bench.tiny import tiny_data, write_tiny_onnx
from edgekit.errors import TargetError
from edgekit.targets import SshOptions, Target, get_target

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
ARM = get_target("arm64-qemu")
QEMU_REASON = qemu_unavailable_reason(ARM)
pytestmark = [
    pytest.mark.skipif(not Path(SSHD).exists() or shutil.which("ssh") is None,
                       reason="needs OpenSSH server and client (apt-get install openssh-server openssh-client)"),
]
FAST = Timing(warmup_runs=1, min_runs=5, min_seconds=0.02, max_seconds=5.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    d = tmp_path_factory.mktemp("sshd")
    host_pub = _keygen(d / "host_ed25519")
    user_pub = _keygen(d / "client_ed25519")
    (d / "authorized_keys").write_text(user_pub + "\n")
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_ed25519'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\n")
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited: {proc.stderr.read().decode()[-500:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield {"dir": d, "port": port, "key": d / "client_ed25519", "known_hosts": d / "known_hosts"}
    finally:
        os.kill(proc.pid, 15)  # stop our sshd by PID
        proc.wait(timeout=10)


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
    other.write_text(f"[127.0.0.1]:{sshd['port']} {_keygen(tmp_path / 'impostor')}\n")
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
