"""Loading users' models: tf_keras formats, Keras 3 .keras rebuilt in tf_keras, and the safety rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit._tf import keras
from edgekit.errors import ModelError
from edgekit.models.loading import keras3_path_name, load_user_model
from edgekit.models.reference import build_reference_cnn
from tests.helpers.keras3 import keras3_files


@pytest.fixture(scope="module")
def keras3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keras 3 files saved by plain Keras 3 with their outputs on fixed inputs (:mod:`tests.helpers.keras3`)."""
    return keras3_files(tmp_path_factory.getbasetemp())


@pytest.mark.parametrize(("name", "classes", "output"), [("seq", 10, "softmax"), ("functional", 5, "logits"),
                                                          ("softmax_layer", 4, "softmax")])
def test_keras3_rebuilt_in_tf_keras_matches(keras3_dir: Path, name: str, classes: int, output: str) -> None:
    loaded = load_user_model(keras3_dir / f"{name}.keras", verify_keras3=False)
    assert loaded.source_format == "keras3"
    assert loaded.num_classes == classes and loaded.output == output
    assert type(loaded.model).__module__.startswith("tf_keras")
    x = np.load(keras3_dir / f"{name}_x.npy")
    assert loaded.input_shape == x.shape[1:]
    np.testing.assert_allclose(loaded.model.predict(x, verbose=0), np.load(keras3_dir / f"{name}_y.npy"), atol=1e-5)


def test_keras3_lambda_refused_and_unsupported_named(keras3_dir: Path) -> None:
    with pytest.raises(ModelError, match="contains Lambda layer 'double'; pass --trust-model"):
        load_user_model(keras3_dir / "lambda.keras")
    with pytest.raises(ModelError, match=r"does not support: LayerNormalization \('ln'\)"):
        load_user_model(keras3_dir / "unsupported.keras")


def test_keras3_weight_group_names() -> None:
    assert keras3_path_name("Conv2D") == "conv2d"
    assert keras3_path_name("DepthwiseConv2D") == "depthwise_conv2d"
    assert keras3_path_name("BatchNormalization") == "batch_normalization"
    assert keras3_path_name("GlobalAveragePooling2D") == "global_average_pooling2d"


@pytest.mark.parametrize(("filename", "fmt"), [("m.h5", "tf_keras-h5"), ("m.keras", "tf_keras-keras"),
                                               ("saved", "savedmodel")])
def test_tf_keras_formats(tmp_path: Path, filename: str, fmt: str) -> None:
    model = build_reference_cnn()
    model.save(tmp_path / filename)
    loaded = load_user_model(tmp_path / filename, trust=fmt == "savedmodel")  # a SavedModel needs --trust-model
    assert loaded.source_format == fmt
    assert loaded.input_shape == (28, 28, 1) and loaded.num_classes == 10 and loaded.output == "softmax"
    x = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.model.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_logits_output_inferred(tmp_path: Path) -> None:
    k = keras()
    model = k.Sequential([k.Input((6, 6, 3)), k.layers.Flatten(), k.layers.Dense(7)])
    model.save(tmp_path / "logits.keras")
    loaded = load_user_model(tmp_path / "logits.keras")
    assert loaded.output == "logits" and loaded.num_classes == 7 and loaded.input_shape == (6, 6, 3)


def _lambda_model():
    k = keras()
    return k.Sequential([k.Input((4, 4, 1)), k.layers.Lambda(lambda x: x * 2, name="double"),
                         k.layers.Flatten(), k.layers.Dense(2)])


@pytest.mark.parametrize("filename", ["lam.h5", "lam.keras", "lam_saved"])
def test_tf_keras_lambda_needs_trust(tmp_path: Path, filename: str) -> None:
    _lambda_model().save(tmp_path / filename)
    with pytest.raises(ModelError, match=r"contains Lambda layer 'double'; pass --trust-model to load code from the file"):
        load_user_model(tmp_path / filename)


def test_trusted_lambda_loads_with_a_note(tmp_path: Path) -> None:
    _lambda_model().save(tmp_path / "lam.keras")
    loaded = load_user_model(tmp_path / "lam.keras", trust=True)
    assert loaded.num_classes == 2 and any("--trust-model" in note for note in loaded.notes)


def test_custom_layer_refused(tmp_path: Path) -> None:
    k = keras()

    @k.utils.register_keras_serializable(package="test")
    class Twice(k.layers.Layer):
        def call(self, x):
            return 2 * x

    model = k.Sequential([k.Input((4, 4, 1)), Twice(name="twice"), k.layers.Flatten(), k.layers.Dense(2)])
    model.save(tmp_path / "custom.keras")
    with pytest.raises(ModelError, match=r"custom layer 'twice' \(Twice\); pass --trust-model"):
        load_user_model(tmp_path / "custom.keras")


def test_missing_and_bogus_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nope.keras: no such model"):
        load_user_model(tmp_path / "nope.keras")
    (tmp_path / "junk.h5").write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="junk.h5: not a Keras model"):
        load_user_model(tmp_path / "junk.h5")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelError, match="not a model"):
        load_user_model(tmp_path / "folder")
    k = keras()
    model = k.Sequential([k.Input((4,)), k.layers.Dense(2)])
    model.save(tmp_path / "vector.keras")
    with pytest.raises(ModelError, match=r"vector.keras: expected an input of shape \(batch, height, width, channels\)"):
        load_user_model(tmp_path / "vector.keras")
