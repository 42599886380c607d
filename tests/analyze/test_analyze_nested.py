"""Layers inside a nested backbone (a Functional model with a Sequential block, used as one layer) are analysed
one by one as ``backbone/conv1``, pruned per layer, and kept out of int8 by name; filter removal says it cannot act.

The analysis needs no trained model (seeded random weights); the tests that fine-tune or convert are slow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

NESTED = {"backbone/conv1", "backbone/dw", "backbone/block/pw", "head"}


def build_nested_model(seed: int = 0) -> Any:
    """input → backbone (Conv2D, BN, ReLU, DepthwiseConv2D, Sequential block [1×1 Conv2D]) → GAP → Dense."""
    from edgekit._tf import keras, tf

    tf().random.set_seed(seed)
    k = keras()
    b_in = k.layers.Input((28, 28, 1), name="backbone_input")
    x = k.layers.Conv2D(8, 3, strides=2, padding="same", name="conv1")(b_in)
    x = k.layers.BatchNormalization(name="bn1")(x)
    x = k.layers.ReLU(name="relu1")(x)
    x = k.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    block = k.Sequential([k.layers.Input((14, 14, 8)), k.layers.Conv2D(16, 1, activation="relu", name="pw")], name="block")
    backbone = k.Model(b_in, block(x), name="backbone")
    inp = k.layers.Input((28, 28, 1), name="input")
    y = k.layers.GlobalAveragePooling2D(name="gap")(backbone(inp))
    return k.Model(inp, k.layers.Dense(10, activation="softmax", name="head")(y), name="outer")


@pytest.fixture(scope="module")
def nested() -> tuple[Any, Any, dict[str, Any]]:
    from edgekit.analyze.sensitivity import SensitivityConfig, analyze_dataset
    from edgekit.data.datasets import load_dataset

    model = build_nested_model()
    ds = load_dataset("digits", train_limit=300, seed=0)
    analysis = analyze_dataset(model, ds, SensitivityConfig(sparsities=(0.5, 0.9), structured=(0.25,),
                                                            calibration_samples=32))
    return model, ds, analysis


def test_inner_layers_are_listed_and_measured_with_qualified_names(nested: tuple[Any, Any, dict[str, Any]]) -> None:
    model, _, analysis = nested
    rows = {r["name"]: r for r in analysis["layers"]}
    assert set(rows) == NESTED
    assert rows["backbone/block/pw"]["op"] == "Conv2D" and rows["backbone/dw"]["op"] == "DepthwiseConv2D"
    assert rows["backbone/conv1"]["params"] == 3 * 3 * 8 + 8 and rows["backbone/conv1"]["macs"] == 14 * 14 * 8 * 9
    for name in NESTED - {"head"}:
        r = rows[name]
        assert set(r["prune"]) == {"0.5", "0.9"} and r["quant"]["snr_db"] > 20
        # filter removal cannot act inside a nested model, and the row says so
        assert r["structured"] == {} and "nested model" in r["structured_skip"]
        assert "filter removal not acted on" in r["reason"]
    json.dumps(analysis)


def test_simulated_int8_of_an_inner_layer_changes_only_that_layer(nested: tuple[Any, Any, dict[str, Any]]) -> None:
    from edgekit.analyze.fakequant import FakeQuantModel, find_layer

    model, ds, _ = nested
    x = ds.x_val[:64]
    fq = FakeQuantModel(model, ds.x_train[:32])
    assert set(fq.names) == NESTED and find_layer(model, "backbone/block/pw").name == "pw"
    fq.set_int8(())
    np.testing.assert_allclose(fq.predict(x), model.predict(x, verbose=0), atol=1e-6)
    fq.set_int8(["backbone/block/pw"])
    assert np.abs(fq.predict(x) - model.predict(x, verbose=0)).max() > 0


def test_budgeted_choices_name_inner_layers_for_pruning_but_not_for_filter_removal(
        nested: tuple[Any, Any, dict[str, Any]]) -> None:
    from edgekit.analyze.decide import choose_levels
    from edgekit.compression.mixed import names_layer

    _, _, analysis = nested
    assert set(choose_levels(analysis["layers"], 1e6, "prune")) == NESTED  # an unlimited budget reaches every layer
    assert set(choose_levels(analysis["layers"], 1e6, "structured")) <= {"head"}
    # converters name nested ops by their full scope
    assert names_layer("outer/backbone/block/pw/Relu;outer/backbone/block/pw/Conv2D", "backbone/block/pw")
    assert names_layer("outer/backbone/conv1/Conv2D", "backbone/conv1")
    assert not names_layer("outer/backbone/conv1/Conv2D", "backbone/dw")
    assert not names_layer("outer/conv1/Conv2D", "backbone/conv1")


@pytest.mark.slow
def test_per_layer_pruning_and_int8_protection_act_on_inner_layers(nested: tuple[Any, Any, dict[str, Any]],
                                                                   tmp_path: Path) -> None:
    from edgekit.compression.budget import val_accuracy
    from edgekit.compression.mixed import budgeted_int8_onnx
    from edgekit.compression.prune import MagnitudePruneConfig, magnitude_prune, pruning_report
    from edgekit.export.convert import keras2onnx

    model, ds, analysis = nested
    pruned = magnitude_prune(model, ds.x_train[:64], ds.y_train[:64],
                             MagnitudePruneConfig(sparsity=0.0, per_layer={"backbone/block/pw": 0.5}, epochs=1,
                                                  schedule="constant"))
    report = pruning_report(pruned)
    assert report["backbone/block/pw"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert report["backbone/conv1"]["sparsity"] < 0.1

    forced = {**analysis, "layers": [{**r, "protected": r["name"] == "backbone/dw",
                                      "int8_reason": "forced by the test" if r["name"] == "backbone/dw" else ""}
                                     for r in analysis["layers"]]}
    onnx_path = tmp_path / "nested.onnx"
    onnx_path.write_bytes(keras2onnx(model, ds.input_shape))
    got = budgeted_int8_onnx(onnx_path, ds, forced, budget_pp=100.0, reference_val_accuracy=val_accuracy(model, ds))
    layers = {r["name"]: r for r in got.layers}
    assert set(layers) == NESTED
    assert layers["backbone/dw"]["precision"] == "float32" and layers["backbone/dw"]["reason"] == "forced by the test"
    assert layers["head"]["precision"] == "int8"
