"""Keras 3 ``.keras`` files for the model-loading tests, saved once per test session.

Plain Keras 3 (``TF_USE_LEGACY_KERAS=0``) cannot run in a process that already imported tf_keras, so the
files are written by one child process (TensorFlow and Keras 3 start once, not once per test module):

- ``seq``, ``functional``, ``softmax_layer`` with random weights, and each one's inputs ``<name>_x.npy`` and
  Keras 3 outputs ``<name>_y.npy``; ``lambda.keras`` (a Lambda layer) and ``unsupported.keras``
  (LayerNormalization), for :mod:`tests.models.test_loading`;
- ``user_plain.keras`` (a seeded CNN ending in logits) and ``user_lambda.keras`` (a Lambda layer), for
  :mod:`tests.models.test_user_model`. ``keras.backend.clear_session()`` and ``set_random_seed(0)`` come
  first, so these are the models a fresh process builds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, keras
    from keras import layers as L
    out = sys.argv[1]
    rng = np.random.default_rng(1)

    def randomise(model):
        for layer in model.layers:
            ws = [rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()]
            if type(layer).__name__ == "BatchNormalization":
                ws[-1] = np.abs(ws[-1]) + 0.5
            if ws:
                layer.set_weights(ws)

    def save(model, name):
        randomise(model)
        model.save(f"{out}/{name}.keras")
        x = np.random.default_rng(7).random((6, *model.input_shape[1:]), dtype=np.float32)
        np.save(f"{out}/{name}_x.npy", x)
        np.save(f"{out}/{name}_y.npy", model.predict(x, verbose=0))

    save(keras.Sequential([
        keras.Input((28, 28, 1)), L.Rescaling(2.0, offset=-1.0), L.Conv2D(8, 3, activation="relu"),
        L.BatchNormalization(), L.MaxPooling2D(), L.Conv2D(16, 3), L.ReLU(), L.AveragePooling2D(2),
        L.Flatten(), L.Dropout(0.3), L.Dense(32, activation="relu"), L.Dense(10, activation="softmax"),
    ]), "seq")

    i = keras.Input((12, 12, 3))
    a = L.ZeroPadding2D(1)(i)
    a = L.Conv2D(8, 3, name="stem")(a)
    b = L.DepthwiseConv2D(3, padding="same", depth_multiplier=1)(a)
    b = L.BatchNormalization()(b)
    c = L.Add()([a, b])
    d = L.SeparableConv2D(8, 3, padding="same")(c)
    e = L.Concatenate()([c, d])
    e = L.Activation("relu")(e)
    f = L.GlobalAveragePooling2D()(e)
    g = L.Reshape((4, 4))(f)
    g = L.Flatten()(g)
    h = L.Dense(5)(g)
    save(keras.Model(i, h), "functional")

    save(keras.Sequential([keras.Input((8, 8, 1)), L.Flatten(), L.Dense(4), L.Softmax()]), "softmax_layer")
    keras.Sequential([keras.Input((8, 8, 1)), L.Lambda(lambda x: x * 2, name="double"), L.Flatten(),
                      L.Dense(3)]).save(f"{out}/lambda.keras")
    keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 3), L.LayerNormalization(name="ln"), L.Flatten(),
                      L.Dense(3)]).save(f"{out}/unsupported.keras")

    # the user models: as a fresh process builds them (names and initial weights)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)  # seeded: an accuracy assertion must not depend on the initial weights
    model = keras.Sequential([
        keras.Input((28, 28, 1)), L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(),
        L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(), L.Dense(32, activation="relu"), L.Dense(10),
    ])
    model.save(f"{out}/user_plain.keras")
    lam = keras.Sequential([keras.Input((28, 28, 1)), L.Lambda(lambda t: t * 2.0), L.Flatten(), L.Dense(10)])
    lam.save(f"{out}/user_lambda.keras")
    """
)

_CACHE: dict[str, Path] = {}


def keras3_installed() -> bool:
    """Whether Keras 3 is installed, from the package metadata (importing it costs ~10 s)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("keras").split(".")[0]) >= 3
    except (PackageNotFoundError, ValueError):
        return False


def keras3_files(base: Path) -> Path:
    """The folder of Keras 3 files (see the module docstring), written once per test session under ``base`` (the
    session's temporary folder; pytest-xdist workers share its parent, one of them writes, under a lock);
    skips the test when Keras 3 is not installed."""
    if "folder" not in _CACHE:
        import fcntl

        root = Path(base).parent if os.environ.get("PYTEST_XDIST_WORKER") else Path(base)
        out = root / "keras3-files"
        with open(root / "keras3-files.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (out / ".complete").is_file():
                out.mkdir(parents=True, exist_ok=True)
                env = {**os.environ, "TF_USE_LEGACY_KERAS": "0", "KERAS_BACKEND": "tensorflow",
                       "TF_CPP_MIN_LOG_LEVEL": "3"}
                done = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True,
                                      text=True, timeout=600)
                if done.returncode != 0 and "No module named 'keras'" in done.stderr:
                    pytest.skip("needs Keras 3 (pip install keras>=3)")
                assert done.returncode == 0, done.stderr[-2000:]
                (out / ".complete").touch()
        _CACHE["folder"] = out
    return _CACHE["folder"]
