"""Training-time data augmentation: small random shifts, rotations and zoom.

Off by default; ``--augment`` turns it on. The layers act only when called with
``training=True`` and are the identity at inference, so they never change an
exported model (the trainer applies them to batches, outside the model).
"""

from __future__ import annotations

from typing import Any

from edgekit._tf import keras
from edgekit.errors import UsageError


def augmentation_layers(shift: float = 0.1, rotation: float = 0.05, zoom: float = 0.1, *,
                        seed: int | None = None) -> Any:
    """A tf_keras Sequential of RandomTranslation / RandomRotation / RandomZoom.

    ``shift`` and ``zoom`` are fractions of the image height/width, ``rotation``
    a fraction of a full turn (0.05 = +/-18 degrees); 0 leaves that layer out.
    Pixels moved in from outside the image are 0 (black), as in MNIST-style data.
    """
    for name, value in (("shift", shift), ("rotation", rotation), ("zoom", zoom)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise UsageError(f"augmentation {name} must be a number in [0, 1), got {value!r}")
    k = keras()
    layers: list[Any] = []
    if shift:
        layers.append(k.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed, name="shift"))
    if rotation:
        layers.append(k.layers.RandomRotation(rotation, fill_mode="constant", seed=seed, name="rotation"))
    if zoom:
        layers.append(k.layers.RandomZoom(zoom, zoom, fill_mode="constant", seed=seed, name="zoom"))
    return k.Sequential(layers, name="augmentation")
