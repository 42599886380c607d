"""Structured pruning of residual models: sources coupled through element-wise joins lose the same channels.

Exactness: the channels the pruner removes are made dead first (their filters and BatchNorm scale/shift zeroed in
every member of the group), so the pruned model must give the zeroed original's outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit._tf import keras
from edgekit.compression.structured import channel_groups, prune_structured, removable_sources
from edgekit.models.flops import count_macs
from tests.helpers import zoo

RNG = np.random.default_rng(1)


def _kill(model, source: str, channels: np.ndarray) -> None:
    """Make output channels of ``source`` exactly zero after its BatchNorm: filters, bias, gamma and beta."""
    layer = model.get_layer(source)
    weights = layer.get_weights()
    weights[1 if type(layer).__name__ == "SeparableConv2D" else 0][..., channels] = 0.0
    if getattr(layer, "use_bias", False):
        weights[-1][channels] = 0.0
    layer.set_weights(weights)
    consumer = layer.outbound_nodes[0].outbound_layer
    if type(consumer).__name__ == "BatchNormalization":
        bn = consumer.get_weights()
        bn[0][channels], bn[1][channels] = 0.0, 0.0
        consumer.set_weights(bn)


def _kill_groups(model, ratio: float) -> dict[tuple[str, ...], np.ndarray]:
    """In every prunable group, ``floor(ratio × channels)`` random channels made dead in all members."""
    dead = {}
    for group in channel_groups(model):
        if group.problems:
            continue
        total = int(model.get_layer(group.sources[0]).output_shape[-1])
        channels = np.sort(RNG.choice(total, math.floor(ratio * total + 1e-9), replace=False))
        for source in group.sources:
            _kill(model, source, channels)
        dead[group.sources] = channels
    return dead


def _images(shape: tuple[int, ...], n: int = 8) -> np.ndarray:
    return RNG.random((n, *shape), dtype=np.float32)


def test_resnet8_groups_follow_the_residual_joins() -> None:
    groups = {g.sources: g for g in channel_groups(zoo.build("resnet8", keras()))}
    assert set(groups) == {("stem", "s1_conv2"), ("s1_conv1",), ("s2_conv1",), ("s2_proj", "s2_conv2"),
                           ("s3_conv1",), ("s3_proj", "s3_conv2"), ("classifier",)}
    assert groups[("stem", "s1_conv2")].joins == ("s1_add (Add)",)  # identity shortcut: the block input's producer
    assert groups[("s3_proj", "s3_conv2")].joins == ("s3_add (Add)",)  # projection shortcut
    assert [g.sources for g in groups.values() if g.problems] == [("classifier",)]
    reasons = removable_sources(zoo.build("resnet8", keras()), one_per_group=True)
    assert reasons["s1_conv2"] is None and reasons["s2_conv2"] is None and reasons["s1_conv1"] is None
    assert "removed with those of s1_conv2" in reasons["stem"] and "s1_add (Add)" in reasons["stem"]
    assert "removed with those of s2_conv2" in reasons["s2_proj"]  # the 3×3 convolution, not the 1×1 projection


@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_resnet8_pruned_exactly(ratio: float) -> None:
    model = zoo.build("resnet8", keras())
    zoo.randomise_batchnorm(model, seed=1)
    dead = _kill_groups(model, ratio)
    x = _images((32, 32, 3))
    result = prune_structured(model, ratio=ratio)
    pruned, report = result.model, result.report

    kept = {row["name"]: (row["kept"], row["total"]) for row in report["layers"]}
    for sources, channels in dead.items():
        total = model.get_layer(sources[0]).filters
        assert all(kept[s] == (total - len(channels), total) for s in sources)
        survivors = np.setdiff1d(np.arange(total), channels)
        for s in sources:  # the removed channels are the dead ones, in every member's BatchNorm
            np.testing.assert_array_equal(pruned.get_layer(f"{s}_bn").gamma.numpy(),
                                          model.get_layer(f"{s}_bn").gamma.numpy()[survivors])
    for i, filters in ((1, 16), (2, 32), (3, 64)):
        assert pruned.get_layer(f"s{i}_add").output_shape[-1] == filters - int(ratio * filters)
    assert pruned.get_layer("classifier").kernel.shape == (64 - int(ratio * 64), 10)  # GAP → Dense sliced
    assert [s["layer"] for s in report["skipped"]] == ["classifier"]
    assert report["macs_after"] == count_macs(pruned) < report["macs_before"] == count_macs(model)
    assert report["params_after"] < report["params_before"]
    diff = np.abs(pruned.predict(x, verbose=0) - model.predict(x, verbose=0)).max()
    assert diff < 1e-5


def test_resnet8_mac_budget_counts_whole_groups() -> None:
    model = zoo.build("resnet8", keras())
    zoo.randomise_batchnorm(model, seed=1)
    result = prune_structured(model, mac_budget=0.5, criterion="bn_scale")
    report = result.report
    assert report["budget_met"] is True and report["macs_after"] == count_macs(result.model)
    assert 0.4 * report["macs_before"] < report["macs_after"] <= 0.5 * report["macs_before"]
    kept = {row["name"]: row["kept"] for row in report["layers"]}
    assert kept["s2_proj"] == kept["s2_conv2"] and kept["stem"] == kept["s1_conv2"]
    assert {row["name"]: row["criterion"] for row in report["layers"]}["s3_proj"] == "bn_scale (s3_proj_bn)"
    assert result.model.predict(_images((32, 32, 3)), verbose=0).shape == (8, 10)


def test_per_layer_fraction_of_one_member_prunes_its_group() -> None:
    model = zoo.build("resnet8", keras())
    result = prune_structured(model, per_layer={"s2_conv2": 0.5, "s3_conv1": 0.25})
    kept = {row["name"]: row["kept"] for row in result.report["layers"]}
    assert (kept["s2_proj"], kept["s2_conv2"], kept["s3_conv1"], kept["stem"]) == (16, 16, 48, 16)


def _chained_identity_blocks():
    """Stem, two identity blocks, a depthwise branch joined back, then Flatten → Dense: one group of three."""
    k = keras()
    inp = k.Input((8, 8, 3), name="image")
    x = k.layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inp)
    x = k.layers.BatchNormalization(name="stem_bn")(x)
    x = k.layers.ReLU(name="stem_relu")(x)
    for i in (1, 2):
        y = k.layers.Conv2D(6, 3, padding="same", activation="relu", name=f"b{i}_conv1")(x)
        y = k.layers.Conv2D(8, 3, padding="same", use_bias=False, name=f"b{i}_conv2")(y)
        y = k.layers.BatchNormalization(name=f"b{i}_conv2_bn")(y)
        x = k.layers.ReLU(name=f"b{i}_relu")(k.layers.Add(name=f"b{i}_add")([x, y]))
    y = k.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    y = k.layers.BatchNormalization(name="dw_bn")(y)
    x = k.layers.Add(name="dw_add")([x, y])
    x = k.layers.MaxPooling2D(2, name="pool")(x)
    x = k.layers.Flatten(name="flatten")(x)
    return k.Model(inp, k.layers.Dense(4, name="logits")(x), name="chained")


def test_chained_identity_blocks_are_one_group_and_prune_exactly() -> None:
    model = _chained_identity_blocks()
    zoo.randomise_batchnorm(model, seed=1)
    groups = [g for g in channel_groups(model) if g.coupled]
    assert [(g.sources, g.joins) for g in groups] == [
        (("stem", "b1_conv2", "b2_conv2"), ("b1_add (Add)", "b2_add (Add)", "dw_add (Add)"))]
    dead = _kill_groups(model, 0.5)
    channels = dead[("stem", "b1_conv2", "b2_conv2")]
    bn = model.get_layer("dw_bn").get_weights()
    bn[0][channels], bn[1][channels] = 0.0, 0.0  # the depthwise branch of a dead channel stays dead
    model.get_layer("dw_bn").set_weights(bn)
    x = _images((8, 8, 3))

    result = prune_structured(model, ratio=0.5)
    pruned = result.model
    assert {row["name"]: row["kept"] for row in result.report["layers"]} == {
        "stem": 4, "b1_conv1": 3, "b1_conv2": 4, "b2_conv1": 3, "b2_conv2": 4}
    assert pruned.get_layer("dw").get_weights()[0].shape == (3, 3, 4, 1)
    assert pruned.get_layer("logits").kernel.shape == (4 * 4 * 4, 4)  # Flatten rows p*C + c of the kept channels
    assert result.report["macs_after"] == count_macs(pruned) < result.report["macs_before"]
    assert np.abs(pruned.predict(x, verbose=0) - model.predict(x, verbose=0)).max() < 1e-5


def _blocked_groups():
    """Joins that keep their groups whole: the model input, a Concatenate, a depthwise multiplier, a nested model."""
    k = keras()
    inp = k.Input((8, 8, 4), name="image")
    a = k.layers.Conv2D(4, 3, padding="same", name="a")(inp)
    x = k.layers.Add(name="input_add")([inp, a])  # identity shortcut from the model input
    b = k.layers.Conv2D(6, 3, padding="same", name="b")(x)
    c = k.layers.Conv2D(6, 1, name="c")(x)
    bc = k.layers.Add(name="bc_add")([b, c])
    d = k.layers.Conv2D(6, 1, name="d")(x)
    x = k.layers.Concatenate(name="cat")([bc, d])
    e = k.layers.Conv2D(3, 1, name="e")(x)
    f = k.layers.Conv2D(6, 1, name="f")(x)
    x = k.layers.Add(name="dw_add")([k.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(e), f])
    inner = k.Sequential([k.layers.Conv2D(6, 1, name="inner_conv")], name="backbone")
    g = k.layers.Conv2D(6, 1, name="g")(x)
    x = k.layers.Add(name="nested_add")([inner(x), g])
    h = k.layers.Conv2D(5, 3, activation="relu", name="h")(x)  # prunable: nothing downstream needs its channels
    x = k.layers.GlobalAveragePooling2D(name="gap")(h)
    return k.Model(inp, k.layers.Dense(3, name="out")(x), name="blocked")


def test_unprunable_groups_say_which_group_and_why() -> None:
    model = _blocked_groups()
    result = prune_structured(model, ratio=0.5)
    skipped = {s["layer"]: s for s in result.report["skipped"]}
    assert set(skipped) == {"a", "b", "c", "d", "e", "f", "g", "out"}
    assert skipped["a"]["reason"] == ("its channels are coupled through input_add (Add), and the group's channels "
                                      "come from the model input (image)")
    assert skipped["b"]["reason"] == ("its channels are coupled through bc_add (Add) with c, and the group's channels "
                                      "reach cat (Concatenate), which joins the channels of several layers")
    assert skipped["b"]["group"] == ["b", "c"] and skipped["b"]["joins"] == ["bc_add (Add)"]
    assert "group" not in skipped["d"] and skipped["d"]["reason"].startswith("its channels reach cat (Concatenate)")
    assert "dw (DepthwiseConv2D) mapped them other than one to one" in skipped["f"]["reason"]
    assert "with f" in skipped["e"]["reason"]
    assert "backbone (Sequential), a nested model" in skipped["g"]["reason"]
    assert {row["name"]: row["kept"] for row in result.report["layers"]} == {"h": 3}
    assert removable_sources(model) == {**{n: s["reason"] for n, s in skipped.items()}, "h": None}
    assert result.model.predict(_images((8, 8, 4)), verbose=0).shape == (8, 3)


@pytest.mark.slow
def test_trained_resnet8_pruned_fine_tuned_and_exported_with_parity(tmp_path) -> None:
    """ResNet-8 trained briefly on coloured shapes: structured pruning of its residual groups, fine-tuning, TFLite
    and ONNX exports that match the pruned Keras model, then magnitude pruning of the residual model."""
    from edgekit.compression.prune import (
        MagnitudePruneConfig,
        kernel_sparsity,
        magnitude_prune,
    )
    from edgekit.evaluate import predict_file
    from edgekit.export.convert import keras2onnx, keras2tflite
    from edgekit.rules.parity import check_parity
    from edgekit.train.trainer import FitSettings, fit, predict, seed_everything

    seed_everything(0)
    x, y = zoo.shapes_rgb(480, classes=4, seed=0)
    x = x.astype(np.float32) / 255.0
    (x_train, y_train), (x_val, y_val) = (x[:384], y[:384]), (x[384:], y[384:])
    model = zoo.build("resnet8", keras(), classes=4)
    fit(model, x_train, y_train, FitSettings(2, 32, 2e-3), validation=(x_val, y_val))

    result = prune_structured(model, ratio=0.5)
    pruned = result.model
    kept = {row["name"]: row["kept"] for row in result.report["layers"]}
    assert kept["stem"] == kept["s1_conv2"] == 8 and kept["s3_proj"] == kept["s3_conv2"] == 32
    assert result.report["macs_after"] == count_macs(pruned) < 0.35 * result.report["macs_before"]
    fit(pruned, x_train, y_train, FitSettings(1, 32, 5e-4), validation=(x_val, y_val), label="fine-tuning")

    scores = predict(pruned, x_val)
    for fmt, data in (("tflite", keras2tflite(pruned)), ("onnx", keras2onnx(pruned, (32, 32, 3)))):
        path = tmp_path / f"pruned.{fmt}"
        path.write_bytes(data)
        parity = check_parity(predict_file(str(path), fmt, x_val), scores, y_val, "fp32", "pruned", fmt)
        assert parity.status == "ok", f"{fmt}: {parity.reason}"

    sparse = magnitude_prune(pruned, x_train, y_train, MagnitudePruneConfig(sparsity=0.5, epochs=1,
                                                                            schedule="constant"))
    assert kernel_sparsity(sparse) == pytest.approx(0.5, abs=0.02)
    assert sparse.get_layer("s2_add").output_shape == pruned.get_layer("s2_add").output_shape


def test_multiply_gate_is_coupled_and_a_channel_broadcast_is_not() -> None:
    """A squeeze-and-excitation gate (Multiply of a feature map by per-channel weights) couples the feature map's
    channels with the gate's, which a Reshape made (so both stay whole); a Multiply that broadcasts one channel over
    many keeps its sources whole."""
    k = keras()
    inp = k.Input((8, 8, 3), name="image")
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(inp)
    gate = k.layers.Dense(8, activation="sigmoid", name="gate")(k.layers.GlobalAveragePooling2D(name="squeeze")(x))
    x = k.layers.Multiply(name="excite")([x, k.layers.Reshape((1, 1, 8), name="to_map")(gate)])
    y = k.layers.Conv2D(6, 1, name="wide")(x)
    mask = k.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    x = k.layers.Multiply(name="masked")([y, mask])
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    model = k.Model(inp, k.layers.Dense(3, name="out")(x))
    skipped = {s["layer"]: s["reason"] for s in prune_structured(model, ratio=0.5).report["skipped"]}
    assert "masked (Multiply), which broadcasts channels between its inputs" in skipped["wide"]
    assert "masked (Multiply), which broadcasts" in skipped["mask"]
    assert skipped["gate"] == "its channels reach to_map (Reshape), which rearranges channels"
    assert skipped["features"] == ("its channels are coupled through excite (Multiply), and the group's channels "
                                   "come from to_map (Reshape), which rearranges channels")
