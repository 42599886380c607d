"""The accuracy budget's statistical margin (edgekit.compression.budget.paired_drop_bound): pure, no training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit.compression.budget import DropBound, budget_check, paired_drop_bound, stage_drop_bound


def _pair(n: int, lost: int, gained: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image correctness of a reference and a candidate with ``lost`` and ``gained`` discordant images."""
    ref, cand = np.ones(n, bool), np.ones(n, bool)
    cand[:lost] = False
    ref[lost:lost + gained] = False
    return ref, cand


def _wald(n: int, lost: int, gained: int, z: float = 1.6448536269514722) -> float:
    """The paired Wald bound by hand, in pp: drop + z * sqrt(L + G - (L - G)^2 / n) / n."""
    net = lost - gained
    return (net + z * math.sqrt(max(lost + gained - net * net / n, 0.0))) / n * 100


def test_the_bound_counts_the_discordant_images() -> None:
    b = paired_drop_bound(*_pair(180, 3, 2))
    assert (b.n, b.lost, b.gained, b.drop_pp) == (180, 3, 2, pytest.approx(0.556))
    assert b.bound_pp == pytest.approx(min(_wald(180, 3, g) for g in range(3)), abs=1e-3)
    # only losses: a margin over the point drop all the same (one lost of 180: 0.56 pp drop, 1.47 pp bound)
    one = paired_drop_bound(*_pair(180, 1, 0))
    assert one.drop_pp == pytest.approx(0.556) and one.bound_pp == pytest.approx(1.467, abs=1e-3)
    assert paired_drop_bound(*_pair(180, 0, 0)).bound_pp == 0.0  # identical predictions: no margin


def test_the_margin_shrinks_with_the_validation_size() -> None:
    """The same 0.56 pp point drop: on 180 images (5 flips) the bound is far outside a 1 pp budget; on 6,000 (a
    Fashion-MNIST validation split, the same share of flips) the margin is a fraction of a point."""
    small = paired_drop_bound(*_pair(180, 3, 2))
    large = paired_drop_bound(*_pair(6000, 100, 67))
    assert small.drop_pp == pytest.approx(large.drop_pp, abs=0.01)
    assert small.bound_pp > 1.5 and large.bound_pp - large.drop_pp < 0.5
    # the figures of the real default Fashion-MNIST run (runs/wire-fm): 165 lost, 188 gained of 6,000
    fm = DropBound(6000, 165, 188)
    assert fm.drop_pp == pytest.approx(-0.383) and fm.bound_pp == pytest.approx(0.132, abs=0.01)
    # a small-data run fine-tuning made better (cortex-m4 test, 300 images: 11 lost, 17 gained) stays inside 1 pp
    assert DropBound(300, 11, 17).bound_pp == pytest.approx(0.895, abs=0.01)


def test_against_scipys_normal_quantile() -> None:
    """z from scipy's normal quantile; the bound is the Wald bound's smallest value over 0 … gained images."""
    stats = pytest.importorskip("scipy.stats")
    z = float(stats.norm.ppf(0.95))
    for n, lost, gained in ((180, 3, 2), (6000, 165, 188), (360, 10, 1), (50, 0, 7), (100, 0, 1), (100, 1, 1),
                            (1000, 40, 0), (200, 5, 30)):
        envelope = min(_wald(n, lost, g, z) for g in range(gained + 1))
        b = DropBound(n, lost, gained)
        assert b.bound_pp == pytest.approx(envelope, abs=2e-3)
        assert b.bound_pp >= b.drop_pp - 1e-3  # never below the point drop


def test_the_bound_is_monotone_in_the_gained_images() -> None:
    """Wald's bound alone gives 0 lost / 1 gained of 100 images +0.64 pp (a strictly better file would fail a 0.5 pp
    budget while an identical one passes); the envelope gives it 0, and gaining more never raises the bound."""
    better = DropBound(100, 0, 1)
    assert _wald(100, 0, 1) > 0.5 and better.bound_pp == 0.0 and better.bound_pp <= DropBound(100, 0, 0).bound_pp
    assert budget_check(0.9, 0.91, 0.5) == {"held": True}
    for lost in (0, 1, 3, 10):
        bounds = [DropBound(100, lost, g).bound_pp for g in range(40)]
        assert all(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:]))
        assert bounds[0] == pytest.approx(_wald(100, lost, 0), abs=1e-3)  # only losses: still a margin
        assert lost == 0 or bounds[0] > lost


def test_a_stage_adds_its_parents_measured_drop() -> None:
    """A stage's output is paired with its parent; the parent's own drop against the trained model is added."""
    trained, pruned = _pair(200, 2, 0)  # the pruned parent lost 2 of 200 images: 1 pp
    b = stage_drop_bound(1.0, trained, pruned)  # the stage's parent is the trained model: nothing spent before
    assert (b.offset_pp, b.drop_pp) == (0.0, 1.0) and b.bound_pp == pytest.approx(_wald(200, 2, 0), abs=1e-3)
    b = stage_drop_bound(1.0, pruned, pruned)  # its int8 file flips nothing more: the parent's 1 pp, no margin
    assert (b.offset_pp, b.drop_pp, b.bound_pp) == (1.0, 1.0, 1.0)


def test_budget_check_without_models_judges_the_point_drop() -> None:
    assert budget_check(0.9, 0.891, 1.0) == {"held": True} and budget_check(0.9, 0.889, 1.0) == {"held": False}


def test_budget_check_on_an_empty_validation_split_judges_the_point_drop(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    class Never:
        def predict(self, *_: object, **__: object) -> np.ndarray:
            raise AssertionError("nothing to predict on an empty split")

    empty = SimpleNamespace(x_val=np.zeros((0, 4), np.float32), y_val=np.zeros(0, np.int64))
    with caplog.at_level("WARNING", logger="edgekit.compression.budget"):
        assert budget_check(0.9, 0.895, 1.0, Never(), Never(), empty) == {"held": True}
        assert budget_check(0.9, 0.85, 1.0, Never(), None, empty, candidate_correct=np.zeros(0, bool)) == {"held": False}
    assert "empty validation split" in caplog.text


def test_bad_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_drop_bound(np.ones(3, bool), np.ones(4, bool))
    assert math.isclose(paired_drop_bound([True, False], [True, True]).drop_pp, -50.0)


def test_budget_check_pairs_real_keras_models_image_by_image() -> None:
    """Two untrained compact CNNs (no training): the parent is right on every image by construction, the other
    model flips many; the check is judged on the bound, paired per image, and says on how many images."""
    from types import SimpleNamespace

    from tests.helpers.models import build_compact_cnn

    parent, other = build_compact_cnn(seed=0), build_compact_cnn(seed=1)
    x = np.random.default_rng(0).random((120, 28, 28, 1), dtype=np.float32)
    ds = SimpleNamespace(x_val=x, y_val=parent.predict(x, verbose=0).argmax(1))
    same = budget_check(1.0, 1.0, 1.0, parent, parent, ds)
    assert same == {"held": True, "bound_pp": 0.0, "validation_size": 120}
    acc = float((other.predict(x, verbose=0).argmax(1) == ds.y_val).mean())
    check = budget_check(1.0, acc, 50.0, parent, other, ds)
    lost = int(round((1 - acc) * 120))
    assert check["bound_pp"] == DropBound(120, lost, 0).bound_pp and check["validation_size"] == 120
    assert check["held"] == (check["bound_pp"] <= 50.0)
