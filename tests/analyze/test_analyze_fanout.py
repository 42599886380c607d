"""The per-layer analysis fanned out over a real embedded Ray gives the same table as in process (issue 9)."""

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


def _same(a: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in json.loads(json.dumps(a)).items() if k not in VARYING}


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
