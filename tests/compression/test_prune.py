"""Unstructured pruning: per-layer sparsity, constant/polynomial schedules, 2:4 along the input-channel
axis, and TFLite's sparse tensor encoding (raw file shrinks, LiteRT runs it, outputs match)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from edgekit.compression.prune import (MagnitudePruneConfig, kernel_sparsity, magnitude_prune, nm_blocks_ok,
                                    parse_pattern, pruning_report)
from edgekit.errors import UsageError
from edgekit.export.convert import SPARSE_MIN_SPARSITY, keras2tflite, keras2tflite_encoded, litert_problem


@pytest.fixture(scope="module")
def trained():
    from edgekit.data.datasets import load_dataset
    from edgekit.models.reference import build_reference_cnn
    from edgekit.train.trainer import FitSettings, fit, seed_everything

    seed_everything(0)
    ds = load_dataset("digits")
    model = build_reference_cnn(ds.input_shape, ds.num_classes)
    fit(model, ds.x_train, ds.y_train, FitSettings(1, 64, 1e-3, False, False))
    return model, ds


def prune(trained, **kw):  # noqa: ANN001, ANN201
    model, ds = trained
    return magnitude_prune(model, ds.x_train, ds.y_train, MagnitudePruneConfig(epochs=1, **kw))


@pytest.fixture(scope="module")
def pruned80(trained):
    return prune(trained, sparsity=0.8)


def test_nm_blocks_check() -> None:
    k = np.array([[1, 0, 2, 0], [0, 3, 0, 0]], np.float32).T  # (in=4, out=2): blocks run along axis 0
    assert nm_blocks_ok(k, 2, 4, axis=0)
    assert not nm_blocks_ok(np.ones((4, 2), np.float32), 2, 4, axis=0)
    assert not nm_blocks_ok(np.zeros((6, 2), np.float32), 2, 4, axis=0)  # 6 is not a multiple of 4
    assert parse_pattern("2:4") == (2, 4) and parse_pattern("4:2") is None and parse_pattern("x") is None


@pytest.mark.slow
def test_bad_settings_are_usage_errors(trained) -> None:
    with pytest.raises(UsageError, match="pattern"):
        MagnitudePruneConfig(pattern="4:4").validate()
    with pytest.raises(UsageError, match="per_layer.conv1"):
        MagnitudePruneConfig(per_layer={"conv1": 1.0}).validate()
    with pytest.raises(UsageError, match="nope"):
        prune(trained, per_layer={"nope": 0.5})


@pytest.mark.slow
def test_polynomial_schedule_reaches_the_target(pruned80) -> None:
    assert kernel_sparsity(pruned80) == pytest.approx(0.8, abs=0.01)
    assert all(v["sparsity"] == pytest.approx(0.8, abs=0.01) for v in pruning_report(pruned80).values())


@pytest.mark.slow
def test_constant_schedule_and_per_layer_sparsity(trained) -> None:
    model = prune(trained, sparsity=0.5, schedule="constant", per_layer={"dense1": 0.9, "conv1": 0.0})
    layers = pruning_report(model)
    assert layers["conv1"]["sparsity"] < 0.05  # 0 = left dense
    assert layers["conv2"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert layers["dense1"]["sparsity"] == pytest.approx(0.9, abs=0.01)


@pytest.mark.slow
def test_two_four_pattern_holds_along_input_channels(trained) -> None:
    model = prune(trained, pattern="2:4")
    report = pruning_report(model, "2:4")
    assert report["conv1"]["pattern"].startswith("skipped: 1 input channels")  # Cin = 1 cannot take 2:4
    for name, axis in (("conv2", 2), ("dense1", 0), ("output", 0)):
        assert report[name]["pattern"] == "holds" and report[name]["sparsity"] == pytest.approx(0.5, abs=0.001)
        kernel = model.get_layer(name).get_weights()[0]
        assert nm_blocks_ok(kernel, 2, 4, axis)
        # not a pattern along the output axis: the check is about the right axis
        assert not nm_blocks_ok(kernel, 2, 4, kernel.ndim - 1)


@pytest.mark.slow
def test_sparse_encoding_shrinks_fp32_and_runs_on_litert(pruned80, trained) -> None:
    _, ds = trained
    dense = keras2tflite(pruned80)
    data, metrics = keras2tflite_encoded(pruned80, kernel_sparsity(pruned80))
    assert metrics["sparse_encoding"] is True and metrics["dense_bytes"] == len(dense)
    assert len(data) < 0.4 * len(dense), (len(data), len(dense))  # raw bytes: 80 % zeros mostly gone
    assert len(gzip.compress(data)) < len(gzip.compress(dense))
    assert litert_problem(data) is None
    from edgekit.runtime.sessions import LiteRTSession

    outs = []
    for blob in (dense, data):
        path = f"/tmp/edgekit-test-sparse-{len(blob)}.tflite"
        with open(path, "wb") as f:
            f.write(blob)
        outs.append(LiteRTSession(path, threads=1).predict(ds.x_test[:64]))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)


@pytest.mark.slow
def test_sparse_encoding_is_refused_for_int8_and_low_sparsity(pruned80, trained) -> None:
    _, ds = trained
    calib = ds.calibration(50)
    data, metrics = keras2tflite_encoded(pruned80, 0.8, quantization="int8", representative=calib)
    assert metrics["sparse_encoding"] is False and "XNNPACK" in metrics["sparse_encoding_reason"]
    # what the table records: the sparse int8 file really fails on LiteRT's default delegate
    sparse_int8 = keras2tflite(pruned80, quantization="int8", representative=calib, sparse=True)
    assert litert_problem(sparse_int8) is not None
    assert litert_problem(data) is None
    _, metrics = keras2tflite_encoded(pruned80, SPARSE_MIN_SPARSITY - 0.1)
    assert metrics["sparse_encoding"] is False and "<" in metrics["sparse_encoding_reason"]
