"""names_layer: which converter node/tensor names belong to a Keras layer, anchored at the model's top-level scope.

The names are copied from real exports (edgekit.export.convert keras2tflite, float and int8, and keras2onnx
with tf2onnx) of a model ``outer`` with a top-level ``conv1`` and ``dw`` and a nested ``backbone`` holding
its own ``conv1`` and ``dw``: the same short names at two depths.
"""

from __future__ import annotations

import pytest

from edgekit.compression.mixed import names_layer

TFLITE = {  # weight op's output tensor name -> the Keras layer it belongs to
    "outer/conv1/Conv2D1": "conv1",
    "outer/backbone/relu1/Relu;outer/backbone/conv1/Conv2D": "backbone/conv1",
    "outer/backbone/dw/depthwise1": "backbone/dw",
    "outer/dw/Conv2D1": "dw",
    "outer/head/MatMul2": "head",
}
ONNX = {  # node names and the constant inputs _tags adds (tf2onnx)
    "outer/conv1/Conv2D": "conv1",
    "outer/conv1/Conv2D/ReadVariableOp:0": "conv1",
    "outer/backbone/conv1/Conv2D": "backbone/conv1",
    "outer/backbone/conv1/Conv2D_weights_fused_bn": "backbone/conv1",
    "outer/backbone/dw/depthwise": "backbone/dw",
    "outer/dw/Conv2D": "dw",
    "outer/dw/Conv2D/ReadVariableOp:0": "dw",
    "outer/head/MatMul": "head",
}
LAYERS = ("conv1", "dw", "head", "backbone/conv1", "backbone/dw", "relu1", "bn1", "outer")


@pytest.mark.parametrize("name, layer", [*TFLITE.items(), *ONNX.items()])
def test_each_name_belongs_to_exactly_its_layer(name: str, layer: str) -> None:
    assert [candidate for candidate in LAYERS if names_layer(name, candidate)] == [layer]


def test_a_top_level_layer_does_not_name_a_nested_one_of_the_same_name() -> None:
    assert names_layer("outer/conv1/Conv2D1", "conv1")
    assert not names_layer("outer/backbone/relu1/Relu;outer/backbone/conv1/Conv2D", "conv1")
    assert not names_layer("outer/backbone/conv1/Conv2D", "conv1")
    assert not names_layer("outer/conv1/Conv2D", "backbone/conv1")


def test_names_without_a_layer_scope_name_no_layer() -> None:
    for name in ("StatefulPartitionedCall:0", "tfl.quantize", "const_fold_opt__4", "serving_default_input:0"):
        assert not any(names_layer(name, layer) for layer in LAYERS)


def test_a_stateful_partitioned_call_wrapper_is_not_the_model_scope() -> None:
    assert names_layer("StatefulPartitionedCall/outer/conv1/Conv2D", "conv1")
    assert not names_layer("StatefulPartitionedCall/outer/backbone/conv1/Conv2D", "conv1")
