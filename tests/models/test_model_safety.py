"""No code inside a model file runs without --trust-model: `inspect` and `compress --model` alike.

The hostile files are made in a subprocess (building a Lambda model calls the lambda, which
touches the marker); each test then removes the marker and checks that edgekit never re-creates it.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import zipfile
from pathlib import Path

import h5py
import pytest

from edgekit.errors import ModelError
from edgekit.models.safety import check_model_file, walk_config
from tests.helpers.cli import edgekit_in_process
from tests.helpers.hostile import make_hostile_models

MAKE = textwrap.dedent(
    """
    import json, sys, h5py
    import tf_keras as k
    out, marker = sys.argv[1], sys.argv[2]
    hostile = eval("lambda t: (__import__('os').system('touch " + marker + "') and 0) or t")

    def lambda_model():
        return k.Sequential([k.Input((8, 8, 1)), k.layers.Lambda(hostile, name="payload"), k.layers.Flatten(),
                             k.layers.Dense(3)])

    lambda_model().save(f"{out}/lambda.h5")
    lambda_model().save(f"{out}/lambda_savedmodel", save_format="tf")
    # Keras 2.2's form: the Sequential's config is the bare list of layers (tf_keras still loads it)
    for name, make in (("legacy_lambda.h5", lambda_model),
                       ("legacy_plain.h5", lambda: k.Sequential([k.Input((8, 8, 1)), k.layers.Flatten(),
                                                                  k.layers.Dense(3, activation="softmax")]))):
        make().save(f"{out}/{name}")
        with h5py.File(f"{out}/{name}", "r+") as f:
            config = json.loads(f.attrs["model_config"])
            config["config"] = config["config"]["layers"]
            f.attrs["model_config"] = json.dumps(config)
    # the Lambda hidden in a wrapper inside a nested functional model
    inner_in = k.Input((4, 8, 1))
    inner = k.Model(inner_in, k.layers.TimeDistributed(k.layers.Lambda(hostile, name="wrapped"))(inner_in), name="inner")
    k.Sequential([k.Input((4, 8, 1)), inner, k.layers.Flatten(), k.layers.Dense(3)]).save(f"{out}/nested.h5")
    # a TensorFlow op recorded in a functional model (TFOpLambda can call any tf function)
    i = k.Input((8, 8, 1))
    import tensorflow as tf
    k.Model(i, k.layers.Dense(3)(k.layers.Flatten()(tf.nn.relu(i)))).save(f"{out}/tfop.h5")
    """
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_hostile_models(MAKE, tmp_path_factory.mktemp("hostile-models"))


def _edgekit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command line in this process (no interpreter and TensorFlow start-up per case); the catalogue in
    tests/e2e/test_hostile.py also runs a Lambda .h5 through ``python -m edgekit``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return edgekit_in_process(*args, cwd=cwd, env=env)


def _refused(done: subprocess.CompletedProcess[str], marker: Path, needle: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert needle in lines[0] and "--trust-model" in lines[0]
    assert not marker.exists(), "code from the model file ran"


@pytest.mark.parametrize("name, needle", [
    ("lambda.h5", "'payload'"),
    ("lambda_savedmodel", "'payload'"),
    ("legacy_lambda.h5", "'payload'"),
    ("nested.h5", "'wrapped'"),
    ("tfop.h5", "TFOpLambda"),
])
def test_inspect_refuses_model_code(hostile: tuple[Path, Path], name: str, needle: str, tmp_path: Path) -> None:
    out, marker = hostile
    marker.unlink(missing_ok=True)
    _refused(_edgekit("inspect", str(out / name), cwd=tmp_path), marker, needle)


def test_compress_refuses_legacy_list_config(hostile: tuple[Path, Path], tmp_path: Path) -> None:
    """The Keras 2.2 bare-list form used to hide its Lambda from the --trust-model gate."""
    out, marker = hostile
    marker.unlink(missing_ok=True)
    run = tmp_path / "run"
    done = _edgekit("compress", "--model", str(out / "legacy_lambda.h5"), "--dataset", "digits", "--epochs", "1",
                    "--no-bench", "--sparsity", "0", "--out", str(run), cwd=tmp_path)
    _refused(done, marker, "'payload'")
    assert not run.exists() and not list(tmp_path.glob(".run*"))


def test_legacy_list_config_without_code_still_inspects(hostile: tuple[Path, Path], tmp_path: Path) -> None:
    out, marker = hostile
    done = _edgekit("inspect", str(out / "legacy_plain.h5"), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    audit = json.loads(done.stdout)
    assert audit["format"] == "keras" and [layer["op"] for layer in audit["layers"]] == ["Dense"]


def test_trust_model_loads_the_code(hostile: tuple[Path, Path], tmp_path: Path) -> None:
    """--trust-model is the one way through the gate: the file's code then runs, as the user asked."""
    out, marker = hostile
    marker.unlink(missing_ok=True)
    done = _edgekit("inspect", str(out / "lambda.h5"), "--trust-model", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert marker.exists()
    marker.unlink()


# --------------------------------------------------------------------------- the walk, on configurations alone


def _dense(name: str = "d", **extra: object) -> dict[str, object]:
    return {"class_name": "Dense", "config": {"name": name, "units": 3}, **extra}


@pytest.mark.parametrize("config, refused", [
    ({"class_name": "Sequential", "config": {"layers": [_dense()]}}, []),
    ({"class_name": "Sequential", "config": [_dense(), {"class_name": "MyLayer", "config": {"name": "m"}}]}, ["MyLayer"]),
    ({"class_name": "Sequential", "config": {"layers": [_dense(module="os")]}}, ["Dense"]),
    ({"class_name": "Sequential", "config": {"layers": [_dense(registered_name="evil>Dense")]}}, ["Dense"]),
    ({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Dense", "config": {"name": "k", "kernel_initializer": {"class_name": "Evil", "config": {}}}}]}},
     ["Evil"]),
    ({"class_name": "Functional", "config": {"layers": [
        {"class_name": "Bidirectional", "config": {"layer": {"class_name": "Lambda", "config": {"name": "x"}}}}]}},
     ["Lambda"]),
    ({"class_name": "Sequential", "config": {"layers": [{"config": {"function": ["4wEA"], "function_type": "lambda"}}]}},
     ["Lambda"]),
])
def test_walk_finds_every_object(config: dict[str, object], refused: list[str]) -> None:
    assert [f.class_name for f in walk_config(config) if not f.allowed] == refused


def test_compile_config_is_not_judged() -> None:
    """tf_keras ignores the optimizer/loss with compile=False, so an unknown loss class there is harmless."""
    config = {"class_name": "Sequential", "config": {"layers": [_dense()]},
              "compile_config": {"loss": {"class_name": "MyLoss", "config": {}}}}
    assert all(f.allowed for f in walk_config(config))


def test_deep_nesting_is_refused() -> None:
    config: dict[str, object] = {"class_name": "Sequential", "config": {"layers": [_dense()]}}
    for _ in range(500):
        config = {"x": config}
    with pytest.raises(ModelError, match="nests deeper"):
        list(walk_config(config))


def test_config_zip_bomb_is_refused_unread(tmp_path: Path) -> None:
    """A small .keras whose config.json decompresses to 80 MiB is refused from its header, not read."""
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "2.21.0"}))
        archive.writestr("config.json", b" " * (80 << 20))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ModelError, match="config.json is 83,886,080 bytes"):
        check_model_file(path, trust=False)


def test_weights_only_h5_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("w", data=[1.0])
    with pytest.raises(ModelError, match="without a model config"):
        check_model_file(path, trust=False)
