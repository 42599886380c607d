"""Budget decisions on synthetic sensitivity tables, and the int8 / pruning arithmetic they rest on (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.analyze.decide import (back_off, choose_int8_protection, choose_levels, guilt, largest_level_within,
                                    next_int8_protection, predicted_drop, recipe_grid)
from edgekit.analyze.fakequant import cosine, fake_quant_activation, fake_quant_weight, snr_db
from edgekit.analyze.sensitivity import SensitivityConfig, magnitude_mask
from edgekit.compression.mixed import names_layer
from edgekit.errors import UsageError


def row(name: str, params: int, prune: dict[str, float], structured: dict[str, float] | None = None,
        quant_drop: float = 0.0, snr: float = 40.0, macs: int = 1000) -> dict:
    return {"name": name, "op": "Conv2D", "params": params, "macs": macs, "prune": prune, "structured": structured or {},
            "quant": {"snr_db": snr, "cosine": 0.999, "drop_pp": quant_drop}, "protected": False, "reason": ""}


TABLE = [
    row("big", 10000, {"0.3": 0.0, "0.5": 0.1, "0.7": 0.4, "0.9": 3.0}, {"0.25": 0.2, "0.5": 2.0}, quant_drop=0.1),
    row("small", 100, {"0.3": 0.0, "0.5": 0.0, "0.7": 0.1, "0.9": 0.2}, {"0.25": 0.0, "0.5": 0.1}, quant_drop=0.0),
    row("fragile", 2000, {"0.3": 1.5, "0.5": 5.0, "0.7": 9.0, "0.9": 20.0}, {"0.25": 8.0}, quant_drop=1.4, snr=12.0),
]


def test_largest_level_within_stops_at_the_first_breach() -> None:
    assert largest_level_within({"0.3": 0.1, "0.5": 2.0, "0.7": 0.2}, 1.0) == 0.3  # 0.7 after a breach is not trusted
    assert largest_level_within({"0.3": 1.5}, 1.0) == 0.0
    assert largest_level_within({}, 1.0) == 0.0


def test_choose_levels_spends_the_budget_where_it_buys_most_and_never_on_a_fragile_layer() -> None:
    choice = choose_levels(TABLE, 1.0, "prune")
    assert "fragile" not in choice  # 30 % alone costs 1.5 pp > budget
    assert choice["big"] == 0.7 and choice["small"] == 0.9
    assert predicted_drop(TABLE, choice, "prune") <= 1.0
    tight = choose_levels(TABLE, 0.1, "prune")
    assert predicted_drop(TABLE, tight, "prune") <= 0.1 and tight["big"] == 0.5
    assert choose_levels(TABLE, 0.0, "prune") == {"big": 0.3, "small": 0.5}  # free levels only
    assert choose_levels(TABLE, 1.0, "prune", exclude=("big",)).get("big") is None


def test_choose_levels_structured_uses_its_own_table() -> None:
    choice = choose_levels(TABLE, 0.5, "structured")
    assert choice == {"big": 0.25, "small": 0.5}


def test_back_off_lowers_the_guiltiest_layer_one_level() -> None:
    new, note = back_off(TABLE, {"big": 0.7, "small": 0.9}, "prune")
    assert new == {"big": 0.5, "small": 0.9} and note.startswith("big: sparsity 0.7 → 0.5")
    new, _ = back_off(TABLE, {"small": 0.3}, "prune")
    assert new == {}
    assert back_off(TABLE, {}, "prune") == ({}, "")


def test_int8_protection_alone_and_additive() -> None:
    alone = choose_int8_protection(TABLE, 1.0, share=1.0, additive=False)
    assert list(alone) == ["fragile"] and "1.40 pp" in alone["fragile"]
    assert choose_int8_protection(TABLE, 2.0, share=1.0, additive=False) == {}
    additive = choose_int8_protection(TABLE, 1.45, share=1.0, additive=True)  # 1.4 + 0.1 > 1.45
    assert list(additive) == ["fragile"]
    assert set(choose_int8_protection(TABLE, 0.0, share=1.0)) == {"fragile", "big"}  # a zero budget: every costly layer
    assert next_int8_protection(TABLE, {"fragile": ""}) == "big"
    assert next_int8_protection(TABLE, {"fragile": "", "big": "", "small": ""}) is None


def test_guilt_orders_the_fragile_layer_first() -> None:
    assert max(TABLE, key=guilt)["name"] == "fragile"


def test_recipe_grid_is_finer_than_the_fixed_grid_and_has_no_repeats() -> None:
    grid = recipe_grid(TABLE, 1.0)
    assert grid[0] == {"label": "none", "per_layer_sparsity": {}, "per_layer_structured": {}}
    keys = [(tuple(sorted(g["per_layer_sparsity"].items())), tuple(sorted(g["per_layer_structured"].items()))) for g in grid]
    assert len(keys) == len(set(keys)) >= 2
    assert all("fragile" not in g["per_layer_sparsity"] for g in grid)


def test_fake_quant_weight_per_channel_keeps_small_channels() -> None:
    w = np.stack([np.linspace(-1, 1, 9), np.linspace(-0.001, 0.001, 9)], axis=-1).reshape(3, 3, 1, 2).astype(np.float32)
    per_channel = fake_quant_weight(w)
    per_tensor = fake_quant_weight(w, per_channel=False)
    assert np.abs(per_channel - w).max() <= 1 / 127 / 2 + 1e-7
    assert np.count_nonzero(per_tensor[..., 1]) == 0  # the small channel vanishes with one scale
    assert np.count_nonzero(per_channel[..., 1]) > 0
    dw = np.ones((3, 3, 2, 1), np.float32) * np.array([1.0, 0.01], np.float32)[None, None, :, None]
    assert np.allclose(fake_quant_weight(dw, depthwise=True), dw, rtol=1e-2)


def test_fake_quant_activation_snr_and_cosine() -> None:
    x = np.random.default_rng(0).uniform(0, 6, size=(64, 8)).astype(np.float32)
    q = fake_quant_activation(x, 0.0, 6.0)
    assert np.abs(q - x).max() <= 6 / 255 / 2 + 1e-6
    assert 40 < snr_db(x, q) < 70 and cosine(x, q) > 0.9999
    assert snr_db(x, x) == float("inf") and cosine(np.zeros(3), np.zeros(3)) == 1.0


def test_magnitude_mask_zeroes_exactly_the_smallest() -> None:
    k = np.arange(1, 11, dtype=np.float32).reshape(2, 5) * np.array([1, -1] * 5, np.float32).reshape(2, 5)
    out = magnitude_mask(k, 0.3)
    assert (out == 0).sum() == 3 and set(np.abs(k[out == 0])) == {1.0, 2.0, 3.0}


def test_layer_names_match_whole_scope_segments() -> None:
    assert names_layer("compact_cnn/pw1_relu/Relu;compact_cnn/pw1_bn/FusedBatchNormV3;compact_cnn/pw1/Conv2D1", "pw1")
    assert not names_layer("compact_cnn/pw1_relu/Relu", "pw1")
    assert names_layer("model/dense/MatMul", "dense") and not names_layer("model/dense_1/MatMul", "dense")


def test_sensitivity_config_rejects_bad_levels() -> None:
    with pytest.raises(UsageError, match="sparsities"):
        SensitivityConfig(sparsities=(0.5, 1.0)).validate()
    with pytest.raises(UsageError, match="budget_pp"):
        SensitivityConfig(budget_pp=-1).validate()


def test_explicit_value_note_says_plainly_whether_the_budget_breaks() -> None:
    from edgekit.compression.budget import explicit_value_note

    assert explicit_value_note("sparsity", 0.8, 19.0, 1.0) == (
        "sparsity 0.8 was set explicitly; validation drop 19.00 pp breaks the 1 pp budget")
    assert explicit_value_note("structured ratio", 0.25, 0.4, 1.0).endswith("is within the 1 pp budget")


def test_quantizable_layers_skip_shared_layers_but_not_layers_reused_by_a_clone() -> None:
    from edgekit._tf import keras
    from edgekit.analyze.fakequant import quantizable_layers

    k = keras()
    inp = k.layers.Input((4,))
    shared = k.layers.Dense(4, name="shared")
    model = k.Model(inp, k.layers.Dense(2, name="head")(shared(shared(inp))))
    assert [layer.name for layer in quantizable_layers(model)] == ["head"]
    plain = k.Sequential([k.layers.Input((4,)), k.layers.Dense(3, name="a"), k.layers.Dense(2, name="b")])
    k.models.clone_model(plain, clone_function=lambda layer: layer)  # the clone calls the same layer objects again
    assert [layer.name for layer in quantizable_layers(plain)] == ["a", "b"]
