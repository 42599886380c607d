"""A real OpenSSH server on 127.0.0.1 for tests: key auth only, a free high port, its own config and host key.

The client's ``known_hosts`` is written here, so host keys are verified, never blindly accepted.
Several can run at once (one "board" each); each is stopped by its own PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSHD_MISSING = (None if Path(SSHD).exists() and shutil.which("ssh") is not None
                else "needs OpenSSH server and client (apt-get install openssh-server openssh-client)")
"""Why these tests cannot run here (for ``pytest.mark.skipif``), or None."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> str:
    """Write an ed25519 key pair at ``path``; returns the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path.with_suffix(".pub").read_text().strip()


@dataclass(frozen=True)
class Sshd:
    """A running sshd: its folder, port, the client key and known_hosts file, and its process."""

    dir: Path
    port: int
    key: Path
    known_hosts: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        """Stop this sshd (SIGTERM to its PID). Sessions already open go on; new connections are refused."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
        self.proc.wait(timeout=10)


@contextmanager
def running_sshd(folder: Path, timeout_s: float = 15.0) -> Iterator[Sshd]:
    """Start an sshd configured in ``folder`` and wait until it accepts connections; stop it afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    host_pub = keygen(folder / "host_ed25519")
    user_pub = keygen(folder / "client_ed25519")
    (folder / "authorized_keys").write_text(user_pub + "\n")
    os.chmod(folder / "authorized_keys", 0o600)
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_ed25519'}\nPidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "MaxStartups 100\nSubsystem sftp internal-sftp\nLogLevel ERROR\n")
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stderr=subprocess.PIPE)
    server = Sshd(folder, port, folder / "client_ed25519", folder / "known_hosts", proc)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not listen on port {port} within {timeout_s:.0f} s") from None
                time.sleep(0.1)
        yield server
    finally:
        server.stop()
