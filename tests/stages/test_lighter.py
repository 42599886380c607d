"""The budgeted prune's fallback (edgekit.stages.prune): which held choice is the lighter one, and the
``prune.lighter`` stage that exports it as made from the trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgekit.artifact import Artifact
from edgekit.compression.budget import BudgetDecision, HeldChoice
from edgekit.stages import Context, Skipped
from edgekit.stages.prune import LIGHTER_FILE, LighterConfig, lighter_choice, run_lighter


def _decision(action: str, runner_up: HeldChoice | None = None, per_layer: dict[str, float] | None = None) -> Any:
    return BudgetDecision("s", action, 1.0, 0.9, 0.9, 0.9, per_layer or {"dense1": 0.5},  # type: ignore[arg-type]
                          runner_up=runner_up)


def test_the_lighter_choice_is_the_next_held_one_below_the_kept_one() -> None:
    mag_second = HeldChoice("magnitude-2", {"dense1": 0.7}, 0.9)
    struct_second = HeldChoice("structured-2", {"conv2": 0.25}, 0.9)
    # the magnitude search's runner-up, on the structured model it kept
    model, what = lighter_choice(_decision("applied"), _decision("applied", mag_second), "structured") or ("", "")
    assert model == "magnitude-2" and what == "magnitude runner-up (dense1 0.7)"
    # one magnitude choice held: the structured model alone is lighter
    model, what = lighter_choice(_decision("applied", struct_second, {"conv2": 0.5}), _decision("backed_off"),
                                 "structured") or ("", "")
    assert model == "structured" and what.startswith("the structured choice alone (conv2 0.5")
    # magnitude dropped: the structured search's runner-up
    model, _ = lighter_choice(_decision("applied", struct_second), _decision("dropped"), "structured") or ("", "")
    assert model == "structured-2"
    # one held choice in all, or none: nothing lighter than it but the trained model (the baseline's files)
    assert lighter_choice(None, _decision("applied"), "trained") is None
    assert lighter_choice(_decision("dropped"), _decision("dropped"), "trained") is None


def _artifact(a_id: str, stage: str, path: Path, parent: str | None, metrics: dict[str, Any] | None = None) -> Artifact:
    return Artifact(a_id, stage, "keras", "fp32", path, parent, {}, metrics or {}, None, a_id)


def test_the_stage_exports_the_side_file_as_made_from_the_trained_model(tmp_path: Path) -> None:
    from edgekit._tf import keras
    from edgekit.models.files import load_keras_file, save_keras

    k = keras()

    def tiny(units: int) -> Any:
        return k.Sequential([k.layers.Input((4,)), k.layers.Dense(units), k.layers.Dense(2)])

    trained = _artifact("t", "train", save_keras(tiny(8), tmp_path / "t" / "model.keras"), None)
    pruned_dir = tmp_path / "p"
    pruned = _artifact("p", "prune.budgeted", save_keras(tiny(2), pruned_dir / "model.keras"), "t",
                       {"lighter": "magnitude runner-up (dense 0.5)"})
    save_keras(tiny(5), pruned_dir / LIGHTER_FILE)
    ctx = Context(None, tmp_path / "work")
    ctx.artifacts.update({"t": trained, "p": pruned})
    out = run_lighter(pruned, LighterConfig(), ctx, tmp_path / "l.keras")
    assert out.made_from is trained and out.metrics["lighter"] == "magnitude runner-up (dense 0.5)"
    assert load_keras_file(tmp_path / "l.keras").layers[0].units == 5
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(load_keras_file(tmp_path / "l.keras")(x), load_keras_file(pruned_dir / LIGHTER_FILE)(x))
    # no side file (no other choice held): nothing to add, the step is left out rather than repeat the baseline
    (pruned_dir / LIGHTER_FILE).unlink()
    with pytest.raises(Skipped, match="no other pruning choice held"):
        run_lighter(_artifact("p", "prune.budgeted", pruned.path, "t"), LighterConfig(), ctx, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_a_left_out_step_leaves_out_the_steps_made_from_it(tmp_path: Path) -> None:
    from edgekit.artifact import ModelMeta
    from edgekit.cache import ArtifactCache
    from edgekit.pipeline import _Runner
    from edgekit.plan import Step
    from edgekit.stages import register_stage, remove_stage
    from edgekit.stages.export import ExportTFLiteConfig

    def nothing(parent: Any, cfg: Any, ctx: Any, out: Path) -> Any:
        raise Skipped("nothing to add")

    register_stage("test.nothing", LighterConfig, consumes={"keras": "keras"}, precision="fp32",
                   description="test: always left out")(nothing)
    try:
        cache = ArtifactCache(tmp_path / "cache")
        runner = _Runner(Context(None, tmp_path / "work"), cache, tmp_path, ModelMeta((), (4,)))
        runner.by_step["baseline"] = _artifact("t", "train", tmp_path / "t.keras", None)
        assert runner.run(Step("nothing", "test.nothing", LighterConfig(), "baseline")) is None
        assert runner.run(Step("nothing-tflite", "export.tflite", ExportTFLiteConfig(), "nothing")) is None
        assert runner.skipped == {"nothing": "nothing to add",
                                  "nothing-tflite": "made from nothing, which was left out"}
        assert not list((tmp_path / "cache").glob("*")) and "nothing" not in runner.by_step
    finally:
        remove_stage("test.nothing")
