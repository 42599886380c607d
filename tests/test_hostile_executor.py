"""A cluster address where nothing listens fails at once, in one line, exit 2: before any data, model or Ray.

Ray's own connect retries every ~40 s and prints nothing, so these run ``python -m edgekit`` in a child
process with a timeout (a hang fails the test instead of the suite).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from edgekit.config import CompressConfig
from edgekit.errors import UsageError
from tests.helpers.cli import edgekit_subprocess

QUICK = ["--dataset", "digits", "--epochs", "1", "--train-limit", "100"]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("command", "via"), [("compress", "flag"), ("tune", "flag"), ("tune", "env"),
                                              ("analyze", "flag"), ("compress", "env")])
def test_dead_ray_address_fails_fast(tmp_path: Path, closed_port: int, command: str, via: str) -> None:
    address = f"127.0.0.1:{closed_port}"
    out = tmp_path / "out"
    args = {"compress": ["compress", *QUICK, "--no-bench", "--workers", "1", "--out", str(out)],
            "tune": ["tune", *QUICK, "--trials", "1", "--out", str(out)],
            "analyze": ["analyze", str(tmp_path / "m.keras"), "--dataset", "digits", "--out", str(out)]}[command]
    (tmp_path / "m.keras").write_bytes(b"not read before the probe")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if via == "flag":
        args += ["--ray-address", address]
    else:
        env["RAY_ADDRESS"] = address
    started = time.monotonic()
    done = edgekit_subprocess(*args, cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--ray-address {address}: nothing accepts connections" in lines[0], done.stderr
    assert time.monotonic() - started < 30 and not out.exists()


def test_probe_and_address_checks() -> None:
    from edgekit.executor import probe_address

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        probe_address(f"127.0.0.1:{server.getsockname()[1]}")  # something listens: fine
    probe_address("auto")  # Ray finds a local cluster itself: not probed
    with pytest.raises(UsageError, match="port in 1-65535"):
        CompressConfig(ray_address="127.0.0.1:70000")
    with pytest.raises(UsageError, match="must be HOST:PORT"):
        CompressConfig(ray_address="no-port")
