"""``edgekit bench`` on a fleet of SSH boards: boards at the same time, one benchmark per board at a time.

Two "boards" are two real sshd processes on 127.0.0.1 (different ports, each its own host key and
known_hosts entry), declared as device profiles the way users declare theirs; each board's python is
this interpreter behind a small wrapper that logs the runner's runs on that board. One board's sshd is
killed while its second model runs: its cells from then on fail with the reason, every other row is complete.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Iterable

import pytest
from tests.helpers.sshd import SSHD_MISSING, Sshd, running_sshd

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
  -c) echo probe >> "$B/probes";;
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
        assert (servers[DROPS].dir / "probes").read_text().count("probe") == 1  # asked once, not per cell

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


# A board's python whose runner runs do {action} first (same logging as WRAPPER: "probes", "runs").
ACTING_WRAPPER = """#!/bin/sh
B='{board}'
case "$1" in
  -c) echo probe >> "$B/probes";;
  *edgekit-runner.pyz)
    echo run >> "$B/runs"
    dirname "$1" >> "$B/remote-dirs"
    {action};;
esac
exec '{python}' "$@"
"""
GARBAGE = """printf '[1, 2]' > "$3"; exit 0"""  # valid JSON, not a result: the runner's output is garbage
KILL_SSHD = 'kill "$(cat "$B/master.pid")"'  # this session finishes; the board refuses new connections
HANG = """echo $$ >> "$B/hung"; exec sleep 600"""  # a runner that never answers (until its timeout_s)


def _remove_remote_dirs(servers: Iterable[Sshd]) -> None:
    """The boards' remote folders (this machine's /tmp) that a dropped or interrupted run could not remove."""
    for server in servers:
        log = server.dir / "remote-dirs"
        for d in log.read_text().split() if log.exists() else []:
            if Path(d).name.startswith("edgekit."):
                shutil.rmtree(d, ignore_errors=True)


def _acting_board(stack: ExitStack, folder: Path, action: str) -> tuple[Sshd, Path]:
    server = stack.enter_context(running_sshd(folder))
    (server.dir / "master.pid").write_text(str(server.proc.pid))
    python = server.dir / "python"
    python.write_text(ACTING_WRAPPER.format(board=server.dir, action=action, python=sys.executable))
    python.chmod(0o755)
    return server, python


def test_an_unexpected_error_on_one_board_fails_only_its_rows_and_a_gone_board_is_not_probed_again(
        tmp_path: Path) -> None:
    """Board "odd" answers garbage (a JSON list, not a result): its cells fail with the error's type and
    message, and the other boards' rows are all there. Board "gone" (two profiles on one sshd) stops
    answering during its first runner run: every other cell of that board fails without probing it again."""
    devices = tmp_path / "devices"
    devices.mkdir()
    models = [write_tiny_onnx(tmp_path / f"{m}.onnx", seed=i) for i, m in enumerate(MODELS[:2])]
    out = tmp_path / "run"
    with ExitStack() as stack:
        servers: dict[str, Sshd] = {}
        stack.callback(lambda: _remove_remote_dirs(servers.values()))  # the gone board could not clean its own
        for board, action in (("odd", GARBAGE), ("good", ":"), ("gone", KILL_SSHD)):
            servers[board], python = _acting_board(stack, tmp_path / board, action)
            (devices / f"{board}.toml").write_text(_profile(board, servers[board], python))
        (devices / "gone2.toml").write_text(_profile("gone2", servers["gone"], servers["gone"].dir / "python"))
        names = ("odd", "good", "gone", "gone2")
        rc = main(["bench", *map(str, models), "--dataset", "digits", "--test-limit", "16",
                   *[a for n in names for a in ("--target", n)], "--devices-dir", str(devices), "--out", str(out),
                   *FAST])
        assert servers["gone"].proc.poll() is not None  # the board really dropped
        report = json.loads((out / "report.json").read_text())
        rows = report["benchmarks"]
        ids = [a["id"] for a in report["artifacts"]]
        assert [(r["artifact_id"], r["target"]) for r in rows] == [(i, n) for i in ids for n in names]
        by_target = {n: [r for r in rows if r["target"] == n] for n in names}
        assert all(r["status"] == "ok" and r["latency_ms"]["p50"] > 0 for r in by_target["good"]), by_target["good"]
        for r in by_target["odd"]:
            assert r["status"] == "failed" and r["reason"].startswith("AttributeError: "), r
        first, *rest = by_target["gone"] + by_target["gone2"]
        assert first["status"] == "failed" and "Connection refused" in first["reason"], first
        for r in rest:  # gone2 was never probed: its cells are failed "not run", not skipped by a probe of a dead board
            assert r["status"] == "failed" and r["reason"].startswith("not run: gone stopped answering"), r
            assert r["started"] is None
        assert (servers["odd"].dir / "runs").read_text().count("run") == 2  # odd's second cell still ran
        assert (servers["gone"].dir / "runs").read_text().count("run") == 1
        assert (servers["gone"].dir / "probes").read_text().count("probe") == 1
        assert rc == 1 and report["status"] == "failed"


def test_sigterm_during_a_fleet_run_stops_it_without_waiting_for_the_boards(tmp_path: Path) -> None:
    """Both boards' runners hang (timeout_s 300): SIGTERM to edgekit bench ends it in seconds with 143,
    not after the ssh calls' timeouts (the lanes' ssh children are terminated)."""
    devices = tmp_path / "devices"
    devices.mkdir()
    model = write_tiny_onnx(tmp_path / "m0.onnx", seed=0)
    with ExitStack() as stack:
        servers: dict[str, Sshd] = {}
        for board in ("hang-a", "hang-b"):
            servers[board], python = _acting_board(stack, tmp_path / board, HANG)
            (devices / f"{board}.toml").write_text(_profile(board, servers[board], python)
                                                   .replace("timeout_s = 120", "timeout_s = 300"))
        cmd = [sys.executable, "-m", "edgekit", "bench", str(model), "--dataset", "digits", "--test-limit", "16",
               "--target", "hang-a", "--target", "hang-b", "--devices-dir", str(devices),
               "--out", str(tmp_path / "run"), *FAST]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 240
            while not all((s.dir / "hung").exists() for s in servers.values()):  # both runners started
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
            time.sleep(0.5)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
            assert time.monotonic() - sent < 30
            assert rc == 143
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for s in servers.values():  # the hung "runners" on the boards (this machine)
                for pid in (s.dir / "hung").read_text().split() if (s.dir / "hung").exists() else []:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
            _remove_remote_dirs(servers.values())


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
