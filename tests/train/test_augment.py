"""Training-only augmentation: shape kept, changes images in training, identity at inference."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import UsageError
from edgekit.train.augment import augmentation_layers


def _images() -> np.ndarray:
    x = np.zeros((4, 28, 28, 1), np.float32)
    x[:, 8:20, 10:18, :] = 1.0  # a bright block off-centre, so every transform moves pixels
    return x


def test_training_changes_images_and_keeps_shape() -> None:
    x = _images()
    out = np.asarray(augmentation_layers(seed=1)(x, training=True))
    assert out.shape == x.shape
    assert not np.allclose(out, x)
    assert out.min() >= -1e-6 and out.max() <= 1.0 + 1e-6


def test_inference_is_identity() -> None:
    x = _images()
    np.testing.assert_array_equal(np.asarray(augmentation_layers()(x, training=False)), x)


def test_zero_factors_leave_layers_out() -> None:
    assert [layer.name for layer in augmentation_layers(shift=0.1, rotation=0, zoom=0).layers] == ["shift"]


@pytest.mark.parametrize("bad", [{"shift": -0.1}, {"rotation": 1.0}, {"zoom": "big"}])
def test_bad_factors(bad: dict) -> None:
    with pytest.raises(UsageError, match="augmentation"):
        augmentation_layers(**bad)
