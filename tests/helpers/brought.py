"""Models as users bring them: a zoo model trained and saved by plain Keras 3 in a child process.

Plain Keras 3 (``TF_USE_LEGACY_KERAS=0``) cannot run in a process that already imported tf_keras, so training and
saving happen in a child (as in :mod:`tests.helpers.keras3`). The child also evaluates the model it saved with
Keras 3 itself, so a caller can check edgekit's "as brought" accuracy against a plain Keras evaluation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, keras
    args = json.loads(sys.argv[1])
    sys.path.insert(0, args["root"])
    from tests.helpers import zoo
    d = np.load(args["data"])
    keras.utils.set_random_seed(args["seed"])
    model = zoo.build(args["model"], keras, input_shape=tuple(d["x_train"].shape[1:]), classes=args["classes"])
    model.compile(keras.optimizers.Adam(args["learning_rate"]), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(d["x_train"], d["y_train"], epochs=args["epochs"], batch_size=args["batch_size"], verbose=0)
    model.save(args["out"])
    acc = {s: float((model.predict(d["x_" + s], batch_size=256, verbose=0).argmax(1) == d["y_" + s]).mean())
           for s in ("val", "test") if "x_" + s in d.files}
    print("ACCURACY " + json.dumps(acc))
    """
)


def train_keras3(model: str, data: dict[str, np.ndarray], out: Path, *, classes: int, epochs: int,
                 batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0, timeout: float = 3600) -> dict[str, float]:
    """Train zoo ``model`` with Keras 3 on ``data`` (``x_train``/``y_train``, optionally ``x_val``/``y_val`` and
    ``x_test``/``y_test``: the arrays edgekit prepares, so the file expects edgekit's preprocessing), save it to
    ``out`` (``.keras``) and return Keras 3's own top-1 accuracy on the val/test arrays given."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    npz = out.with_suffix(".train.npz")
    np.savez(npz, **data)
    args: dict[str, Any] = {"root": str(ROOT), "data": str(npz), "model": model, "classes": classes, "epochs": epochs,
                            "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed, "out": str(out)}
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "0", "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(args)], env=env, capture_output=True,
                              text=True, timeout=timeout)
    finally:
        npz.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"Keras 3 training of {model} failed: {done.stderr[-2000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("ACCURACY "))
    return {k: float(v) for k, v in json.loads(line[len("ACCURACY "):]).items()}
