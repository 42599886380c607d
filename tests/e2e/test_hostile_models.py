"""Model files whose metadata lies, and recipes that try to give consent: no code from the file runs.

* A custom layer renamed ``Dense`` in a SavedModel's ``keras_metadata.pb`` (its config cannot build a
  Dense) is revived by tf_keras from the folder's traced functions, which here call
  ``tf.io.write_file``. SavedModel folders load only with ``--trust-model``.
* The same renaming in a ``.h5`` or ``.keras`` file (tf_keras or Keras 3) fails to load (those hold no
  functions, and edgekit rebuilds a Keras 3 file layer by layer): exit 2.
* ``trust_model`` in a recipe is refused: consent comes from the command line or the Python call.

The files are made in a subprocess (saving traces the layer's call; the marker is removed afterwards);
every case runs the command line (``-q``: progress off) in this process and trains nothing.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from edgekit.errors import ModelError
from edgekit.models.loading import load_user_model
from tests.helpers.cli import edgekit_in_process
from tests.helpers.hostile import make_hostile_models

RENAME = textwrap.dedent(
    """
    import json, zipfile

    def as_dense(value):  # every Evil object, anywhere in a config, renamed to a built-in class
        if isinstance(value, dict):
            if value.get("class_name") == "Evil":
                value = {**value, "class_name": "Dense", "module": "keras.layers", "registered_name": None}
            return {key: as_dense(v) for key, v in value.items()}
        return [as_dense(v) for v in value] if isinstance(value, list) else value

    def rewrite_keras_zip(source, target):  # the .keras archive with its config.json renamed
        with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
            for item in src.infolist():
                data = src.read(item)
                if item.filename == "config.json":
                    data = json.dumps(as_dense(json.loads(data))).encode()
                dst.writestr(item, data)
    """
)
"""What both makers share: the renaming of the custom class to ``Dense`` in a config and a .keras archive."""

MAKE = RENAME + textwrap.dedent(
    """
    import sys, h5py
    import tensorflow as tf
    import tf_keras as k
    from tf_keras.protobuf import saved_metadata_pb2
    out, marker = sys.argv[1], sys.argv[2]

    class Evil(k.layers.Layer):
        def __init__(self, path="", **kwargs):
            super().__init__(**kwargs)
            self.path = path

        def call(self, x):
            tf.io.write_file(self.path, "the model file ran code")
            return x

        def get_config(self):
            return {**super().get_config(), "path": self.path}

    def model():
        return k.Sequential([k.Input((8, 8, 1)), Evil(path=marker, name="evil"), k.layers.Flatten(),
                             k.layers.Dense(3, activation="softmax")])

    model().save(f"{out}/doctored_savedmodel", save_format="tf")
    meta_file = f"{out}/doctored_savedmodel/keras_metadata.pb"
    meta = saved_metadata_pb2.SavedMetadata()
    meta.ParseFromString(open(meta_file, "rb").read())
    for node in meta.nodes:
        node.metadata = json.dumps(as_dense(json.loads(node.metadata)))
    open(meta_file, "wb").write(meta.SerializeToString())

    model().save(f"{out}/doctored.h5")
    with h5py.File(f"{out}/doctored.h5", "r+") as f:
        f.attrs["model_config"] = json.dumps(as_dense(json.loads(f.attrs["model_config"])))

    model().save(f"{out}/evil.keras")
    rewrite_keras_zip(f"{out}/evil.keras", f"{out}/doctored.keras")

    hostile = eval("lambda t: (__import__('os').system('touch " + marker + "') and 0) or t")
    k.Sequential([k.Input((8, 8, 1)), k.layers.Lambda(hostile, name="payload"), k.layers.Flatten(),
                  k.layers.Dense(3, activation="softmax")]).save(f"{out}/lambda.h5")
    """
)

MAKE_KERAS3 = RENAME + textwrap.dedent(
    """
    import sys
    import keras, tensorflow as tf
    out, marker = sys.argv[1], sys.argv[2]

    class Evil(keras.layers.Dense):  # a Dense whose call writes a file, renamed Dense in the archive
        def __init__(self, units, out_file="", **kwargs):
            super().__init__(units, **kwargs)
            self.out_file = out_file

        def call(self, x):
            tf.io.write_file(self.out_file, "the model file ran code")
            return super().call(x)

        def get_config(self):
            return {**super().get_config(), "out_file": self.out_file}

    keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), Evil(3, out_file=marker, name="evil")]
                     ).save(f"{out}/evil3.keras")
    rewrite_keras_zip(f"{out}/evil3.keras", f"{out}/doctored3.keras")
    """
)

QUICK = ["--dataset", "digits", "--epochs", "1", "--train-limit", "100", "--test-limit", "20"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Both makers in one child (Keras 3 as ``keras``, tf_keras as ``k``): one TensorFlow import, not two."""
    return make_hostile_models(MAKE + MAKE_KERAS3.replace(RENAME, ""), tmp_path_factory.mktemp("doctored-models"),
                               keras3=True)


def _command(command: str, model: Path, out: Path) -> list[str]:
    return {"inspect": ["inspect", str(model)],
            "analyze": ["analyze", str(model), "--dataset", "digits", "--train-limit", "100", "--out", str(out)],
            "compress": ["compress", "--model", str(model), *QUICK, "--no-bench", "--out", str(out)],
            "tune": ["tune", "--model", str(model), *QUICK, "--trials", "1", "--out", str(out)]}[command]


def _refused_without_running(hostile: tuple[Path, Path], tmp_path: Path, args: list[str], needle: str) -> str:
    _, marker = hostile
    marker.unlink(missing_ok=True)
    done = edgekit_in_process("-q", *args, cwd=tmp_path, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert not marker.exists(), "code from the model file ran"
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert needle in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
    return lines[0]


@pytest.mark.parametrize("command", ["inspect", "analyze", "compress", "tune"])
def test_doctored_savedmodel_runs_nothing(hostile: tuple[Path, Path], tmp_path: Path, command: str) -> None:
    model = hostile[0] / "doctored_savedmodel"
    needle = "tune needs a model file" if command == "tune" else "a SavedModel folder"
    line = _refused_without_running(hostile, tmp_path, _command(command, model, tmp_path / "out"), needle)
    assert command == "tune" or "--trust-model" in line


@pytest.mark.parametrize("name", ["doctored.h5", "doctored.keras", "doctored3.keras"])
@pytest.mark.parametrize("command", ["inspect", "analyze", "compress"])
def test_doctored_file_fails_to_load_and_runs_nothing(hostile: tuple[Path, Path], tmp_path: Path, name: str,
                                                      command: str) -> None:
    """A .h5/.keras holds no functions: a layer whose config does not build its class fails to load."""
    _refused_without_running(hostile, tmp_path, _command(command, hostile[0] / name, tmp_path / "out"), name)


def test_doctored_savedmodel_loads_only_when_trusted(hostile: tuple[Path, Path]) -> None:
    out, _ = hostile
    with pytest.raises(ModelError, match=r"a SavedModel folder: .*pass --trust-model"):
        load_user_model(out / "doctored_savedmodel")


@pytest.mark.parametrize("recipe", ["trust_model: true\n", "trust-model: true\n", "train:\n  trust_model: true\n",
                                    "stage_settings:\n  train: {trust_model: true}\n"])
@pytest.mark.parametrize("command", ["compress", "tune"])
def test_recipe_cannot_give_consent(hostile: tuple[Path, Path], tmp_path: Path, recipe: str, command: str) -> None:
    """A recipe is a file anyone may write (tune writes one): naming trust_model is refused, exit 2."""
    (tmp_path / "recipe.yaml").write_text(recipe)
    args = [*_command(command, hostile[0] / "lambda.h5", tmp_path / "out"), "--recipe", str(tmp_path / "recipe.yaml")]
    line = _refused_without_running(hostile, tmp_path, args, "recipe.yaml")
    assert "trust" in line and "command line" in line
