"""The reference CNN from the seed listing, with the channel axis it needs.

Conv32-3×3 → MaxPool → Conv64-3×3 → MaxPool → Flatten → Dense64 → Dense10.
The original listing declared ``Input(shape=(28, 28))`` before a Conv2D, which
cannot run: Conv2D needs (H, W, C), so the input here is (28, 28, 1).
"""

from __future__ import annotations

from typing import Any

from edgekit._tf import keras


def build_reference_cnn(input_shape: tuple[int, ...] = (28, 28, 1), num_classes: int = 10) -> Any:
    """Build (not compile) the reference CNN as a tf_keras Sequential model."""
    k = keras()
    return k.Sequential(
        [
            k.layers.InputLayer(input_shape=input_shape, name="input"),
            k.layers.Conv2D(32, (3, 3), activation="relu", name="conv1"),
            k.layers.MaxPooling2D((2, 2), name="pool1"),
            k.layers.Conv2D(64, (3, 3), activation="relu", name="conv2"),
            k.layers.MaxPooling2D((2, 2), name="pool2"),
            k.layers.Flatten(name="flatten"),
            k.layers.Dense(64, activation="relu", name="dense1"),
            k.layers.Dense(num_classes, activation="softmax", name="output"),
        ],
        name="reference_cnn",
    )
