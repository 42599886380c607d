"""Structured pruning: channel counts, MACs, and exact equality when only dead channels go."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit._tf import keras
from edgekit.compression.structured import prune_structured
from edgekit.errors import UsageError
from edgekit.models.flops import count_macs, count_params
from edgekit.models.reference import build_reference_cnn

RNG = np.random.default_rng(0)


def _kept(report: dict) -> dict[str, tuple[int, int]]:
    return {row["name"]: (row["kept"], row["total"]) for row in report["layers"]}


def _zero_out_channels(layer, channels: np.ndarray, *, weight: int = 0) -> None:
    """Zero the weights (and bias) that produce the given output channels."""
    weights = layer.get_weights()
    weights[weight][..., channels] = 0.0
    if layer.use_bias:
        weights[-1][channels] = 0.0
    layer.set_weights(weights)


def _randomise(model) -> None:
    """Random non-zero biases/BN statistics so a wrong index mapping cannot go unnoticed."""
    for layer in model.layers:
        weights = [RNG.normal(0.0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()]
        if type(layer).__name__ == "BatchNormalization":
            weights[-1] = np.abs(weights[-1]) + 0.5  # moving variance
        if weights:
            layer.set_weights(weights)


def _images(shape, n: int = 8) -> np.ndarray:
    return RNG.random((n, *shape), dtype=np.float32)


@pytest.mark.parametrize(
    ("ratio", "kept", "macs", "params"),
    [
        (0.25, (24, 48, 48), 1_458_624, 68_794),
        (0.5, (16, 32, 32), 680_832, 30_762),
        (0.75, (8, 16, 16), 194_624, 7_834),
    ],
)
def test_reference_cnn_ratio(ratio, kept, macs, params) -> None:
    model = build_reference_cnn()
    result = prune_structured(model, ratio=ratio)
    report = result.report
    assert _kept(report) == {"conv1": (kept[0], 32), "conv2": (kept[1], 64), "dense1": (kept[2], 64)}
    assert report["macs_before"] == 2_528_000 and report["params_before"] == 121_930
    assert report["macs_after"] == macs == count_macs(result.model)
    assert report["params_after"] == params == count_params(result.model)
    assert [s["layer"] for s in report["skipped"]] == ["output"]  # the classifier keeps its 10 units
    assert result.model.output_shape == (None, 10)
    assert count_params(model) == 121_930  # the input model is untouched


def test_dead_channels_removed_exactly_across_flatten() -> None:
    """Removing only all-zero channels must not change the outputs (checks Flatten->Dense mapping)."""
    model = build_reference_cnn()
    _randomise(model)
    dead = {"conv1": RNG.choice(32, 8, replace=False), "conv2": RNG.choice(64, 16, replace=False),
            "dense1": RNG.choice(64, 16, replace=False)}
    for name, channels in dead.items():
        _zero_out_channels(model.get_layer(name), channels)
    x = _images((28, 28, 1))
    result = prune_structured(model, ratio=0.25)
    kept = {row["name"]: row["kept"] for row in result.report["layers"]}
    assert kept == {"conv1": 24, "conv2": 48, "dense1": 48}
    assert result.model.get_layer("dense1").kernel.shape == (5 * 5 * 48, 48)
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_flatten_mapping_is_channels_last() -> None:
    """Dense rows kept after Flatten are p*C + c for every position p and kept channel c."""
    model = build_reference_cnn()
    _randomise(model)
    _zero_out_channels(model.get_layer("conv2"), np.arange(0, 64, 2))  # even channels dead
    result = prune_structured(model, ratio=0.5)
    old = model.get_layer("dense1").get_weights()[0]
    new = result.model.get_layer("dense1").get_weights()[0]
    kept_units = np.sort(np.argsort(-np.abs(old).sum(axis=0), kind="stable")[:32])
    rows = (np.arange(25)[:, None] * 64 + np.arange(1, 64, 2)[None, :]).ravel()
    np.testing.assert_array_equal(new, old[rows][:, kept_units])


def _bn_depthwise_separable_model():
    k = keras()
    inputs = k.Input((16, 16, 3), name="image")
    x = k.layers.Conv2D(16, 3, padding="same", name="stem")(inputs)
    x = k.layers.BatchNormalization(name="stem_bn")(x)
    x = k.layers.ReLU(name="stem_relu")(x)
    x = k.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
    x = k.layers.BatchNormalization(name="dw_bn")(x)
    x = k.layers.Activation("relu", name="dw_relu")(x)
    x = k.layers.SeparableConv2D(24, 3, padding="same", activation="relu", name="sep")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    x = k.layers.Dropout(0.2, name="drop")(x)
    outputs = k.layers.Dense(5, name="logits")(x)
    return k.Model(inputs, outputs, name="bn_dw_sep")


def test_batchnorm_depthwise_separable_chain_exact() -> None:
    model = _bn_depthwise_separable_model()
    _randomise(model)
    stem_dead = np.array([1, 4, 9, 15])
    bn = model.get_layer("stem_bn")
    gamma, beta, mean, var = bn.get_weights()
    gamma[stem_dead], beta[stem_dead] = 0.0, 0.0  # these channels are 0 after the BN, whatever the conv does
    bn.set_weights([gamma, beta, mean, var])
    dw_dead = (stem_dead[:, None] * 2 + np.arange(2)).ravel()  # depthwise outputs c*2, c*2+1
    dw = model.get_layer("dw")
    kernel, bias = dw.get_weights()
    bias[dw_dead] = 0.0
    dw.set_weights([kernel, bias])
    dw_bn = model.get_layer("dw_bn")
    weights = dw_bn.get_weights()
    weights[1][dw_dead] = weights[0][dw_dead] * weights[2][dw_dead] / np.sqrt(weights[3][dw_dead] + dw_bn.epsilon)
    dw_bn.set_weights(weights)  # beta cancels the mean: a zero input stays zero
    _zero_out_channels(model.get_layer("sep"), np.array([0, 5, 6, 7, 20, 23]), weight=1)
    x = _images((16, 16, 3))

    result = prune_structured(model, ratio=0.25, criterion="bn_scale")
    layers = {row["name"]: row for row in result.report["layers"]}
    assert layers["stem"]["kept"] == 12 and layers["stem"]["criterion"] == "bn_scale (stem_bn)"
    assert layers["sep"]["kept"] == 18 and layers["sep"]["criterion"] == "l1 (no BatchNorm follows)"
    pruned = result.model
    assert pruned.get_layer("dw").get_weights()[0].shape == (3, 3, 12, 2)
    assert pruned.get_layer("dw_bn").get_weights()[0].shape == (24,)
    assert pruned.get_layer("sep").get_weights()[1].shape == (1, 1, 24, 18)
    assert pruned.get_layer("logits").get_weights()[0].shape == (18, 5)
    np.testing.assert_allclose(pruned.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert result.report["macs_after"] == count_macs(pruned) < result.report["macs_before"]


def test_residual_add_couples_its_inputs() -> None:
    """A layer and the branch joined back onto it lose the same channels; the consumer after the join follows."""
    k = keras()
    inputs = k.Input((12, 12, 3))
    a = k.layers.Conv2D(8, 3, padding="same", activation="relu", name="a")(inputs)
    b = k.layers.Conv2D(8, 3, padding="same", name="b")(a)
    x = k.layers.Add(name="residual")([a, b])
    x = k.layers.ReLU(name="relu")(x)
    c = k.layers.Conv2D(8, 3, activation="relu", name="c")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(c)
    model = k.Model(inputs, k.layers.Dense(3, name="out")(x))
    _randomise(model)
    dead = np.array([0, 3, 6, 7])
    _zero_out_channels(model.get_layer("a"), dead)
    _zero_out_channels(model.get_layer("b"), dead)
    _zero_out_channels(model.get_layer("c"), np.array([1, 2, 4, 5]))
    x = _images((12, 12, 3))

    result = prune_structured(model, ratio=0.5)
    assert [s["layer"] for s in result.report["skipped"]] == ["out"]
    assert _kept(result.report) == {"a": (4, 8), "b": (4, 8), "c": (4, 8)}
    assert {r["name"]: r.get("joins") for r in result.report["layers"]}["b"] == ["residual (Add)"]
    assert result.model.get_layer("b").kernel.shape == (3, 3, 4, 4)
    assert result.model.get_layer("c").kernel.shape == (3, 3, 4, 4)
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_fan_out_to_safe_consumers_is_pruned_exactly() -> None:
    """A layer feeding two branches that both slice their input the same way can be pruned."""
    k = keras()
    inputs = k.Input((10, 10, 2))
    shared = k.layers.Conv2D(12, 3, activation="relu", name="shared")(inputs)
    left = k.layers.Dense(4, name="left")(k.layers.GlobalAveragePooling2D()(shared))
    right = k.layers.Dense(4, name="right")(k.layers.Flatten()(k.layers.MaxPooling2D(name="pool")(shared)))
    x = k.layers.Add(name="sum")([left, right])
    model = k.Model(inputs, k.layers.Activation("softmax", name="probs")(x))
    _randomise(model)
    _zero_out_channels(model.get_layer("shared"), np.array([2, 3, 11]))
    x = _images((10, 10, 2))

    result = prune_structured(model, ratio=0.25)
    assert _kept(result.report) == {"shared": (9, 12)}
    skipped = {s["layer"]: s["reason"] for s in result.report["skipped"]}
    assert set(skipped) == {"left", "right"} and "sum (Add)" in skipped["left"]
    assert result.model.get_layer("right").kernel.shape == (4 * 4 * 9, 4)
    np.testing.assert_allclose(result.model.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_mac_budget_is_met_globally() -> None:
    model = build_reference_cnn()
    _randomise(model)
    result = prune_structured(model, mac_budget=0.4, criterion="l2")
    report = result.report
    assert report["budget_met"] is True
    assert report["macs_after"] <= 0.4 * report["macs_before"]
    assert report["macs_after"] > 0.3 * report["macs_before"]  # no more than needed (one channel is < 10 %)
    assert report["macs_after"] == count_macs(result.model)


def test_unreachable_budget_prunes_as_far_as_allowed() -> None:
    model = build_reference_cnn()
    result = prune_structured(model, mac_budget=0.0001, min_keep=2)
    assert result.report["budget_met"] is False
    assert all(row["kept"] == 2 for row in result.report["layers"])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "exactly one"),
        ({"ratio": 0.5, "mac_budget": 0.5}, "exactly one"),
        ({"ratio": 1.0}, "ratio must be in [0, 1)"),
        ({"mac_budget": 0.0}, "mac_budget must be in (0, 1]"),
        ({"ratio": 0.5, "criterion": "taylor"}, "criterion must be one of l1, l2, bn_scale, got 'taylor'"),
        ({"ratio": 0.5, "min_keep": 0}, "min_keep"),
    ],
)
def test_bad_arguments(kwargs, words) -> None:
    with pytest.raises(UsageError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        prune_structured(build_reference_cnn(), **kwargs)
