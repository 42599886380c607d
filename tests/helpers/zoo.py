"""The model zoo: the shapes of model users bring, for the tests and the benchmarks.

Each builder takes the Keras module to build with (``edgekit._tf.keras()`` for tf_keras, or plain Keras 3
``import keras`` for the files a user would save), so one definition serves both. The layer names are fixed,
so tests and reports can name layers.

- ``reference``: edgekit's reference CNN (Conv32 → MaxPool → Conv64 → MaxPool → Flatten → Dense64 → Dense).
- ``compact``: Conv-BN-ReLU stem, a depthwise-separable block, a SeparableConv2D, global average pooling.
- ``resnet8``: MLPerf Tiny's image-classification ResNet-8 shape: three residual stacks (16, 32, 64 filters) with
  BatchNorm, ``Add`` joins, 1×1 projection shortcuts where the shape changes, and global average pooling.
- ``ds_cnn``: MLPerf Tiny's keyword-spotting DS-CNN shape on a 49×10×1 spectrogram: a strided Conv-BN-ReLU, four
  depthwise-separable blocks (DepthwiseConv-BN-ReLU, 1×1 Conv-BN-ReLU), average pooling.
- ``mobilenet_v1_025``: MobileNetV1 at width 0.25 (13 depthwise-separable blocks, BN after every convolution).

Data that exists offline for them: Fashion-MNIST and digits (edgekit's datasets), and the generated sets below,
``shapes_rgb`` (coloured shapes on clutter, 32×32×3) and ``keyword_spectrograms`` (formant-like tracks, 49×10×1).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

BN_MOMENTUM = 0.9
"""BatchNorm momentum of every zoo model: short trainings (a few hundred steps) leave the default 0.99's moving
statistics far from the batch statistics, and such a model scores at chance in inference."""

ZOO = ("reference", "compact", "resnet8", "ds_cnn", "mobilenet_v1_025")
"""The zoo's model names, in the order the benchmark runs them."""


def _conv_bn_relu(k: Any, x: Any, filters: int, kernel: Any, strides: Any = 1, name: str = "") -> Any:
    x = k.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = k.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return k.layers.ReLU(name=f"{name}_relu")(x)


def _dw_bn_relu(k: Any, x: Any, strides: Any = 1, name: str = "") -> Any:
    x = k.layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = k.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return k.layers.ReLU(name=f"{name}_relu")(x)


def reference(k: Any, input_shape: tuple[int, ...] = (28, 28, 1), classes: int = 10) -> Any:
    """The reference CNN (the same layers and names as :func:`edgekit.models.reference.build_reference_cnn`)."""
    inp = k.Input(input_shape, name="input")
    x = k.layers.Conv2D(32, 3, activation="relu", name="conv1")(inp)
    x = k.layers.MaxPooling2D(2, name="pool1")(x)
    x = k.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = k.layers.MaxPooling2D(2, name="pool2")(x)
    x = k.layers.Flatten(name="flatten")(x)
    x = k.layers.Dense(64, activation="relu", name="dense1")(x)
    return k.Model(inp, k.layers.Dense(classes, activation="softmax", name="output")(x), name="reference_cnn")


def compact(k: Any, input_shape: tuple[int, ...] = (28, 28, 1), classes: int = 10) -> Any:
    """A compact BN/depthwise model (the layers of ``tests.helpers.models.build_compact_cnn``)."""
    inp = k.Input(input_shape, name="input")
    x = _conv_bn_relu(k, inp, 16, 3, 2, "stem")
    x = _dw_bn_relu(k, x, 1, "dw1")
    x = _conv_bn_relu(k, x, 32, 1, 1, "pw1")
    x = k.layers.SeparableConv2D(64, 3, strides=2, padding="same", use_bias=False, name="sep2")(x)
    x = k.layers.BatchNormalization(momentum=BN_MOMENTUM, name="sep2_bn")(x)
    x = k.layers.ReLU(name="sep2_relu")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    return k.Model(inp, k.layers.Dense(classes, activation="softmax", name="classifier")(x), name="compact_cnn")


def resnet8(k: Any, input_shape: tuple[int, ...] = (32, 32, 3), classes: int = 10) -> Any:
    """MLPerf Tiny's ResNet-8: stacks of 16, 32 and 64 filters, projection shortcuts where the stride is 2."""
    inp = k.Input(input_shape, name="input")
    x = _conv_bn_relu(k, inp, 16, 3, 1, "stem")
    for i, (filters, strides) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
        y = _conv_bn_relu(k, x, filters, 3, strides, f"s{i}_conv1")
        y = k.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"s{i}_conv2")(y)
        y = k.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"s{i}_conv2_bn")(y)
        if strides != 1 or x.shape[-1] != filters:
            x = k.layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"s{i}_proj")(x)
            x = k.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"s{i}_proj_bn")(x)
        x = k.layers.Add(name=f"s{i}_add")([x, y])
        x = k.layers.ReLU(name=f"s{i}_relu")(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    return k.Model(inp, k.layers.Dense(classes, activation="softmax", name="classifier")(x), name="resnet8")


def ds_cnn(k: Any, input_shape: tuple[int, ...] = (49, 10, 1), classes: int = 12) -> Any:
    """MLPerf Tiny's DS-CNN (keyword spotting), 64 channels, on a 49×10 spectrogram."""
    inp = k.Input(input_shape, name="input")
    x = _conv_bn_relu(k, inp, 64, (10, 4), (2, 2), "conv1")
    for i in range(1, 5):
        x = _dw_bn_relu(k, x, 1, f"dw{i}")
        x = _conv_bn_relu(k, x, 64, 1, 1, f"pw{i}")
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    return k.Model(inp, k.layers.Dense(classes, activation="softmax", name="classifier")(x), name="ds_cnn")


def mobilenet_v1_025(k: Any, input_shape: tuple[int, ...] = (32, 32, 3), classes: int = 10) -> Any:
    """MobileNetV1 at width multiplier 0.25: a strided stem and 13 depthwise-separable blocks."""
    blocks = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
              (512, 1), (1024, 2), (1024, 1))
    inp = k.Input(input_shape, name="input")
    x = _conv_bn_relu(k, inp, 8, 3, 2, "stem")
    for i, (filters, strides) in enumerate(blocks, start=1):
        x = _dw_bn_relu(k, x, strides, f"dw{i}")
        x = _conv_bn_relu(k, x, filters // 4, 1, 1, f"pw{i}")
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    return k.Model(inp, k.layers.Dense(classes, activation="softmax", name="classifier")(x),
                   name="mobilenet_v1_025")


BUILDERS: dict[str, Callable[..., Any]] = {
    "reference": reference, "compact": compact, "resnet8": resnet8, "ds_cnn": ds_cnn,
    "mobilenet_v1_025": mobilenet_v1_025,
}


def build(name: str, k: Any | None = None, **kwargs: Any) -> Any:
    """Build zoo model ``name`` (random weights) with ``k`` (default: edgekit's tf_keras)."""
    if k is None:
        from edgekit._tf import keras

        k = keras()
    return BUILDERS[name](k, **kwargs)


def randomise_batchnorm(model: Any, seed: int = 0) -> None:
    """Random BatchNorm statistics (gamma around 1, beta, mean, variance >= 0.5) and biases, as a trained model has
    them, so a test without training sees every BatchNorm do something; kernels keep their Glorot draw."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = (rng.normal(0.0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights())
            layer.set_weights([gamma + 1.0, beta, mean, np.abs(var) + 0.5])
        elif getattr(layer, "use_bias", False):
            layer.bias.assign(rng.normal(0.0, 0.3, layer.bias.shape).astype(np.float32))


def _disc(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _shape_mask(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = rng.uniform(size * 0.18, size * 0.32)
    cy, cx = rng.uniform(r + 1, size - r - 1, 2)
    if kind == 0:  # disc
        return _disc(yy, xx, cy, cx, r)
    if kind == 1:  # square
        return (np.abs(yy - cy) <= r * 0.8) & (np.abs(xx - cx) <= r * 0.8)
    if kind == 2:  # triangle pointing up
        return (yy <= cy + r * 0.8) & (np.abs(xx - cx) <= (yy - (cy - r)) * 0.6)
    w = max(1.5, r * 0.3)  # cross
    return ((np.abs(yy - cy) <= w) & (np.abs(xx - cx) <= r)) | ((np.abs(xx - cx) <= w) & (np.abs(yy - cy) <= r))


def shapes_rgb(n: int, size: int = 32, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` coloured shapes (disc, square, triangle, cross) on a random clutter background, uint8 (n, size, size, 3)."""
    if not 2 <= classes <= 4:
        raise ValueError("shapes_rgb has 2 to 4 classes")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = np.empty((n, size, size, 3), np.uint8)
    for i, kind in enumerate(y):
        bg = rng.uniform(0, 120, 3) + rng.normal(0, 25, (size, size, 3))
        clutter = _disc(*np.mgrid[0:size, 0:size].astype(np.float32), *rng.uniform(0, size, 2), rng.uniform(2, 6))
        bg[clutter] += rng.uniform(40, 120, 3)
        img = bg
        img[_shape_mask(int(kind), size, rng)] = rng.uniform(130, 255, 3)
        x[i] = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
    return x, y.astype(np.int64)


def keyword_spectrograms(n: int, classes: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 49×10 spectrogram-like images, uint8 (n, 49, 10, 1): each class is a fixed pattern of two formant
    tracks over time, shifted, stretched and buried in noise per example."""
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(10_000 + classes).uniform(0.5, 8.5, (classes, 2, 3))  # per class: 2 tracks, 3 knots
    y = rng.integers(0, classes, n)
    t = np.linspace(0, 1, 49)
    f = np.arange(10, dtype=np.float32)
    x = np.empty((n, 49, 10, 1), np.uint8)
    for i, c in enumerate(y):
        shift, stretch = rng.uniform(-0.15, 0.15), rng.uniform(0.8, 1.2)
        tt = np.clip((t - 0.5) * stretch + 0.5 + shift, 0, 1)
        img = rng.normal(0.3, 0.45, (49, 10))
        for track in protos[c]:
            centre = np.interp(tt, (0, 0.5, 1), track + rng.normal(0, 0.9, 3))
            img += np.exp(-((f[None, :] - centre[:, None]) ** 2) / 1.2) * (0.6 + 0.4 * np.sin(np.pi * tt))[:, None]
        x[i, :, :, 0] = np.clip(img * 180, 0, 255).astype(np.uint8)
    return x, y.astype(np.int64)
