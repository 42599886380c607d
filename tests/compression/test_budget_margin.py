"""The stages' check on the selection split (edgekit.compression.budget): exact loss-rate bound, no training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit.compression.budget import DropBound, budget_check, paired_drop_bound, stage_drop_bound
from edgekit.rules import SELECTION_CONFIDENCE, paired_upper


def _pair(n: int, lost: int, gained: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-image correctness of a reference and a candidate with ``lost`` and ``gained`` discordant images."""
    ref, cand = np.ones(n, bool), np.ones(n, bool)
    cand[:lost] = False
    ref[lost:lost + gained] = False
    return ref, cand


def test_the_bound_counts_the_discordant_images() -> None:
    b = paired_drop_bound(*_pair(180, 3, 2))
    assert (b.n, b.lost, b.gained, b.drop_pp) == (180, 3, 2, pytest.approx(0.556))
    assert b.confidence == SELECTION_CONFIDENCE
    assert b.bound_pp == pytest.approx(paired_upper(3, 2, 180, 1 - SELECTION_CONFIDENCE) * 100, abs=1e-3)
    # identical predictions still get the (small) median margin: about 0.69/n
    assert paired_drop_bound(*_pair(180, 0, 0)).bound_pp == pytest.approx(100 * (1 - 0.5 ** (1 / 180)), abs=1e-3)


def test_the_margin_shrinks_with_the_split_size() -> None:
    small = paired_drop_bound(*_pair(180, 3, 2), confidence=0.95)
    large = paired_drop_bound(*_pair(6000, 100, 67), confidence=0.95)
    assert small.drop_pp == pytest.approx(large.drop_pp, abs=0.01)
    assert small.bound_pp - small.drop_pp > large.bound_pp - large.drop_pp


def test_the_bound_is_monotone_never_raised_by_a_gained_image() -> None:
    for lost in (0, 1, 3, 10):
        bounds = [DropBound(100, lost, g).bound_pp for g in range(40)]
        assert all(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:]))
    assert all(DropBound(100, k + 1, 3).bound_pp > DropBound(100, k, 3).bound_pp for k in range(20))
    assert budget_check(0.9, 0.91, 0.5) == {"held": True}


def test_a_stage_adds_its_parents_measured_drop() -> None:
    trained, pruned = _pair(200, 2, 0)  # the pruned parent lost 2 of 200 images: 1 pp
    b = stage_drop_bound(1.0, trained, pruned)
    assert (b.offset_pp, b.drop_pp) == (0.0, 1.0)
    assert b.bound_pp == pytest.approx(100 * paired_upper(2, 0, 200, 0.5), abs=1e-3)
    b = stage_drop_bound(1.0, pruned, pruned)  # its int8 file flips nothing more: the parent's 1 pp plus the margin
    assert (b.offset_pp, b.drop_pp) == (1.0, 1.0) and 1.0 < b.bound_pp < 1.5


def test_budget_check_without_models_judges_the_point_drop() -> None:
    assert budget_check(0.9, 0.891, 1.0) == {"held": True} and budget_check(0.9, 0.889, 1.0) == {"held": False}


def test_budget_check_on_an_empty_selection_split_judges_the_point_drop(caplog: pytest.LogCaptureFixture) -> None:
    from types import SimpleNamespace

    class Never:
        def predict(self, *_: object, **__: object) -> np.ndarray:
            raise AssertionError("nothing to predict on an empty split")

    empty = SimpleNamespace(x_val=np.zeros((0, 4), np.float32), y_val=np.zeros(0, np.int64))
    with caplog.at_level("WARNING", logger="edgekit.compression.budget"):
        assert budget_check(0.9, 0.895, 1.0, Never(), Never(), empty) == {"held": True}
        assert budget_check(0.9, 0.85, 1.0, Never(), None, empty, candidate_correct=np.zeros(0, bool)) == {"held": False}
    assert "empty selection split" in caplog.text


def test_bad_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_drop_bound(np.ones(3, bool), np.ones(4, bool))
    assert math.isclose(paired_drop_bound([True, False], [True, True]).drop_pp, -50.0)


def test_budget_check_pairs_real_keras_models_image_by_image() -> None:
    """Two untrained compact CNNs (no training): the parent is right on every image by construction, the other
    model flips many; the check is judged on the bound, paired per image, and its sentence never says that a
    0.00 pp drop 'breaks the budget' without the bound that does."""
    from types import SimpleNamespace

    from tests.helpers.models import build_compact_cnn

    parent, other = build_compact_cnn(seed=0), build_compact_cnn(seed=1)
    x = np.random.default_rng(0).random((120, 28, 28, 1), dtype=np.float32)
    ds = SimpleNamespace(x_val=x, y_val=parent.predict(x, verbose=0).argmax(1))
    same = budget_check(1.0, 1.0, 1.0, parent, parent, ds)
    assert same["held"] and same["validation_size"] == 120 and same["bound_pp"] == pytest.approx(0.576, abs=1e-3)
    assert same["verdict"].startswith("selection drop 0.00 pp, 50 % upper bound 0.58 pp: within the 1 pp budget")
    tight = budget_check(1.0, 1.0, 0.5, parent, parent, ds)
    assert not tight["held"] and "drop 0.00 pp, but its 50 % upper bound 0.58 pp exceeds the 0.5 pp budget on 120 " \
                                  "images" in tight["verdict"]
    acc = float((other.predict(x, verbose=0).argmax(1) == ds.y_val).mean())
    check = budget_check(1.0, acc, 50.0, parent, other, ds)
    lost = int(round((1 - acc) * 120))
    assert check["bound_pp"] == DropBound(120, lost, 0).bound_pp and check["validation_size"] == 120
    assert check["held"] == (check["bound_pp"] <= 50.0)


def test_a_pruning_attempt_that_churns_is_refused_before_certification_would_refuse_it() -> None:
    """Selection: 20 lost and 20 gained of 400 images is no drop, inside a 1 pp budget; scaled to 800
    certification images it predicts a certificate far outside it, so a pruning attempt does not hold. One lost
    and one gained holds; without the prediction (int8 checks) the churning file holds too."""
    from types import SimpleNamespace

    from edgekit.rules import predicted_bound_pp

    for lost, held in ((20, False), (1, True)):
        ref, cand = _pair(400, lost, lost)
        data = SimpleNamespace(y_val=np.zeros(400), y_cert=np.zeros(800))
        check = budget_check(0.9, 0.9, 1.0, dataset=data, candidate_correct=cand, reference_correct=ref,
                             predict_certificate=True)
        assert check["held"] is held, check
        assert check["predicted_certificate_pp"] == predicted_bound_pp(lost, lost, 0, 400, 800)
        assert budget_check(0.9, 0.9, 1.0, dataset=data, candidate_correct=cand, reference_correct=ref)["held"]
        assert ("predict a certified bound of" in check["verdict"]) is not held
