"""The sensitivity analysis and int8 protection on a residual model (ResNet-8, seeded random weights with set
BatchNorm statistics, no training): a coupled group of sources is measured once, on the row of its costliest
member, and layers on both sides of a residual join can be kept out of int8 by name."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.helpers import zoo

pytestmark = pytest.mark.slow  # no training, but about a minute and a half of analysis and conversion on 2 cores

GROUPS = {"stem": "s1_conv2", "s2_proj": "s2_conv2", "s3_proj": "s3_conv2"}  # member → the row measuring the group


@pytest.fixture(scope="module")
def resnet8() -> tuple[Any, Any, dict[str, Any]]:
    from edgekit.analyze.sensitivity import SensitivityConfig, analyze_dataset
    from edgekit.data.datasets import Dataset

    model = zoo.build("resnet8", classes=4)
    zoo.randomise_batchnorm(model, seed=0)
    x, y = zoo.shapes_rgb(200, classes=4, seed=0)
    x = x.astype(np.float32) / 255.0
    ds = Dataset("shapes_rgb", x[:96], y[:96], x[96:160], y[96:160], x[160:], y[160:], ("disc", "square", "triangle",
                                                                                       "cross"))
    analysis = analyze_dataset(model, ds, SensitivityConfig(sparsities=(0.5,), structured=(0.5,),
                                                            calibration_samples=32))
    return model, ds, analysis


def test_each_coupled_group_is_measured_once(resnet8: tuple[Any, Any, dict[str, Any]]) -> None:
    from edgekit.compression.structured import prune_structured

    model, ds, analysis = resnet8
    rows = {r["name"]: r for r in analysis["layers"]}
    assert set(rows) == {"stem", "s1_conv1", "s1_conv2", "s2_conv1", "s2_proj", "s2_conv2", "s3_conv1", "s3_proj",
                         "s3_conv2", "classifier"}
    for member, lead in GROUPS.items():
        assert rows[member]["structured"] == {} and f"removed with those of {lead}" in rows[member]["structured_skip"]
        assert set(rows[lead]["structured"]) == {"0.5"} and "structured_skip" not in rows[lead]
    assert "model output" in rows["classifier"]["structured_skip"]
    assert all(set(r["prune"]) == {"0.5"} and r["quant"]["snr_db"] is not None for r in rows.values())
    json.dumps(analysis)
    # a fraction named for either member prunes the same group
    a = prune_structured(model, per_layer={"s2_proj": 0.5}).model.predict(ds.x_val, verbose=0)
    b = prune_structured(model, per_layer={"s2_conv2": 0.5}).model.predict(ds.x_val, verbose=0)
    np.testing.assert_array_equal(a, b)


def test_layers_on_both_sides_of_a_join_can_stay_out_of_int8(resnet8: tuple[Any, Any, dict[str, Any]]) -> None:
    from edgekit.compression.mixed import budgeted_int8_tflite

    model, ds, analysis = resnet8
    kept = {"s2_conv2", "s2_proj"}  # the residual branch and its projection shortcut, joined at s2_add
    forced = {**analysis, "layers": [{**r, "protected": r["name"] in kept,
                                      "int8_reason": "forced by the test" if r["name"] in kept else ""}
                                     for r in analysis["layers"]]}
    got = budgeted_int8_tflite(model, ds, forced, budget_pp=100.0, calibration_samples=32)
    precision = {r["name"]: r["precision"] for r in got.layers}
    assert got.action == "applied"
    assert {n for n, p in precision.items() if p == "float32"} == kept
    assert {n for n, p in precision.items() if p == "int8"} == set(precision) - kept
