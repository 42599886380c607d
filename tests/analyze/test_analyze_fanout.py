"""The per-layer analysis fanned out over a real embedded Ray gives the same table as in process."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.models import train_compact_cnn

SMALL = {"sparsities": (0.5, 0.9), "structured": (0.25,), "calibration_samples": 64}
VARYING = ("seconds", "executor", "model")  # what may differ between two runs of the same analysis


def _same(a: Any) -> Any:
    """``a`` as JSON without what may differ between two runs (at any depth: an analysis nests the one before)."""
    if isinstance(a, dict):
        return {k: _same(v) for k, v in a.items() if k not in VARYING}
    if isinstance(a, (list, tuple)):
        return [_same(v) for v in a]
    return a


@pytest.fixture(scope="module")
def compact() -> tuple[Any, Any]:
    return train_compact_cnn("digits", train_limit=600, epochs=1)


@pytest.mark.slow
@pytest.mark.ray
def test_fanned_out_analysis_equals_in_process(compact: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    from edgekit.analyze.parallel import analysis_executor
    from edgekit.analyze.sensitivity import SensitivityConfig, analyze_dataset
    from edgekit.executor import open_executor

    model, ds = compact
    cfg = SensitivityConfig(**SMALL)
    local = analyze_dataset(model, ds, cfg)
    with caplog.at_level(logging.INFO, logger="edgekit.analyze.sensitivity"), open_executor(workers=2) as ex:
        explicit = analyze_dataset(model, ds, cfg, executor=ex)
        with analysis_executor(ex):  # how compress's driver-side stages get it (edgekit/fanout.py)
            ambient = analyze_dataset(model, ds, cfg)
    fanned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("analysis: ")]
    assert fanned == [f"analysis: {len(local['layers'])} layer(s) on local (2 worker(s))"] * 2
    assert _same(explicit) == _same(local) == _same(ambient)
    assert {r["name"] for r in local["layers"]} == {"stem", "dw1", "pw1", "sep2", "classifier"}


@pytest.mark.slow
@pytest.mark.ray
def test_analyze_cli_workers_writes_the_in_process_json_and_the_executor(compact: tuple[Any, Any],
                                                                        tmp_path: Path) -> None:
    from edgekit.analyze.sensitivity import SensitivityConfig, analyze_dataset
    from edgekit.data.datasets import load_dataset

    model, _ = compact
    path = tmp_path / "compact.keras"
    model.save(path)
    out = tmp_path / "an"
    done = subprocess.run([sys.executable, "-m", "edgekit", "analyze", str(path), "--dataset", "digits",
                           "--train-limit", "600", "--sparsities", "0.5,0.9", "--structured", "0.25",
                           "--calibration-samples", "64", "--workers", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    fanned = json.loads((out / "analysis.json").read_text())
    assert fanned["executor"]["kind"] == "local" and fanned["executor"]["workers"] == 2
    ds = load_dataset("digits", train_limit=600, seed=0)  # what the command loads
    local = analyze_dataset(model, ds, SensitivityConfig(**SMALL))
    assert _same(fanned) == _same(local)


def test_analyze_cli_refuses_negative_workers(tmp_path: Path) -> None:
    out = tmp_path / "an"
    done = subprocess.run([sys.executable, "-m", "edgekit", "analyze", str(tmp_path / "m.keras"), "--dataset",
                           "digits", "--workers", "-1", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--workers" in done.stderr
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.ray
def test_compress_workers_fans_the_budgeted_prunes_analysis_out_with_the_same_numbers(tmp_path: Path) -> None:
    """`compress --workers 2`: the budgeted prune (run in the driver) measures its layers on the workers and the
    report's analysis, artifact ids and file hashes equal the in-process run's (separate caches)."""
    import os

    from edgekit.fsutil import sha256_file

    flags = ["--dataset", "digits", "--train-limit", "600", "--test-limit", "200", "--epochs", "1",
             "--prune-epochs", "1", "--quantization", "ptq-int8", "--no-bench"]
    runs = {}
    for label, extra in (("local", []), ("fanned", ["--workers", "2"])):
        verbosity = "-v" if extra else "-q"  # the fanned run logs where its analysis ran
        env = {**os.environ, "EDGEKIT_CACHE_DIR": str(tmp_path / f"cache-{label}")}
        out = tmp_path / label
        done = subprocess.run([sys.executable, "-m", "edgekit", verbosity, "compress", *flags, *extra, "--out", str(out)],
                              capture_output=True, text=True, timeout=900, env=env)
        assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: a run whose verdict failed still wrote its report
        if extra:
            assert "layer(s) on local (2 worker(s))" in done.stderr + done.stdout
        report = json.loads((out / "report.json").read_text())
        files = {a["name"]: (a["id"], sha256_file(out / a["path"])) for a in report["artifacts"]}
        runs[label] = (files, _same(report["analysis"]), report.get("executor"))
    (local, local_analysis, local_ex), (fanned, fanned_analysis, fanned_ex) = runs["local"], runs["fanned"]
    assert local_ex in (None, {"address": "", "kind": "inprocess", "nodes": 1, "workers": 1})
    assert fanned_ex["kind"] == "local" and fanned_ex["workers"] == 2
    assert fanned_analysis == local_analysis and local_analysis["layers"]
    assert fanned == local
