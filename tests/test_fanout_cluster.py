"""compress --search --ray-address on a real two-node Ray cluster on 127.0.0.1 (.ci/ray-cluster.sh), with a
chain's worker killed mid-run: the same chosen artifact and the same artifact ids and bytes as in process (issue 9).

Its own module: several Ray sessions in one pytest process are known to interfere (see test_executor.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from edgekit.config import CompressConfig
from edgekit.fsutil import sha256_file

pytestmark = [pytest.mark.ray, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                                 reason="needs Debian's dataset-fashion-mnist package")]
pytest.importorskip("ray", reason="needs Ray: pip install -e '.[dev]'")
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cluster() -> Iterator[str]:
    """A head and one worker node (1 CPU each), separate `ray start` processes."""
    port = _free_port()
    script = ROOT / ".ci" / "ray-cluster.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    started = subprocess.run(["bash", str(script), "start", str(port)], capture_output=True, text=True, timeout=180,
                             env=env)
    try:
        if started.returncode != 0:
            pytest.fail(f"ray-cluster.sh start failed: {started.stderr.strip()[-500:]}")
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(script), "stop", str(port)], capture_output=True, timeout=60, env=env)


def _search(out: Path, **extra: object) -> dict:
    import edgekit

    cfg = CompressConfig(dataset="fashion-mnist", train_limit=600, test_limit=200, epochs=1, prune_epochs=1,
                         search=True, search_structured=(0.0,), search_sparsity=(0.0, 0.8),
                         search_quantization=("ptq-int8",), bench=False, **extra)  # type: ignore[arg-type]
    result = edgekit.compress(cfg, out)
    report = json.loads((out / "report.json").read_text())
    return {"chosen": report["search"]["chosen_id"], "executor": report.get("executor"),
            "files": {a.name: (a.id, sha256_file(a.path)) for a in result.artifacts}}


def test_search_on_the_cluster_survives_a_killed_worker(cluster: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache-a"))
    plain = _search(tmp_path / "plain")

    port = cluster.rsplit(":", 1)[1]
    killed: list[int] = []
    stop = threading.Event()

    def chain_pids() -> list[str]:  # workers of this cluster's raylets running a chain (Ray titles them ray::run_chain)
        raylets = subprocess.run(["pgrep", "-f", f"raylet.*ekray-{port}/"], capture_output=True, text=True).stdout.split()
        return [pid for r in raylets for pid in subprocess.run(["pgrep", "-P", r, "-f", "ray::run_chain"],
                                                                 capture_output=True, text=True).stdout.split()]

    def killer() -> None:  # the first chain worker that appears, a little way into its work
        while not stop.is_set() and not killed:
            found = chain_pids()
            if found:
                time.sleep(2.0)
                if found[0] not in chain_pids():  # its chain finished meanwhile: wait for a running one
                    continue
                try:
                    os.kill(int(found[0]), signal.SIGKILL)
                    killed.append(int(found[0]))
                except ProcessLookupError:
                    continue
            time.sleep(0.2)

    # a separate cache on the same disk: every node of this 127.0.0.1 cluster sees it (a shared folder)
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache-b"))
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        fanned = _search(tmp_path / "cluster", ray_address=cluster)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert killed, "no chain worker was killed"
    assert fanned["executor"] == {"kind": "ray", "address": cluster, "nodes": 2, "workers": 2}
    assert fanned["chosen"] == plain["chosen"]
    assert fanned["files"] == plain["files"]
