"""Fine-tuning a trained model: the keep/drop decision, the budget's reference, BatchNorm frozen, the policy's
settings and the report's as-brought fields. Nothing here trains (the slow tests below fine-tune for real)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgekit.artifact import Artifact, ModelMeta
from edgekit.pipeline import reference_record
from edgekit.report.html import render_html
from edgekit.report.markdown import render_markdown
from tests.helpers.report_records import sample_report
from edgekit.train import keep


def _correct(n: int, right: list[int]) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[right] = True
    return out


def test_fine_tuning_that_loses_images_is_dropped() -> None:
    before, after = _correct(10, [0, 1, 2, 3, 4, 5, 6, 7]), _correct(10, [0, 1, 2, 3, 4, 8])
    d = keep.decide(before, after)
    assert (d.action, d.lost, d.gained) == ("dropped", 3, 1)
    assert d.val_before == pytest.approx(0.8) and d.val_after == pytest.approx(0.6) and d.change_pp == pytest.approx(-20)
    assert "worse on validation" in d.reason and "model as brought is kept" in d.reason
    assert d.to_dict()["action"] == "dropped" and d.to_dict()["change_pp"] == pytest.approx(-20)


def test_fine_tuning_that_only_swaps_images_is_dropped() -> None:
    d = keep.decide(_correct(6, [0, 1, 2]), _correct(6, [0, 1, 3]))
    assert d.action == "dropped" and "no better" in d.reason


def test_fine_tuning_that_gains_images_is_kept() -> None:
    d = keep.decide(_correct(10, [0, 1, 2]), _correct(10, [0, 1, 2, 3, 4]))
    assert (d.action, d.gained, d.lost) == ("kept", 2, 0) and "reference" in d.reason


def test_no_validation_images_keeps_the_model_as_brought() -> None:
    assert keep.decide(np.zeros(0, bool), np.zeros(0, bool)).action == "dropped"


def test_the_kept_model_is_never_below_the_model_as_brought() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        before, after = rng.random(n) < rng.random(), rng.random(n) < rng.random()
        d = keep.decide(before, after)
        reference = d.val_after if d.action == "kept" else d.val_before
        assert reference is not None and reference >= d.val_before
        assert (d.action == "kept") == (after.sum() > before.sum())


def test_epochs_zero_is_skipped_with_the_model_as_it_is() -> None:
    d = keep.skipped(0.9)
    assert d.action == "skipped" and d.val_after is None and "used as it is" in d.sentence()


def _train_artifact(metrics: dict) -> Artifact:
    return Artifact("t", "train", "keras", "fp32", Path("m.keras"), None, {}, metrics, ModelMeta(("a", "b"), (4, 4, 1)), "baseline")


def test_the_budget_reference_names_the_model_it_is() -> None:
    brought = {"val_accuracy": 0.97, "accuracy": 0.96}
    dropped = keep.decide(_correct(4, [0, 1, 2]), _correct(4, [0])).to_dict()
    kept = keep.decide(_correct(4, [0]), _correct(4, [0, 1, 2])).to_dict()
    ref = reference_record(_train_artifact({"val_accuracy": 0.97, "accuracy": 0.96, "as_brought": brought,
                                            "fine_tuning": dropped}))
    assert ref["model"] == "as brought" and ref["as_brought"] == brought and ref["fine_tuning"]["action"] == "dropped"
    assert reference_record(_train_artifact({"as_brought": brought, "fine_tuning": kept}))["model"] == "fine-tuned"
    assert reference_record(_train_artifact({"val_accuracy": 0.9}))["model"] == "trained"
    skipped = reference_record(_train_artifact({"as_brought": brought, "fine_tuning": keep.skipped(0.97).to_dict()}))
    assert skipped["model"] == "as brought"


def test_the_budget_section_says_the_reference_and_what_fine_tuning_did() -> None:
    dropped = keep.decide(_correct(4, [0, 1, 2]), _correct(4, [0])).to_dict()
    budget = {"budget_pp": 1.0, "reference": {"model": "as brought", "val_accuracy": 0.75, "accuracy": 0.7,
                                              "as_brought": {"val_accuracy": 0.75, "accuracy": 0.7},
                                              "fine_tuning": dropped}}
    md = render_markdown(dataclasses.replace(sample_report(), extra={"budget": budget}))
    assert "against the reference model" in md
    assert "Reference: the model as brought (validation 75.00 %, test 70.00 %)." in md
    assert "As brought: validation 75.00 %, test 70.00 %." in md
    assert "Fine-tuning dropped (validation 75.00 % → 25.00 %): worse on validation" in md
    page = render_html(dataclasses.replace(sample_report(), extra={"budget": budget}))
    assert "As brought: validation 75.00 %, test 70.00 %." in page
    plain = render_markdown(dataclasses.replace(sample_report(), extra={"budget": {"budget_pp": 1.0}}))
    assert "against the trained model" in plain  # no reference: as before


def test_the_report_carries_the_as_brought_record(tmp_path: Path) -> None:
    from edgekit.report.build import build_report

    class _Ds:
        def summary(self) -> dict:
            return {"name": "d"}

    fine = keep.skipped(0.9).to_dict()
    train = _train_artifact({"as_brought": {"val_accuracy": 0.9, "accuracy": 0.8}, "fine_tuning": fine})
    train = train.with_path(tmp_path / "m.keras")
    train.path.write_bytes(b"model")
    report = build_report(cfg=None, dataset=_Ds(), artifacts=[train], run_dir=tmp_path, verification={}, audits={},
                          benchmarks=[], targets=[], search=None, command="c", seconds=0.0)
    assert report["as_brought"] == {"val_accuracy": 0.9, "accuracy": 0.8, "fine_tuning": fine}


def test_frozen_batchnorm_runs_in_inference_mode_and_is_put_back() -> None:
    from edgekit.train.trainer import batchnorm_layers, frozen_batchnorm
    from tests.helpers import zoo

    model = zoo.build("compact")
    bns = batchnorm_layers(model)
    assert len(bns) == 4
    bn = bns[0]
    bn.set_weights([np.full(16, 2.0, np.float32), np.zeros(16, np.float32), np.full(16, 3.0, np.float32),
                    np.full(16, 4.0, np.float32)])  # gamma, beta, moving mean, moving variance
    x = np.random.default_rng(0).normal(size=(8, 4, 4, 16)).astype(np.float32)
    moving = 2.0 * (x - 3.0) / np.sqrt(4.0 + bn.epsilon)
    with frozen_batchnorm(model) as n:
        assert n == 4 and not any(b.trainable for b in bns)
        np.testing.assert_allclose(bn(x, training=True).numpy(), moving, rtol=1e-5, atol=1e-5)
    assert all(b.trainable for b in bns)
    assert not np.allclose(bn(x, training=True).numpy(), moving, atol=1e-3)  # batch statistics again


@pytest.mark.parametrize("wrap", ["prune", "qat"])
def test_frozen_batchnorm_reaches_inside_tfmot_wrappers(wrap: str) -> None:
    from edgekit.compression.prune import MagnitudePruneConfig, apply_pruning_wrappers
    from edgekit.stages.qat import qat_model
    from edgekit.train.trainer import batchnorm_layers, frozen_batchnorm
    from tests.helpers import zoo

    model = zoo.build("compact")
    wrapped = (apply_pruning_wrappers(model, MagnitudePruneConfig(sparsity=0.5), 10) if wrap == "prune"
               else qat_model(model, False))
    bns = batchnorm_layers(wrapped)
    assert len(bns) == 4
    with frozen_batchnorm(wrapped):
        assert not any(b.trainable for b in bns)
    assert all(b.trainable for b in bns)


def test_the_policy_scales_the_rate_and_warms_up() -> None:
    from edgekit.errors import UsageError
    from edgekit.train.schedule import lr_at
    from edgekit.train.trainer import (COMPRESSION_FINE_TUNE, USER_MODEL_FINE_TUNE, FineTunePolicy, FitSettings,
                                       compile_model)
    from tests.helpers import zoo

    base = FitSettings(2, 64, 1e-3)
    user = USER_MODEL_FINE_TUNE.settings(base)
    assert user.learning_rate == pytest.approx(1e-4) and user.warmup_fraction == pytest.approx(0.1)
    assert COMPRESSION_FINE_TUNE.settings(base).learning_rate == pytest.approx(1e-3)
    assert COMPRESSION_FINE_TUNE.settings(base).lr_schedule == "constant"  # None: the stage's own schedule
    assert FineTunePolicy(lr_schedule="cosine").settings(base).lr_schedule == "cosine"
    assert COMPRESSION_FINE_TUNE.freeze_batchnorm and USER_MODEL_FINE_TUNE.freeze_batchnorm
    model = zoo.build("compact")
    compile_model(model, user, steps_per_epoch=50)  # 100 steps, 10 of warm-up
    schedule = model.optimizer._learning_rate  # the schedule (the public property is its current value)
    assert float(schedule(0)) == pytest.approx(lr_at(0, 1e-4, "constant", 10, 100)) == pytest.approx(1e-5)
    assert float(schedule(50)) == pytest.approx(1e-4)
    with pytest.raises(UsageError):
        FineTunePolicy(lr_scale=0)
    with pytest.raises(UsageError):
        FitSettings(1, optimizer="rmsprop")  # type: ignore[arg-type]


def test_soft_targets_mix_the_labels_and_the_teacher() -> None:
    from edgekit.train.trainer import soft_targets
    from tests.helpers import zoo

    teacher = zoo.build("reference")
    x = np.random.default_rng(0).random((5, 28, 28, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 4])
    t = soft_targets(teacher, x, y, 0.5, False, 10)
    assert t.shape == (5, 10) and np.allclose(t.sum(axis=1), 1.0, atol=1e-5)
    assert (t.argmax(axis=1) == y).all() and (t[np.arange(5), y] >= 0.5).all()
    np.testing.assert_array_equal(soft_targets(teacher, x, y, 0.0, False, 10), np.eye(10, dtype=np.float32)[y])


def test_reestimated_batchnorm_statistics_are_the_average_over_the_batches() -> None:
    from edgekit._tf import keras
    from edgekit.train.trainer import reestimate_batchnorm

    k = keras()
    inp = k.Input((3,))
    model = k.Model(inp, k.layers.BatchNormalization(momentum=0.99, name="bn")(inp))
    bn = model.get_layer("bn")
    bn.set_weights([np.ones(3, np.float32), np.zeros(3, np.float32), np.full(3, 50.0, np.float32),
                    np.full(3, 9.0, np.float32)])  # stale statistics
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(256, 3)).astype(np.float32)
    assert reestimate_batchnorm(model, x, batch_size=64) == 1
    batch_means = x.reshape(4, 64, 3).mean(axis=1).mean(axis=0)  # the average of the four batches' means
    np.testing.assert_allclose(bn.moving_mean.numpy(), batch_means, rtol=1e-4, atol=1e-4)
    assert bn.momentum == 0.99  # put back
