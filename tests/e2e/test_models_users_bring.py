"""A trained BatchNorm model as a user brings it (plain Keras 3 file): measured as brought, fine-tuning kept only
when better, and every file judged against the model as brought."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def brought(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """The compact zoo model trained by Keras 3 on digits (edgekit's own splits) and saved as a .keras file, with
    Keras 3's own validation and test accuracy."""
    from edgekit.data.datasets import load_dataset
    from tests.helpers.brought import train_keras3

    ds = load_dataset("digits", seed=0)
    path = tmp_path_factory.mktemp("brought") / "compact.keras"
    acc = train_keras3("compact", {"x_train": ds.x_train, "y_train": ds.y_train, "x_val": ds.x_val, "y_val": ds.y_val,
                                   "x_test": ds.x_test, "y_test": ds.y_test}, path, classes=ds.num_classes, epochs=15,
                       batch_size=32, learning_rate=3e-3)
    assert acc["val"] > 0.8, acc  # a trained model
    return path, acc


def _stage(tmp_path: Path, model: Path, epochs: int, learning_rate: float = 1e-3):  # type: ignore[no-untyped-def]
    from edgekit.data.datasets import load_dataset
    from edgekit.stages import Context
    from edgekit.stages.train import TrainConfig, run_train

    ctx = Context(load_dataset("digits", seed=0), workdir=tmp_path)
    out = tmp_path / "baseline.keras"
    return run_train(None, TrainConfig(epochs=epochs, learning_rate=learning_rate, model=str(model)), ctx, out), out


def test_fine_tuning_that_hurts_is_dropped_and_the_weights_are_the_model_as_brought(
        brought: tuple[Path, dict[str, float]], tmp_path: Path) -> None:
    from edgekit.models.files import load_keras_file
    from edgekit.models.loading import load_user_model

    path, acc = brought
    output, out = _stage(tmp_path, path, epochs=1, learning_rate=0.5)  # a tenth of it (0.05, Adam) ruins the model
    m = output.metrics
    assert m["as_brought"]["val_accuracy"] == pytest.approx(acc["val"], abs=1e-3)  # a plain Keras 3 evaluation
    assert m["as_brought"]["accuracy"] == pytest.approx(acc["test"], abs=1e-3)
    assert m["fine_tuning"]["action"] == "dropped" and m["fine_tuning"]["val_after"] < m["fine_tuning"]["val_before"]
    original = load_user_model(path).model.get_weights()
    for a, b in zip(original, load_keras_file(out).get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # bit-identical


def test_fine_tuning_that_helps_is_kept(tmp_path: Path) -> None:
    from edgekit.data.datasets import load_dataset
    from tests.helpers.brought import train_keras3

    ds = load_dataset("digits", seed=0)
    weak = tmp_path / "weak.keras"  # two epochs on 600 images: far from converged, so fine-tuning has something to add
    train_keras3("compact", {"x_train": ds.x_train[:600], "y_train": ds.y_train[:600]}, weak, classes=10, epochs=2)
    output, _ = _stage(tmp_path, weak, epochs=3, learning_rate=1e-2)
    d = output.metrics["fine_tuning"]
    assert d["action"] == "kept" and d["val_after"] > d["val_before"]


def test_epochs_zero_uses_the_model_as_it_is(brought: tuple[Path, dict[str, float]], tmp_path: Path) -> None:
    output, _ = _stage(tmp_path, brought[0], epochs=0)
    assert output.metrics["fine_tuning"]["action"] == "skipped" and output.metrics["history"] == {}


def test_compress_judges_every_file_against_the_model_as_brought(brought: tuple[Path, dict[str, float]],
                                                                 tmp_path: Path) -> None:
    path, acc = brought
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgekit", "--quiet", "compress", "--model", str(path), "--dataset", "digits",
           "--epochs", "1", "--learning-rate", "0.5", "--prune-epochs", "1", "--no-bench", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads((out / "report.json").read_text())
    brought_val = report["as_brought"]["val_accuracy"]
    assert brought_val == pytest.approx(acc["val"], abs=1e-3) and report["as_brought"]["accuracy"] == pytest.approx(
        acc["test"], abs=1e-3)
    assert report["as_brought"]["fine_tuning"]["action"] == "dropped"
    ref = report["budget"]["reference"]
    assert ref["model"] == "as brought" and ref["val_accuracy"] == pytest.approx(brought_val)
    baseline = next(a for a in report["artifacts"] if a["id"] == report["baseline_id"])
    assert baseline["val_accuracy"] == pytest.approx(brought_val)
    certified = [a for a in report["artifacts"] if "val_drop_bound" in a["metrics"]]  # deployable files
    assert certified
    for a in certified:  # paired image by image with the model as brought on the certification images
        c = a["metrics"]["val_drop_bound"]
        if c["basis"] == "labelled":
            assert c["drop_pp"] == pytest.approx((c["lost"] - c["gained"]) / c["certification_size"] * 100, abs=1e-2)
        if a["name"] == "baseline-tflite":  # the model as brought, converted: anchored at it, it changes nothing
            assert c["drop_pp"] == pytest.approx(0.0, abs=0.5), c
            if c["basis"] == "unlabelled":
                assert c["disagreed"] <= 1, c
            else:
                assert c["lost"] + c["gained"] <= 1, c
    for d in report["budget"]["pruning"].get("pruned", {}).values():
        assert d["reference_val_accuracy"] == pytest.approx(brought_val)
    md = (out / "report.md").read_text()
    assert "Reference: the model as brought" in md and "Fine-tuning dropped" in md
