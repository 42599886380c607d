"""edgekit tune: the search space, the training settings it varies, and a real 4-trial run on Ray."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from edgekit.errors import ConfigError, UsageError
from edgekit.tuning.space import Domain, default_space, load_space, max_epochs, parse_domain


# ---- search space (no training)

def test_default_space_adds_freeze_only_for_a_model() -> None:
    assert "freeze_layers" not in default_space()
    assert default_space(weighted_layers=4)["freeze_layers"] == Domain("choice", (0, 2, 3))
    assert max_epochs(default_space()) == 15


def test_user_space_replaces_default_keys(tmp_path: Path) -> None:
    f = tmp_path / "space.yaml"
    f.write_text("learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\nbatch_size: [32, 64]\nepochs: 3\n")
    space = load_space(f)
    assert space["learning_rate"] == Domain("loguniform", (1e-4, 1e-2))
    assert space["batch_size"] == Domain("choice", (32, 64))
    assert space["epochs"] == Domain("choice", (3,)) and max_epochs(space) == 3
    assert space["lr_schedule"] == default_space()["lr_schedule"]  # untouched keys keep the default


@pytest.mark.parametrize("key, raw, message", [
    ("momentum", [0.9], "unknown key 'momentum'"),
    ("epochs", {"uniform": [1, 3]}, "uniform needs"),
    ("learning_rate", {"loguniform": [0.0, 0.1]}, "low > 0"),
    ("lr_schedule", ["constant", "step"], "out of range"),
    ("label_smoothing", [1.0], "out of range"),
    ("batch_size", ["big"], "expected int"),
    ("weight_decay", {"normal": [0, 1]}, "expected one of"),
])
def test_bad_space_names_file_and_key(key: str, raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        parse_domain(key, raw, "space.yaml")
    assert str(e.value).startswith("space.yaml")


# ---- training settings the trials vary

def test_schedule_values() -> None:
    from edgekit.train.schedule import lr_at

    assert lr_at(5, 1e-3, "constant", 0, 100) == 1e-3
    assert lr_at(0, 1e-3, "constant", 10, 100) == pytest.approx(1e-4)  # warm-up starts low
    assert lr_at(9, 1e-3, "cosine", 10, 100) == pytest.approx(1e-3)
    assert lr_at(55, 1e-3, "cosine", 10, 100) == pytest.approx(5e-4)  # half-way through the decay
    assert lr_at(100, 1e-3, "cosine", 10, 100) == pytest.approx(0.0, abs=1e-12)


def test_keras_schedule_follows_reference() -> None:
    from edgekit.train.schedule import learning_rate, lr_at

    assert learning_rate(1e-3) == 1e-3  # the reference recipe stays a plain float
    sched = learning_rate(2e-3, "cosine", 5, 50)
    for step in (0, 3, 5, 20, 49):
        assert float(sched(step)) == pytest.approx(lr_at(step, 2e-3, "cosine", 5, 50), rel=1e-5, abs=1e-9)
    with pytest.raises(UsageError, match="lr_schedule"):
        learning_rate(1e-3, "step", 0, 10)


def test_fit_settings_reject_bad_values() -> None:
    from edgekit.train.trainer import FitSettings

    with pytest.raises(UsageError, match="label_smoothing"):
        FitSettings(1, label_smoothing=1.0)
    with pytest.raises(UsageError, match="weight_decay"):
        FitSettings(1, weight_decay=-0.1)


def test_smoothed_loss_matches_categorical() -> None:
    import numpy as np

    from edgekit._tf import keras
    from edgekit.train.trainer import smoothed_sparse_crossentropy

    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    y = np.array([0, 2])
    got = np.asarray(smoothed_sparse_crossentropy(0.1, False)(y, p))
    ref = np.asarray(keras().losses.categorical_crossentropy(np.eye(3)[y], p, label_smoothing=0.1))
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert math.isfinite(float(got.mean()))


def test_freeze_leading_layers() -> None:
    from edgekit.models.reference import build_reference_cnn
    from edgekit.train.trainer import freeze_leading_layers, weighted_layer_count

    model = build_reference_cnn()
    assert weighted_layer_count(model) == 4
    assert freeze_leading_layers(model, 2) == ["conv1", "conv2"]
    assert [layer.trainable for layer in model.layers if layer.weights] == [False, False, True, True]


def test_recipe_keeps_compress_keys_only() -> None:
    from edgekit.tuning.run import recipe_of

    recipe, unsupported = recipe_of({"epochs": 3, "batch_size": 32, "learning_rate": 2e-3, "augment_strength": 0.0,
                                     "label_smoothing": 0.0, "lr_schedule": "constant"}, seed=0)
    assert recipe["epochs"] == 3 and recipe["batch_size"] == 32 and recipe["augment"] is False and recipe["seed"] == 0
    assert not unsupported  # defaults of settings compress may not know are simply left out


# ---- a real run (Ray Tune on an embedded local Ray)

@pytest.mark.slow
@pytest.mark.ray
def test_tune_writes_a_recipe_compress_accepts(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs Ray: pip install -e '.[dev]' (ray[tune])")
    from edgekit.cli import main
    from edgekit.config import make_config

    space = tmp_path / "space.yaml"
    space.write_text("epochs: [1, 2]\nbatch_size: [64]\nlearning_rate: {loguniform: [1.0e-3, 3.0e-3]}\n"
                     "augment_strength: [0.0, 0.5]\n")
    out = tmp_path / "tuned"
    assert main(["-q", "tune", "--dataset", "digits", "--train-limit", "600", "--test-limit", "200", "--trials", "4",
                 "--space", str(space), "--workers", "2", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    tune = report["tune"]
    assert len(tune["trials"]) == 4 and tune["executor"]["kind"] == "local" and tune["executor"]["workers"] == 2
    for t in tune["trials"]:
        assert t["status"] in ("completed", "stopped") and len(t["history"]) == t["epochs_run"] >= 1
    finished = [t for t in tune["trials"] if t["status"] == "completed"]
    best = tune["best"]
    assert best["val_accuracy"] == max(t["val_accuracy"] for t in finished)  # chosen on validation only
    assert 0.0 < best["test_accuracy"] <= 1.0
    assert (out / "report.md").read_text() and (out / "report.html").read_text()

    cfg = make_config(out / "recipe.yaml")  # accepted as it is
    assert cfg.epochs == best["recipe"]["epochs"] and cfg.learning_rate == pytest.approx(best["recipe"]["learning_rate"])
    run = tmp_path / "compressed"
    assert main(["-q", "compress", "--recipe", str(out / "recipe.yaml"), "--dataset", "digits", "--train-limit", "600",
                 "--test-limit", "200", "--sparsity", "0", "--quantization", "ptq-float16", "--no-bench",
                 "--out", str(run)]) == 0
    assert json.loads((run / "report.json").read_text())["status"] == "ok"


def test_tuned_settings_reach_the_train_stage(tmp_path: Path) -> None:
    """A tuned recipe's training settings compress has no flat key for go in the train: section and reach TrainConfig."""
    from edgekit.config import make_config
    from edgekit.tuning.run import recipe_of, recipe_text

    recipe, unsupported = recipe_of({"epochs": 4, "batch_size": 128, "learning_rate": 1.5e-3, "lr_schedule": "cosine",
                                     "warmup_epochs": 1, "label_smoothing": 0.1, "weight_decay": 0.004,
                                     "augment_strength": 0.5, "freeze_layers": 0}, seed=0)
    assert not unsupported
    f = tmp_path / "recipe.yaml"
    best = {"id": "3", "trials": 4, "val_accuracy": 0.9, "test_accuracy": 0.9}
    f.write_text(recipe_text(recipe, unsupported, best, tmp_path))
    train = make_config(f).stage_config("train")
    assert (train.lr_schedule, train.warmup_epochs, train.label_smoothing, train.weight_decay) == ("cosine", 1, 0.1, 0.004)
    assert train.augment and train.augment_strength == 0.5 and train.epochs == 4 and train.batch_size == 128
