"""`edgekit compress --model`: a Keras 3 `.keras` file saved with plain `keras` goes through end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("keras", minversion="3", reason="needs Keras 3 (installed with TensorFlow 2.21)")

SAVE_KERAS3 = textwrap.dedent("""
    import sys, keras
    from keras import layers as L
    keras.utils.set_random_seed(0)  # seeded: the accuracy assertion must not depend on the initial weights
    model = keras.Sequential([
        keras.Input((28, 28, 1)), L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(),
        L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(), L.Dense(32, activation="relu"), L.Dense(10),
    ])
    model.save(sys.argv[1])
    if len(sys.argv) > 2:  # a model with a Lambda layer, which is refused without --trust-model
        lam = keras.Sequential([keras.Input((28, 28, 1)), L.Lambda(lambda t: t * 2.0), L.Flatten(), L.Dense(10)])
        lam.save(sys.argv[2])
""")


@pytest.fixture(scope="module")
def keras3_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("k3")
    plain, lam = folder / "plain.keras", folder / "lambda.keras"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "0", "KERAS_BACKEND": "tensorflow"}
    r = subprocess.run([sys.executable, "-c", SAVE_KERAS3, str(plain), str(lam)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return plain, lam


def edgekit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, cwd=cwd, timeout=900)


@pytest.mark.slow
def test_keras3_model_through_compress(keras3_models: tuple[Path, Path], tmp_path: Path) -> None:
    plain, _ = keras3_models
    # 4 epochs: over seeds 0-11 this model's baseline scores 0.83-0.91 on digits (at 2 epochs 0.47-0.76), far above 0.5.
    r = edgekit("compress", "--model", str(plain), "--dataset", "digits", "--epochs", "4", "--prune-epochs", "1",
                "--sparsity", "0.5", "--max-accuracy-drop", "100",  # end to end, not the budget: an explicit
                "--bench-min-runs", "3", "--bench-min-seconds", "0.01", "--out", "run", cwd=tmp_path)  # 0.5 drops ~9 pp
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    arts = {a["name"]: a for a in report["artifacts"]}
    assert arts["baseline"]["config"]["model"] == str(plain)
    assert arts["baseline"]["metrics"]["output"] == "logits"  # the last Dense has no softmax
    assert arts["baseline"]["accuracy"] > 0.5
    assert arts["pruned-int8-onnx"]["verification"]["status"] == "ok"
    assert arts["pruned-int8-tflite"]["meta"]["output"] == "logits"
    assert report["status"] == "ok"


def test_lambda_model_needs_trust(keras3_models: tuple[Path, Path], tmp_path: Path) -> None:
    _, lam = keras3_models
    r = edgekit("compress", "--model", str(lam), "--dataset", "digits", "--out", "run", cwd=tmp_path)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.startswith("edgekit:")]
    assert len(lines) == 1 and "Lambda" in lines[0] and "--trust-model" in lines[0]
    assert not (tmp_path / "run").exists()
