"""Property-based tests of the parsers: whatever the bytes, a parser returns a value or
raises edgekit's own one-line error, never anything else. Then a short, time-bounded mutation fuzz
of real .onnx and .tflite files through ``edgekit inspect``.

``EDGEKIT_FUZZ_SECONDS`` (default 20) bounds the mutation fuzz.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekit.data.datasets import load_dataset
from edgekit.data.idx import read_idx_bytes
from edgekit.errors import EdgekitError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _one_line(e: EdgekitError) -> None:
    assert str(e) and "\n" not in str(e) and len(str(e)) < 2000


# --------------------------------------------------------------------------- IDX


@SETTINGS
@given(st.binary(max_size=300))
def test_idx_random_bytes(raw: bytes) -> None:
    try:
        arr = read_idx_bytes(raw, "f.idx")
    except EdgekitError as e:
        _one_line(e)
        return
    assert arr.size * arr.dtype.itemsize <= len(raw)


@SETTINGS
@given(st.sampled_from([(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32),
                        (0x0E, np.float64)]),
       st.lists(st.integers(0, 5), min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_idx_round_trip(code_dtype: tuple[int, type], dims: list[int], rnd: random.Random) -> None:
    code, dtype = code_dtype
    arr = np.asarray(np.random.default_rng(rnd.randrange(2**32)).integers(-100, 100, dims)).astype(dtype)
    raw = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    raw += arr.astype(np.dtype(dtype).newbyteorder(">")).tobytes()
    np.testing.assert_array_equal(read_idx_bytes(raw, "f.idx"), arr)


@SETTINGS
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4))
def test_idx_huge_header_does_not_allocate(dims: list[int]) -> None:
    raw = bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(16)
    try:
        read_idx_bytes(raw, "f.idx")
    except EdgekitError as e:
        _one_line(e)


# --------------------------------------------------------------------------- NPZ


_dtypes = st.sampled_from([np.uint8, np.int64, np.float32, np.float64, np.bool_, np.int8, np.uint16])


@st.composite
def npz_arrays(draw: st.DrawFn) -> dict[str, np.ndarray]:
    out = {}
    h = draw(st.integers(1, 6))
    for split, n in (("train", draw(st.integers(0, 30))), ("test", draw(st.integers(0, 8)))):
        shape = draw(st.sampled_from([(n, h, h), (n, h, h, 1), (n, h * h), (n,), (n, h, h, 3)]))
        x = draw(st.sampled_from(["uniform", "255", "special"]))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        values = rng.random(shape) * (255 if x == "255" else 1)
        if x == "special" and values.size:
            values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -1.0, 1e9]))
        out[f"x_{split}"] = values.astype(draw(_dtypes)) if x != "special" else values
        labels = rng.integers(draw(st.integers(-2, 0)), draw(st.integers(1, 12)), n + draw(st.sampled_from([0, 0, 0, 1])))
        out[f"y_{split}"] = labels.astype(draw(_dtypes))
    if draw(st.booleans()):
        del out[draw(st.sampled_from(sorted(out)))]
    return out


@SETTINGS
@given(npz_arrays())
def test_npz_any_arrays(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    try:
        ds = load_dataset(data_dir=path)
    except EdgekitError as e:
        _one_line(e)
        return
    assert np.isfinite(ds.x_train).all() and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert ds.y_train.dtype == np.int64 and ds.y_train.min() >= 0 and ds.y_train.max() < ds.num_classes
    assert len(np.unique(ds.y_train)) >= 1 and ds.x_train.shape[1:] == ds.x_test.shape[1:]


@SETTINGS
@given(st.binary(max_size=400))
def test_npz_random_bytes(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(raw)
    with pytest.raises(EdgekitError) as e:
        load_dataset(data_dir=path)
    _one_line(e.value)


# --------------------------------------------------------------------------- recipes


def _make(tmp_path: Path, text: str | bytes) -> None:
    from edgekit.config import make_config

    path = tmp_path / "r.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    try:
        make_config(path)
    except EdgekitError as e:
        _one_line(e)


@SETTINGS
@given(st.text(max_size=200))
def test_recipe_random_text(tmp_path: Path, text: str) -> None:
    _make(tmp_path, text)


@SETTINGS
@given(st.binary(max_size=200))
def test_recipe_random_bytes(tmp_path: Path, raw: bytes) -> None:
    _make(tmp_path, raw)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                       max_leaves=8)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["sparsity", "quantization", "epochs", "seed", "learning_rate", "targets",
                                        "per_layer_sparsity", "image_size", "calibration", "structured",
                                        "bench_min_seconds", "max_accuracy_drop", "dataset", "color", "unknown_key"]),
                       _values, max_size=5))
def test_recipe_known_keys_any_values(tmp_path: Path, data: dict) -> None:
    _make(tmp_path, yaml.safe_dump(data, allow_unicode=True))


# --------------------------------------------------------------------------- device profiles


def _load_profile(tmp_path: Path, text: str | bytes, name: str = "p") -> None:
    from edgekit.targets import load_profile

    path = tmp_path / f"{name}.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    try:
        load_profile(path)
    except EdgekitError as e:
        _one_line(e)


@SETTINGS
@given(st.binary(max_size=200))
def test_profile_random_bytes(tmp_path: Path, raw: bytes) -> None:
    _load_profile(tmp_path, raw)


def _toml_value(v: object) -> str:
    return json.dumps(v) if not isinstance(v, bool) else ("true" if v else "false")


_toml_scalars = st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=10),
                          st.floats(allow_nan=False, allow_infinity=False))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["name", "description", "arch", "location", "runtimes", "quant_preset", "threads",
                                        "batch_sizes", "emulated", "bogus"]),
                       st.one_of(_toml_scalars, st.lists(_toml_scalars, max_size=3)), max_size=6),
       st.sampled_from(["", "[onnxruntime]\nproviders = [\"CPUExecutionProvider\"]\n", "[qemu]\ncpu = 1\n", "[ssh]\n"]))
def test_profile_any_fields(tmp_path: Path, fields: dict, table: str) -> None:
    lines = [f"{k} = {_toml_value(v)}" for k, v in fields.items()
             if not (isinstance(v, list) and len({type(x) for x in v}) > 1)]
    _load_profile(tmp_path, "\n".join(lines) + "\n" + table)


# --------------------------------------------------------------------------- TFLite reader and metadata


@SETTINGS
@given(st.builds(lambda r, b: struct.pack("<I", r) + b"TFL3" + b, st.integers(0, 2**32 - 1), st.binary(max_size=300)))
def test_tflite_reader_random(data: bytes) -> None:
    from edgekit.export.tflite_reader import parse_tflite

    try:
        parse_tflite(data, "m.tflite")
    except EdgekitError as e:
        _one_line(e)


@SETTINGS
@given(st.binary(max_size=300), st.sampled_from([".onnx", ".tflite"]))
def test_metadata_random_files(tmp_path: Path, raw: bytes, suffix: str) -> None:
    from edgekit.export.metadata import read_metadata

    path = tmp_path / f"m{suffix}"
    path.write_bytes(raw if suffix == ".onnx" else raw[:4] + b"TFL3" + raw[8:])
    try:
        read_metadata(path)
    except EdgekitError as e:
        _one_line(e)


def _onnx_with_props(props: dict[str, str]) -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["input"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, props)
    return model.SerializeToString()


@SETTINGS
@given(st.one_of(st.text(max_size=80), _values.map(json.dumps)), st.sampled_from(["edgekit", "labels", "other"]))
def test_onnx_metadata_values(tmp_path: Path, doc: str, key: str) -> None:
    from edgekit.export import metadata

    name = {"edgekit": metadata.ONNX_KEY, "labels": metadata.ONNX_LABELS_KEY, "other": "x"}[key]
    path = tmp_path / "m.onnx"
    path.write_bytes(_onnx_with_props({name: doc}))
    try:
        metadata.read_metadata(path)
    except EdgekitError as e:
        _one_line(e)


# --------------------------------------------------------------------------- mutation fuzz through `edgekit inspect`

FUZZ_WORKER = textwrap.dedent("""
    import contextlib, io, json, sys, time
    from edgekit.cli import main
    deadline = time.monotonic() + float(sys.argv[1])
    done = 0
    for path in sys.argv[2:]:
        if time.monotonic() > deadline:
            break
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = main(["inspect", path])
        lines = [l for l in err.getvalue().splitlines() if l.strip()]
        bad = rc not in (0, 2) or "--debug shows the traceback" in err.getvalue() or (rc == 2 and len(lines) != 1)
        if bad:
            print(json.dumps({"file": path, "rc": rc, "stderr": err.getvalue()[-500:]}), flush=True)
        done += 1
    print(json.dumps({"done": done}), flush=True)
""")


def _mutations(data: bytes, n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        b = bytearray(data)
        kind = rng.choice(["flip", "bytes", "truncate", "zero", "splice"])
        if kind == "flip":
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif kind == "bytes":
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif kind == "truncate":
            b = b[: rng.randrange(1, len(b))]
        elif kind == "zero":
            start = rng.randrange(len(b))
            b[start:start + rng.randint(1, 64)] = bytes(len(b[start:start + rng.randint(1, 64)]))
        else:
            start = rng.randrange(len(b))
            b[start:start] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        out.append(bytes(b))
    return out


@pytest.fixture(scope="module")
def real_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A small real .tflite (with edgekit metadata) and .onnx, made here."""
    from edgekit._tf import keras
    from edgekit.artifact import ModelMeta
    from edgekit.export.convert import keras2onnx, keras2tflite
    from edgekit.export.metadata import embed_metadata

    k = keras()
    k.utils.set_random_seed(0)
    model = k.Sequential([k.layers.Input((8, 8, 1)), k.layers.Conv2D(4, 3, activation="relu"), k.layers.Flatten(),
                          k.layers.Dense(3)])
    d = tmp_path_factory.mktemp("fuzz-models")
    meta = ModelMeta(labels=("a", "b", "c"), input_shape=(8, 8, 1), color="grayscale", dataset="fuzz")
    out = {}
    for suffix, data in ((".tflite", keras2tflite(model)), (".onnx", keras2onnx(model, (8, 8, 1)))):
        path = d / f"m{suffix}"
        path.write_bytes(data)
        embed_metadata(path, meta, "fuzz")
        out[suffix] = path.read_bytes()
    return out


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_mutation_fuzz_inspect(real_models: dict[str, bytes], tmp_path: Path, suffix: str) -> None:
    seconds = float(os.environ.get("EDGEKIT_FUZZ_SECONDS", "20"))
    files = []
    for i, data in enumerate(_mutations(real_models[suffix], 400, seed={".tflite": 1, ".onnx": 2}[suffix])):
        path = tmp_path / f"m{i:03d}{suffix}"
        path.write_bytes(data)
        files.append(str(path))
    r = subprocess.run([sys.executable, "-c", FUZZ_WORKER, str(seconds), *files], capture_output=True, text=True,
                       timeout=seconds + 120, env={**os.environ, "EDGEKIT_OFFLINE": "1"})
    results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert r.returncode == 0, f"the inspect worker died (rc {r.returncode}) on a mutated file: {r.stderr[-800:]}"
    failures = [x for x in results if "file" in x]
    assert results and results[-1].get("done", 0) > 0
    assert not failures, json.dumps(failures[:3], indent=1)
