"""``trainer.predict``: the same scores as ``Model.predict``, on both sides of its eager/graph switch."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.models.reference import build_reference_cnn
from edgekit.train import trainer


@pytest.mark.parametrize("n", [0, 1, 300, trainer.EAGER_IMAGES + 1])
def test_predict_matches_model_predict(n: int) -> None:
    model = build_reference_cnn()
    x = np.random.default_rng(0).random((n, 28, 28, 1), dtype=np.float32)
    got = trainer.predict(model, x, batch_size=128)
    assert got.dtype == np.float32 and got.shape == (n, 10)
    if n:  # Model.predict refuses no images; trainer.predict gives no scores
        np.testing.assert_allclose(got, model.predict(x, batch_size=128, verbose=0), atol=1e-6)
