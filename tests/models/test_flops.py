"""MAC and parameter counts, checked against hand-computed figures."""

from __future__ import annotations

from edgekit._tf import keras
from edgekit.models.flops import count_macs, count_params, layer_costs
from edgekit.models.reference import build_reference_cnn


def test_reference_cnn_counts() -> None:
    model = build_reference_cnn()
    rows = {row["name"]: row for row in layer_costs(model)}
    assert rows["conv1"]["macs"] == 26 * 26 * 32 * 3 * 3 * 1
    assert rows["conv2"]["macs"] == 11 * 11 * 64 * 3 * 3 * 32
    assert rows["dense1"]["macs"] == 1600 * 64
    assert rows["output"]["macs"] == 64 * 10
    assert rows["pool1"]["macs"] == 0 and rows["flatten"]["output_shape"] == [1600]
    assert rows["conv2"]["class"] == "Conv2D" and rows["conv2"]["output_shape"] == [11, 11, 64]
    assert count_macs(model) == 2_528_000
    assert count_params(model) == 121_930 == sum(row["params"] for row in rows.values())


def test_depthwise_separable_batchnorm_counts() -> None:
    k = keras()
    inputs = k.Input((8, 8, 4))
    x = k.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(inputs)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.SeparableConv2D(16, 3, strides=2, padding="same", name="sep")(x)
    x = k.layers.AveragePooling2D(name="pool")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    model = k.Model(inputs, k.layers.Dense(3, name="out")(x))
    rows = {row["name"]: row for row in layer_costs(model)}
    assert rows["dw"]["macs"] == 8 * 8 * 8 * 9
    assert rows["bn"]["macs"] == 0 and rows["bn"]["params"] == 4 * 8
    assert rows["sep"]["macs"] == 4 * 4 * 8 * 9 + 4 * 4 * 8 * 16
    assert rows["sep"]["params"] == 3 * 3 * 8 + 8 * 16 + 16
    assert rows["pool"]["macs"] == 0 and rows["gap"]["output_shape"] == [16]
    assert rows["out"]["macs"] == 16 * 3
    assert count_macs(model) == sum(row["macs"] for row in rows.values())


def test_nested_model_is_counted_layer_by_layer() -> None:
    k = keras()
    inner = build_reference_cnn()
    outer = k.Sequential([k.Input((28, 28, 1)), inner])
    assert count_macs(outer) == 2_528_000
    assert count_params(outer) == 121_930
