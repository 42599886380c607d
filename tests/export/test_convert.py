"""tflite2onnx: a TFLite model with a fixed batch of 1 becomes an ONNX model that runs at batch 32,
with the input named ``input``; keras2tflite's sparse option, has_int8_weights and litert_problem."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from tests.helpers.models import TinyModels, tiny_models
from edgekit.export.convert import has_int8_weights, keras2tflite, litert_problem, tflite2onnx


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory.getbasetemp())


def _fixed_batch_tflite(tiny: TinyModels) -> bytes:
    from edgekit._tf import tf
    from edgekit.models.files import load_keras_file

    t = tf()
    model = load_keras_file(tiny.keras)
    fn = t.function(lambda x: model(x)).get_concrete_function(t.TensorSpec((1, 28, 28, 1), t.float32))
    return bytes(t.lite.TFLiteConverter.from_concrete_functions([fn], model).convert())


@pytest.mark.slow
def test_fixed_batch_tflite_gets_a_symbolic_batch(tiny: TinyModels) -> None:
    data = _fixed_batch_tflite(tiny)
    sess = ort.InferenceSession(tflite2onnx(data), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.name == "input" and not isinstance(inp.shape[0], int), inp.shape
    x = tiny.x_test[:32]
    out = sess.run(None, {"input": x})[0]
    assert out.shape == (32, 10)
    from edgekit.evaluate import predict_file

    np.testing.assert_allclose(out, predict_file(str(tiny.tflite), "tflite", x), atol=1e-4)


@pytest.mark.slow
def test_dynamic_batch_int8_tflite_converts_with_int8_weights(tiny: TinyModels) -> None:
    import onnx

    model = onnx.load_from_string(tflite2onnx(tiny.tflite_int8.read_bytes()))
    inits = {i.name: i for i in model.graph.initializer}
    dq = [inits[n.input[0]] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert any(t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2 for t in dq)
    assert model.graph.input[0].name == "input"


@pytest.mark.slow
def test_litert_problem_names_what_fails(tiny: TinyModels) -> None:
    assert litert_problem(tiny.tflite.read_bytes()) is None
    assert litert_problem(b"not a model") is not None


def test_int8_weights_are_read_from_the_converted_file() -> None:
    """keras2tflite_encoded keeps a file dense when it stores int8 weights (LiteRT cannot run those sparse-encoded):
    full int8 and dynamic range do, fp32 and float16 do not. An untrained model: nothing is fitted."""
    from edgekit._tf import keras

    k = keras()
    k.utils.set_random_seed(0)
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(64), k.layers.Dense(4)])
    calib = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32)
    got = {q: has_int8_weights(keras2tflite(model, quantization=q, representative=calib))  # type: ignore[arg-type]
           for q in ("none", "float16", "dynamic", "int8")}
    assert got == {"none": False, "float16": False, "dynamic": True, "int8": True}


def test_per_tensor_int8_has_one_scale_per_weight_tensor_and_runs() -> None:
    """keras2tflite(per_channel=False): every weight tensor carries one scale (not one per output channel), the
    file is smaller, and LiteRT runs it to the per-channel file's top-1 on most inputs. An untrained model."""
    from ai_edge_litert.interpreter import Interpreter

    from edgekit._tf import keras
    from edgekit.export.tflite_reader import parse_tflite

    k = keras()
    k.utils.set_random_seed(0)
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Conv2D(16, 3, activation="relu"), k.layers.Flatten(),
                          k.layers.Dense(16, activation="relu"), k.layers.Dense(4)])
    x = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    files = {pc: keras2tflite(model, quantization="int8", representative=x[:16], per_channel=pc)
             for pc in (True, False)}

    def scales(data: bytes) -> list[int]:
        """Scales per int8 weight tensor (those with bytes in the file)."""
        parsed = parse_tflite(data)
        return sorted(len(t.quantization.scale) for t in parsed.subgraphs[0].tensors
                      if t.dtype == "int8" and t.quantization and parsed.buffer_bytes(t.buffer))

    assert scales(files[True]) == [4, 16, 16] and scales(files[False]) == [1, 1, 1]
    assert len(files[False]) < len(files[True])

    def top1(data: bytes) -> np.ndarray:
        it = Interpreter(model_content=data)
        it.resize_tensor_input(it.get_input_details()[0]["index"], x.shape)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return np.asarray(it.get_tensor(it.get_output_details()[0]["index"])).argmax(1)

    assert (top1(files[False]) == top1(files[True])).mean() >= 0.8
