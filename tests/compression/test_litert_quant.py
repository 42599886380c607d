"""ptq-int4 (edgekit.compression.litert_quant, LiteRT Quantizer): int4 convolution/dense weights with int8
activations, run in real LiteRT.

Fast tier: the untrained reference CNN (no training); its int4 file is set against the converter's int8 file of the
same model: half the weight bytes, the same top-1 on most inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.compression.litert_quant import quantize_int4, weight_precisions
from edgekit.errors import UsageError
from edgekit.evaluate import predict_file
from edgekit.export.convert import keras2tflite, litert_problem
from edgekit.stages import quant_modes


@pytest.fixture(scope="module")
def model_and_calib():
    from edgekit.models.reference import build_reference_cnn

    rng = np.random.default_rng(0)
    return build_reference_cnn(), rng.random((32, 28, 28, 1), dtype=np.float32)


@pytest.mark.parametrize("granularity", ["channelwise", "blockwise_32"])
def test_int4_file_runs_in_litert_is_smaller_and_agrees(model_and_calib, tmp_path: Path,
                                                        granularity: str) -> None:
    model, calib = model_and_calib
    fp32 = keras2tflite(model)
    int8 = keras2tflite(model, quantization="int8", representative=calib)
    int4, record = quantize_int4(fp32, calib, granularity=granularity)
    assert litert_problem(int4) is None
    assert weight_precisions(int4) == {"int4": 4}  # conv1, conv2, dense1, output
    assert weight_precisions(int8) == {"int8": 4}
    # LiteRT Quantizer 0.11's policy has blockwise int4 only with float activations: both ops fall back, recorded
    assert record["weights"] == {"CONV_2D": "int4 channelwise", "FULLY_CONNECTED": "int4 channelwise"}
    assert record["requested"] == granularity
    assert len(int4) < 0.6 * len(int8), (len(int4), len(int8))  # 2.5 M MACs but 225 k weights: half a byte each
    paths = {}
    for name, data in (("fp32", fp32), ("int4", int4)):
        paths[name] = tmp_path / f"{name}.tflite"
        paths[name].write_bytes(data)
    x = np.random.default_rng(1).random((64, 28, 28, 1), dtype=np.float32)
    ref, got = predict_file(str(paths["fp32"]), "tflite", x), predict_file(str(paths["int4"]), "tflite", x)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 0.05, np.abs(got - ref).max()  # softmax scores of an untrained model


def test_ptq_int4_is_a_registered_mode_and_bad_settings_are_refused(model_and_calib) -> None:
    stage = quant_modes()["ptq-int4"]
    assert stage.name == "quantize.ptq_int4" and stage.parity and stage.produces == {"keras": "tflite"}
    with pytest.raises(UsageError, match="granularity"):
        quantize_int4(b"", model_and_calib[1], granularity="blockwise_7")


def test_an_all_zero_channel_keeps_a_finite_scale(model_and_calib) -> None:
    """A magnitude-pruned channel of zeros would get weight scale 0 and a NaN int32 bias in LiteRT Quantizer."""
    import warnings

    from edgekit.compression.litert_quant import with_live_channels

    model, calib = model_and_calib
    dead = model.__class__.from_config(model.get_config())
    dead.set_weights(model.get_weights())
    kernel, bias = dead.get_layer("conv1").get_weights()
    kernel[..., 3] = 0.0
    dead.get_layer("conv1").set_weights([kernel, bias])
    live = with_live_channels(dead)
    assert live is not dead and with_live_channels(model) is model  # a model without dead channels is not copied
    assert np.count_nonzero(live.get_layer("conv1").get_weights()[0][..., 3]) == 1
    np.testing.assert_allclose(live.predict(calib, verbose=0), dead.predict(calib, verbose=0), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # "invalid value encountered in cast" on the NaN bias
        quantize_int4(keras2tflite(live), calib[:8])
