"""compress --search --ray-address on a real two-node Ray cluster on 127.0.0.1 (.ci/ray-cluster.sh), with a
chain's worker killed mid-run: the same chosen artifact and the same artifact ids and bytes as in process.

Its own module: several Ray sessions in one pytest process are known to interfere (see test_executor.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from tests.helpers.fanout import search_slice, search_slice_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                                 reason="needs Debian's dataset-fashion-mnist package")]
pytest.importorskip("ray", reason="needs Ray: pip install -e '.[dev]'")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A head and one worker node (1 CPU each), separate `ray start` processes.

    First without the Ray settings an embedded Ray of an earlier test left in os.environ (RAY_AUTH_MODE=token,
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER, ...): inherited, they broke the cluster's start, or made the driver's RPCs
    unreadable to the cluster's workers (auth disabled), so that every task failed with OwnerDiedError."""
    from tests.test_executor import _ray_cluster

    for name in [k for k in os.environ if k.startswith("RAY_") or k == "PYTHONBREAKPOINT"]:
        monkeypatch.delenv(name)
    with _ray_cluster() as address:
        yield address


def test_search_on_the_cluster_survives_a_killed_worker(cluster: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache-a"))
    plain = search_slice(tmp_path / "plain")

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

    # a separate cache on the same disk: every node of this 127.0.0.1 cluster sees it (a shared folder).
    # The cluster run is its own driver process, as users run it (Ray sessions in one process interfere).
    env = {**os.environ, "EDGEKIT_CACHE_DIR": str(tmp_path / "cache-b")}  # os.environ as the cluster fixture left it
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        fanned = search_slice_cli(tmp_path / "cluster", "--ray-address", cluster, env=env)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert killed, "no chain worker was killed"
    assert fanned["executor"] == {"kind": "ray", "address": cluster, "nodes": 2, "workers": 2}
    assert fanned["chosen"] == plain["chosen"]
    assert fanned["files"] == plain["files"]
