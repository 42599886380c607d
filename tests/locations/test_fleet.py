"""``edgekit bench`` on a fleet of SSH boards (issue 9): boards at the same time, one benchmark per board at a time.

Two "boards" are two real sshd processes on 127.0.0.1 (different ports, each its own host key and
known_hosts entry), declared as device profiles the way users declare theirs; each board's python is
this interpreter behind a small wrapper that logs the runner's runs on that board. One board's sshd is
killed while its second model runs: its cells from then on fail with the reason, every other row is complete.
"""

from __future__ import annotations

import getpass
import json
import shutil
import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import pytest
from tests.helpers.sshd import SSHD_MISSING, running_sshd

from edgekit.bench.tiny import write_tiny_onnx
from edgekit.cli import main
from edgekit.runtime.host import machine

pytestmark = [pytest.mark.skipif(SSHD_MISSING is not None, reason=SSHD_MISSING or "")]
FAST = ["--min-runs", "5", "--min-seconds", "0.02", "--warmup-runs", "1"]
BOARDS = ("board-a", "board-b")
DROPS = "board-b"  # its sshd is killed during its second model
MODELS = ("m0", "m1", "m2")

# A board's python: this interpreter. A runner run takes the board's "busy" folder (a second run at the same
# time on the same board is logged in "overlaps"), records its remote folder, and on run number KILL_AT stops
# the board's sshd (the test's own process, by PID): the open session finishes, new connections are refused.
WRAPPER = """#!/bin/sh
B='{board}'
case "$1" in
  *edgekit-runner.pyz)
    mkdir "$B/busy" 2>/dev/null || echo overlap >> "$B/overlaps"
    dirname "$1" >> "$B/remote-dirs"
    echo run >> "$B/runs"
    if [ "$(wc -l < "$B/runs")" -eq {kill_at} ]; then kill "$(cat "$B/master.pid")"; fi
    '{python}' "$@"; rc=$?
    rmdir "$B/busy"
    exit $rc;;
esac
exec '{python}' "$@"
"""


def _profile(name: str, server, python: Path) -> str:  # noqa: ANN001
    return (f'name = "{name}"\narch = "{machine()}"\nlocation = "ssh"\nruntimes = ["onnxruntime"]\n'
            "threads = [1]\nbatch_sizes = [1]\n\n[ssh]\n"
            f'host = "127.0.0.1"\nuser = "{getpass.getuser()}"\nport = {server.port}\nkey = "{server.key}"\n'
            f'known_hosts = "{server.known_hosts}"\npython = "{python}"\ntimeout_s = 120\nconnect_timeout_s = 5\n')


def _interval(row: dict) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(row["started"]), datetime.fromisoformat(row["finished"])


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_fleet_runs_boards_at_once_one_benchmark_per_board_and_a_dropped_board_fails_only_its_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "here.toml").write_text(f'name = "here"\narch = "{machine()}"\nruntimes = ["onnxruntime"]\n'
                                       "threads = [1]\nbatch_sizes = [1]\n")
    models = [write_tiny_onnx(tmp_path / f"{m}.onnx", seed=i) for i, m in enumerate(MODELS)]
    out = tmp_path / "run"
    with ExitStack() as stack:
        servers = {b: stack.enter_context(running_sshd(tmp_path / b)) for b in BOARDS}
        for b, server in servers.items():
            (server.dir / "master.pid").write_text(str(server.proc.pid))
            python = server.dir / "python"
            python.write_text(WRAPPER.format(board=server.dir, kill_at=2 if b == DROPS else 0, python=sys.executable))
            python.chmod(0o755)
            (devices / f"{b}.toml").write_text(_profile(b, server, python))
        targets = [a for name in ("here", *BOARDS) for a in ("--target", name)]
        rc = main(["bench", *map(str, models), "--dataset", "digits", "--test-limit", "16", *targets,
                   "--devices-dir", str(devices), "--out", str(out), *FAST])
        assert servers[DROPS].proc.poll() is not None  # the board really dropped
        assert all(servers[b].proc.poll() is None for b in BOARDS if b != DROPS)
    try:
        report = json.loads((out / "report.json").read_text())
        rows = report["benchmarks"]
        ids = {a["name"]: a["id"] for a in report["artifacts"]}
        # deterministic order: artifact × target as asked, whatever order the cells finished in
        assert [(r["artifact_id"], r["target"]) for r in rows] == [(ids[m], t) for m in MODELS
                                                                  for t in ("here", *BOARDS)]
        by_target = {t: [r for r in rows if r["target"] == t] for t in ("here", *BOARDS)}
        for t in ("here", "board-a"):
            assert all(r["status"] == "ok" and r["latency_ms"]["p50"] > 0 for r in by_target[t]), by_target[t]
        first, second, third = by_target[DROPS]
        assert first["status"] == "ok"
        assert second["status"] == "failed" and "Connection refused" in second["reason"]
        assert third["status"] == "failed" and third["reason"].startswith("not run: board-b stopped answering")
        assert third["started"] is None  # not tried again once the board was gone

        # one benchmark per board at a time, boards at the same time, this machine alone
        ran = {t: [_interval(r) for r in by_target[t] if r["started"]] for t in by_target}
        for t, spans in ran.items():
            assert not any(_overlap(a, b) for i, a in enumerate(spans) for b in spans[i + 1:]), t
        assert any(_overlap(a, b) for i, x in enumerate(BOARDS) for y in BOARDS[i + 1:]
                   for a in ran[x] for b in ran[y]), ran
        assert not any(_overlap(a, b) for a in ran["here"] for b in (s for x in BOARDS for s in ran[x]))
        for b in BOARDS:  # the boards' own record: never two runner runs at once on one board
            assert not (servers[b].dir / "overlaps").exists(), b
        assert (servers[DROPS].dir / "runs").read_text().count("run") == 2

        # the exit code follows bench's rule (a failed row fails the run); the report says where it ran
        assert rc == 1 and report["status"] == "failed"
        summary = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgekit: bench:")]
        assert len(summary) == 1 and "2 of 9 benchmark rows failed (board-b)" in summary[0], summary
        assert report["executor"] == {"kind": "inprocess", "address": "", "nodes": 1, "workers": 2}
        assert "## Where it ran\n\nRan in this process (1 node, 2 workers)." in (out / "report.md").read_text()
    finally:  # the dropped board could not clean its remote folder (this machine's /tmp)
        for b in BOARDS:
            log = servers[b].dir / "remote-dirs"
            for d in log.read_text().split() if log.exists() else []:
                if Path(d).name.startswith("edgekit."):
                    shutil.rmtree(d, ignore_errors=True)


def test_map_by_key_runs_keys_at_once_and_each_key_in_order() -> None:
    """The fleet's lock (edgekit.executor.map_by_key): results in item order, one item per key at a time."""
    import threading
    import time

    from edgekit.executor import map_by_key

    lock = threading.Lock()
    running: dict[str, int] = {}
    log: list[tuple[str, int, int]] = []  # (key, item, lanes running when it started)

    def work(item: tuple[str, int]) -> int:
        key, n = item
        with lock:
            running[key] = running.get(key, 0) + 1
            assert running[key] == 1, f"two items of {key} at once"
            log.append((key, n, sum(1 for v in running.values() if v)))
        time.sleep(0.05)
        with lock:
            running[key] -= 1
        if n == 99:
            raise ValueError("lane b broke")
        return n * 10

    items = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5), ("a", 6)]
    assert map_by_key(work, items, key=lambda i: i[0]) == [10, 20, 30, 40, 50, 60]
    assert [n for k, n, _ in log if k == "a"] == [1, 3, 6]  # each key in its order
    assert max(lanes for _, _, lanes in log) > 1  # keys at the same time
    log.clear()
    with pytest.raises(ValueError, match="lane b broke"):
        map_by_key(work, [("a", 1), ("b", 99), ("b", 7), ("a", 2)], key=lambda i: i[0])
    started = [n for _, n, _ in log]
    assert 2 in started and 7 not in started  # lane a finished; lane b stopped at its error
