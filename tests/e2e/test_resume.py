"""Kill and resume: SIGKILL a compress run during training, during an export and during
the benchmark, then run the same command again. The second run removes the dead run's partial
folder, reuses what the cache already holds, and writes the same artifacts (ids and sha256) as a
run that was never interrupted."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

pytestmark = pytest.mark.slow

ARGS = ["compress", "--dataset", "digits", "--epochs", "1", "--train-limit", "300", "--test-limit", "100",
        "--sparsity", "0", "--bench-min-runs", "50", "--bench-min-seconds", "0.5", "--seed", "3"]


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "EDGEKIT_OFFLINE": "1", "EDGEKIT_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(out: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgekit", *ARGS, "--out", str(out)], env=_env(cache),
                          capture_output=True, text=True, timeout=900)


def _artifacts(out: Path) -> dict[str, tuple[str, str]]:
    report = json.loads((out / "report.json").read_text())
    found = {a["name"]: (a["id"], a["sha256"]) for a in report["artifacts"]}
    for a in report["artifacts"]:  # the report's digest is the file's
        assert hashlib.sha256((out / a["path"]).read_bytes()).hexdigest() == a["sha256"]
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, tuple[str, str]]]:
    d = tmp_path_factory.mktemp("reference")
    r = _run(d / "run", d / "cache")
    assert (d / "run" / "report.json").is_file(), r.stderr[-2000:]
    return r.returncode, _artifacts(d / "run")


def _entries(cache: Path) -> list[Path]:
    root = cache / "artifacts"
    return [p for p in root.iterdir() if not p.name.startswith(".")] if root.is_dir() else []


def _training(out: Path, cache: Path) -> bool:  # the run folder is being assembled, nothing is cached yet
    return any(out.parent.glob(f".{out.name}.partial-*/.work/*")) and not _entries(cache)


def _exporting(out: Path, cache: Path) -> bool:  # the trained model is cached, its exports are not
    return len(_entries(cache)) == 1


def _benchmarking(out: Path, cache: Path) -> bool:  # every stage is cached and the models copied into the run
    return any(out.parent.glob(f".{out.name}.partial-*/models/*"))


@pytest.mark.parametrize(("phase", "when", "delay"), [("training", _training, 0.5), ("export", _exporting, 0.0),
                                                      ("benchmark", _benchmarking, 2.0)])
def test_kill_and_resume(tmp_path: Path, reference: tuple[int, dict[str, tuple[str, str]]], phase: str,
                         when: Callable[[Path, Path], bool], delay: float) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", *ARGS, "--out", str(out)], env=_env(cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not when(out, cache):
        assert proc.poll() is None, f"the run ended before the {phase} phase"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partials = list(tmp_path.glob(".run.partial-*"))
    assert partials and not out.exists()  # SIGKILL runs no cleanup: the partial folder stays behind
    cached_before = {p.name for p in _entries(cache)}

    again = _run(out, cache)
    _, expected = reference
    assert again.returncode in (0, 1) and (out / "report.json").is_file(), again.stderr[-2000:]
    assert not any(p.exists() for p in partials), "the dead run's partial folder was not removed"
    assert not list(tmp_path.glob(".run.*")), sorted(p.name for p in tmp_path.iterdir())
    assert _artifacts(out) == expected  # same ids, same bytes as the uninterrupted run
    assert cached_before <= {p.name for p in _entries(cache)}
    for a_id in cached_before:  # what was cached before the kill was reused, not recomputed
        assert f"(cached {a_id})" in again.stderr, again.stderr[-2000:]
