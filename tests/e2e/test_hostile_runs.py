"""Whole compress runs under hostile conditions: --out on another filesystem than the cache, two
runs on one --out, SIGTERM, SIGINT during an export, and a damaged cache entry."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ARGS = ["compress", "--dataset", "digits", "--epochs", "1", "--train-limit", "300", "--test-limit", "100",
        "--no-bench", "--sparsity", "0", "--seed", "5"]


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "EDGEKIT_OFFLINE": "1", "EDGEKIT_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _start(out: Path, cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgekit", *ARGS, "--out", str(out)], env=_env(cache),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgekit", *ARGS, "--out", str(out)], env=_env(cache),
                          capture_output=True, text=True, timeout=900)


def _wait_for_partial(out: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 600
    while not any(out.parent.glob(f".{out.name}.partial-*/.work/*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before training"
        time.sleep(0.05)


def _shas(out: Path) -> dict[str, str]:
    return {a["name"]: a["sha256"] for a in json.loads((out / "report.json").read_text())["artifacts"]}


def test_out_on_another_filesystem(tmp_path: Path) -> None:
    """--out on another filesystem than the cache: files are copied across (no EXDEV, Invalid cross-device link)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem")
    out = shm / f"edgekit-run-{uuid.uuid4().hex[:8]}"
    try:
        r = _run(out, tmp_path / "cache")
        assert "Invalid cross-device link" not in r.stderr and r.returncode in (0, 1), r.stderr[-2000:]
        assert (out / "report.json").is_file() and list((tmp_path / "cache" / "artifacts").glob("*/SHA256SUMS"))
        assert not [p for p in shm.iterdir() if p.name.startswith(f".{out.name}.")]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_second_run_on_the_same_out_is_refused(tmp_path: Path) -> None:
    """A second run on an --out that a running one is writing is refused and writes nothing."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    first = _start(out, cache)
    _wait_for_partial(out, first)
    second = _run(out, tmp_path / "cache2")
    first.communicate(timeout=900)
    assert second.returncode == 2 and "another edgekit run" in second.stderr, second.stderr[-2000:]
    assert (out / "report.json").is_file() and first.returncode in (0, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]  # the second run wrote nothing


def test_sigterm_cleans_up(tmp_path: Path) -> None:
    """SIGTERM (timeout, CI cancellation, docker stop) exits 143 and leaves no .OUT.partial-PID behind."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    proc = _start(out, cache)
    _wait_for_partial(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "edgekit: terminated", err[-2000:]
    assert {p.name for p in tmp_path.iterdir()} <= {"cache"}  # no run folder, partial folder or lock file


def test_damaged_cache_entry_is_recomputed(tmp_path: Path) -> None:
    """Flipped bytes in a cached model are detected, the entry recomputed, and the run's files are the same."""
    cache = tmp_path / "cache"
    first = _run(tmp_path / "a", cache)
    assert (tmp_path / "a" / "report.json").is_file(), first.stderr[-2000:]
    model = next((cache / "artifacts").glob("*/model.keras"))
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    second = _run(tmp_path / "b", cache)
    assert second.returncode == first.returncode, second.stderr[-2000:]
    assert second.stderr.count("is damaged") == 1 and model.parent.name in second.stderr
    assert _shas(tmp_path / "b") == _shas(tmp_path / "a")  # recomputed, same bytes


def test_sigint_during_an_export_stops_the_run(tmp_path: Path) -> None:
    """SIGINT during an export (tf2onnx swallows KeyboardInterrupt) stops the run with exit 130 and leaves
    nothing but the cache."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    proc = _start(out, cache)
    deadline = time.monotonic() + 600
    while not (cache / "artifacts").is_dir() or not any((cache / "artifacts").iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its exports"
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "edgekit: interrupted", err[-2000:]
    assert {p.name for p in tmp_path.iterdir()} == {"cache"}
