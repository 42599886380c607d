"""The hostile-input catalogue: every case runs the ``edgekit`` command line on a fixture
made here and checks the same five things:

- the exit code (2 bad input, 1 runtime failure);
- exactly one line on stderr, ``edgekit: error: ...`` naming what is at fault, and no traceback;
- nothing half-written (no run folder, partial folder, lock file or cache entry appears);
- nothing that existed before is changed (every file under the case folder keeps its bytes);
- no marker file is created by code stored in a model file.

Every case fails before training, so the whole catalogue trains nothing. A case names the part of
edgekit that owns its fix; owners listed in XFAIL_OWNERS get ``xfail(strict=False)`` while a fix lands.

The cases run in this process (:func:`tests.helpers.cli.edgekit_in_process`: same environment, working
folder, exit code and captured output as ``python -m edgekit``, without a second of interpreter start-up
each); :data:`THROUGH_A_PROCESS` also runs a few of them as ``python -m edgekit`` in a child process.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.helpers.cli import edgekit_in_process, edgekit_subprocess

MARKER = "MARKER"
EVIL = f"lambda t: (__import__('os').system('touch {MARKER}') and 0) or t"
QUICK = ["--epochs", "1", "--train-limit", "100", "--test-limit", "20", "--no-bench", "--sparsity", "0"]
T = ["--dataset", "digits", *QUICK]


# --------------------------------------------------------------------------- fixtures (written by the tests)


def _arrays(**change: object) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (40, 8, 8), dtype=np.uint8), "y_train": np.arange(40) % 4,
              "x_test": rng.integers(0, 256, (12, 8, 8), dtype=np.uint8), "y_test": np.arange(12) % 4}
    arrays.update(change)  # type: ignore[arg-type]
    return arrays


def npz(name: str = "data.npz", **change: object) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        np.savez(d / name, **_arrays(**change))
    return make


def write(name: str, data: bytes | str) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return make


def folder(name: str, with_report: bool = False, extra: str = "") -> Callable[[Path], None]:
    def make(d: Path) -> None:
        (d / name).mkdir(parents=True)
        (d / name / "notes.txt").write_text("precious")
        if with_report:
            (d / name / "report.json").write_text("{}")
        if extra:
            (d / name / extra).write_bytes(b"\x00")
    return make


def both(*makers: Callable[[Path], None]) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        for m in makers:
            m(d)
    return make


def _with(x: np.ndarray, index: tuple[int, ...], value: float) -> np.ndarray:
    x = x.copy()
    x[index] = value
    return x


def _floats(n: int) -> np.ndarray:
    return np.random.default_rng(3).random((n, 8, 8)).astype(np.float32)


def idx_bytes(arr: np.ndarray, code: int = 8) -> bytes:
    return bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.astype(np.uint8).tobytes()


def idx_dir(**override: bytes) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        a = _arrays()
        files = {"train-images-idx3-ubyte": idx_bytes(a["x_train"]), "train-labels-idx1-ubyte": idx_bytes(a["y_train"]),
                 "t10k-images-idx3-ubyte": idx_bytes(a["x_test"]), "t10k-labels-idx1-ubyte": idx_bytes(a["y_test"])}
        files.update({k.replace("_", "-"): v for k, v in override.items()})
        (d / "idx").mkdir()
        for name, data in files.items():
            (d / "idx" / name).write_bytes(data)
    return make


def images(bomb: bool = False, corrupt: bool = False, empty: bool = False,
           classes: tuple[str, ...] = ("cat", "dog")) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        from PIL import Image

        for c in classes:
            (d / "imgs" / c).mkdir(parents=True)
            for i in range(0 if empty else 6):
                Image.new("L", (8, 8), color=i * 30).save(d / "imgs" / c / f"{i}.png")
        if bomb:
            Image.new("1", (12000, 12000)).save(d / "imgs" / "cat" / "bomb.png")
        if corrupt:
            (d / "imgs" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return make


def alias_bomb(key: str) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + f"\n{key}: *l9\n"


def h5_model(name: str, config: dict) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        import h5py

        with h5py.File(d / name, "w") as f:
            f.attrs["model_config"] = json.dumps(config)
            f.attrs["keras_version"] = "2.21.0"
            f.attrs["backend"] = "tensorflow"
    return make


LAMBDA = {"class_name": "Lambda", "config": {"name": "evil", "function": [EVIL, None, None], "function_type": "lambda"}}
INPUT = {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1], "name": "in"}}


def keras_zip(config: bytes, name: str = "model.keras") -> Callable[[Path], None]:
    def make(d: Path) -> None:
        with zipfile.ZipFile(d / name, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.writestr("metadata.json", json.dumps({"keras_version": "2.21.0"}))
            z.writestr("config.json", config)
            z.writestr("model.weights.h5", b"")
    return make


def keras_bomb(d: Path) -> None:
    """A ~100 KB .keras whose config.json decompresses to 96 MiB."""
    with zipfile.ZipFile(d / "bomb.keras", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "2.21.0"}))
        with z.open("config.json", "w", force_zip64=True) as f:
            block = b" " * (1 << 20)
            for _ in range(96):
                f.write(block)
    assert (d / "bomb.keras").stat().st_size < 1 << 20


def tflite_stub(name: str = "m.tflite", size: int = 200) -> Callable[[Path], None]:
    return write(name, b"\x1c\x00\x00\x00TFL3" + bytes(size))


def bad_profile(d: Path) -> None:
    (d / "profiles").mkdir()
    (d / "profiles" / "broken.toml").write_text("name = 'broken'\nruntime = [unclosed\n")


def home_run(d: Path) -> None:
    folder("home", with_report=True)(d)


# --------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int
    words: str  # expected inside the one stderr line (a file, field or flag name)
    setup: Callable[[Path], None] | None = None
    owner: str = ""  # the part of edgekit that owns the fix (see XFAIL_OWNERS)
    env: dict[str, str] = field(default_factory=dict)


def C(id: str, args: list[str], code: int, words: str, setup: Callable[[Path], None] | None = None,
      owner: str = "", env: dict[str, str] | None = None) -> Case:
    return Case(id, tuple(args), code, words, setup, owner, env or {})


D = ["compress", "--data-dir"]
CASES: list[Case] = [
    # ---- bad data: one line, exit 2, nothing written
    C("npz-inf-pixel", D + ["data.npz", *QUICK], 2, "infinite", npz(x_train=_with(_floats(40), (1, 2, 3), np.inf))),
    C("npz-nan-pixel", D + ["data.npz", *QUICK], 2, "NaN", npz(x_train=_with(_floats(40), (0, 0, 0), np.nan))),
    C("npz-nan-test-pixel", D + ["data.npz", *QUICK], 2, "test images", npz(x_test=_with(_floats(12), (5, 1, 1), np.nan))),
    C("npz-single-class", D + ["data.npz", *QUICK], 2, "one class", npz(y_train=np.zeros(40, np.int64))),
    C("npz-negative-test-label", D + ["data.npz", *QUICK], 2, "test labels", npz(y_test=np.array([-1] + [0] * 11))),
    C("npz-float-labels", D + ["data.npz", *QUICK], 2, "whole numbers", npz(y_train=np.arange(40) % 4 + 0.25)),
    C("npz-nan-labels", D + ["data.npz", *QUICK], 2, "train labels", npz(y_train=_with((np.arange(40) % 4).astype(float), (0,), np.nan))),
    C("npz-huge-label", D + ["data.npz", *QUICK], 2, "too large", npz(y_train=_with(np.arange(40) % 4, (7,), 10**9))),
    C("npz-huge-test-label", D + ["data.npz", *QUICK], 2, "too large", npz(y_test=_with(np.arange(12) % 4, (0,), 2**62))),
    C("npz-string-labels", D + ["data.npz", *QUICK], 2, "integers", npz(y_train=np.array(["cat"] * 40))),
    C("npz-bool-images", D + ["data.npz", *QUICK], 2, "real numbers", npz(x_train=np.ones((40, 8, 8), bool))),
    C("npz-pixels-over-255", D + ["data.npz", *QUICK], 2, "pixel values", npz(x_train=np.full((40, 8, 8), 999.0))),
    C("npz-negative-pixels", D + ["data.npz", *QUICK], 2, "pixel values", npz(x_test=np.full((12, 8, 8), -5.0))),
    C("npz-too-many-label-names", D + ["data.npz", *QUICK], 2, "labels", npz(labels=np.array([str(i) for i in range(5000)]))),
    C("npz-missing-array", D + ["data.npz", *QUICK], 2, "missing array",
      lambda d: np.savez(d / "data.npz", x_train=np.zeros((40, 8, 8)), y_train=np.arange(40) % 2)),
    C("npz-object-array", D + ["data.npz", *QUICK], 2, "data.npz",
      lambda d: np.savez(d / "data.npz", **_arrays(y_train=np.array([{"a": 1}] * 40, dtype=object)))),
    C("npz-not-a-zip", D + ["data.npz", *QUICK], 2, "data.npz", write("data.npz", b"this is not an npz archive")),
    C("npz-truncated", D + ["data.npz", *QUICK], 2, "data.npz",
      lambda d: (npz()(d), (d / "data.npz").write_bytes((d / "data.npz").read_bytes()[:300]))),
    C("npz-2d-images", D + ["data.npz", *QUICK], 2, "images must be", npz(x_train=np.zeros((40, 64)))),
    C("npz-count-mismatch", D + ["data.npz", *QUICK], 2, "40 images but 39 labels", npz(y_train=np.arange(39) % 4)),
    C("npz-shape-mismatch", D + ["data.npz", *QUICK], 2, "differ in shape", npz(x_test=np.zeros((12, 9, 9), np.uint8))),
    C("npz-too-few", D + ["data.npz", "--epochs", "1", "--no-bench", "--sparsity", "0"], 2, "too few",
      npz(x_train=np.zeros((5, 8, 8), np.uint8), y_train=np.arange(5) % 2)),
    C("npz-two-archives", D + [".", *QUICK], 2, "more than one .npz", both(npz("a.npz"), npz("b.npz"))),
    C("idx-wrong-magic", D + ["idx", *QUICK], 2, "magic", idx_dir(train_images=b"\x01\x02\x03\x04" + bytes(20))),
    C("idx-truncated", D + ["idx", *QUICK], 2, "truncated", idx_dir(train_images=idx_bytes(_arrays()["x_train"])[:100])),
    C("idx-bad-gzip", D + ["idx", *QUICK], 2, "gzip", idx_dir(train_labels=b"\x1f\x8b\x08\x00garbage")),
    C("idx-labels-txt-not-utf8", D + ["idx", *QUICK], 2, "labels.txt",
      both(idx_dir(), write("idx/labels.txt", b"\xff\xfe\xfa"))),
    C("png-decompression-bomb", D + ["imgs", *QUICK], 2, "bomb.png", images(bomb=True)),
    C("png-corrupt", D + ["imgs", *QUICK], 2, "broken.png", images(corrupt=True)),
    C("image-folder-empty", D + ["imgs", *QUICK], 2, "no images", images(empty=True)),
    C("image-class-name-with-newline", D + ["imgs", *QUICK], 2, "line break", images(classes=("cat", "dog\nfish"))),
    C("image-empty-class-folder", D + ["imgs", *QUICK], 2, "with no images",
      both(images(), lambda d: (d / "imgs" / "emu").mkdir())),
    C("data-file-name-with-newline", D + ["a\nb.npz", *QUICK], 2, "NaN",
      npz("a\nb.npz", x_train=_with(_floats(40), (0, 0, 0), np.nan))),
    C("data-dir-missing", D + ["nowhere", *QUICK], 2, "nowhere"),
    C("data-dir-plain-file", D + ["data.csv", *QUICK], 2, "data.csv", write("data.csv", "1,2,3\n")),
    # ---- recipes
    C("recipe-alias-bomb", ["compress", "--recipe", "r.yaml", *T], 2, "alias", write("r.yaml", alias_bomb("sparsity"))),
    C("recipe-alias-bomb-list-key", ["compress", "--recipe", "r.yaml", *T], 2, "alias", write("r.yaml", alias_bomb("quantization"))),
    C("recipe-recursive-alias", ["compress", "--recipe", "r.yaml", *T], 2, "recursive", write("r.yaml", "a: &a [*a]\n")),
    C("recipe-not-utf8", ["compress", "--recipe", "r.yaml", *T], 2, "UTF-8", write("r.yaml", b"sparsity: 0.5\n# \xff\xfe\n")),
    C("recipe-python-tag", ["compress", "--recipe", "r.yaml", *T], 2, "r.yaml",
      write("r.yaml", f"sparsity: !!python/object/apply:os.system ['touch {MARKER}']\n")),
    C("recipe-invalid-yaml", ["compress", "--recipe", "r.yaml", *T], 2, "line", write("r.yaml", "sparsity: [0.5\n")),
    C("recipe-deep", ["compress", "--recipe", "r.yaml", *T], 2, "nested", write("r.yaml", "x: " + "[" * 500 + "]" * 500)),
    C("recipe-unknown-key", ["compress", "--recipe", "r.yaml", *T], 2, "sparsityy", write("r.yaml", "sparsityy: 0.5\n")),
    C("recipe-a-list", ["compress", "--recipe", "r.yaml", *T], 2, "mapping", write("r.yaml", "- a\n- b\n")),
    C("recipe-bad-type", ["compress", "--recipe", "r.yaml", *T], 2, "sparsity", write("r.yaml", "sparsity: high\n")),
    C("recipe-missing", ["compress", "--recipe", "none.yaml", *T], 2, "none.yaml"),
    C("recipe-is-a-folder", ["compress", "--recipe", "rdir", *T], 2, "rdir", folder("rdir")),
    C("recipe-huge-value", ["compress", "--recipe", "r.yaml", *QUICK], 2, "dataset",
      write("r.yaml", 'dataset: "' + "a" * 500_000 + '"\n')),
    C("recipe-huge-key", ["compress", "--recipe", "r.yaml", *T], 2, "r.yaml", write("r.yaml", "k" * 500_000 + ": 1\n")),
    C("recipe-too-large", ["compress", "--recipe", "r.yaml", *T], 2, "larger than", write("r.yaml", "# x\n" * 400_000)),
    C("recipe-trust-model", ["compress", "--recipe", "r.yaml", *T, "--model", "evil.h5"], 2, "command line",
      both(write("r.yaml", "trust_model: true\n"), h5_model("evil.h5", {
          "class_name": "Sequential", "config": {"name": "s", "layers": [INPUT, LAMBDA]}}))),
    C("recipe-seed-too-large", ["compress", "--recipe", "r.yaml", *T], 2, "seed", write("r.yaml", "seed: 4294967296\n")),
    # ---- the run folder
    C("out-under-a-file", ["compress", *T, "--out", "f/run"], 2, "is a file", write("f", "x")),
    C("out-dot-force", ["compress", *T, "--out", ".", "--force"], 2, "will not replace it"),
    C("out-parent-force", ["compress", *T, "--out", "..", "--force"], 2, "will not replace it"),
    C("out-home-force", ["compress", *T, "--out", "home", "--force"], 2, "home folder", home_run),
    C("out-not-a-run-force", ["compress", *T, "--out", "stuff", "--force"], 2, "report.json", folder("stuff")),
    C("out-exists-no-force", ["compress", *T, "--out", "run"], 2, "already exists", folder("run", with_report=True)),
    C("out-is-a-file-force", ["compress", *T, "--out", "afile", "--force"], 2, "not a folder", write("afile", "x")),
    C("out-run-holds-data-force", ["compress", "--data-dir", "run/data.npz", *QUICK, "--out", "run", "--force"], 2,
      "input of this run", both(folder("run", with_report=True), npz("run/data.npz"))),
    C("out-symlink-force", ["compress", *T, "--out", "link", "--force"], 2, "not a folder",
      both(folder("real", with_report=True), lambda d: (d / "link").symlink_to(d / "real"))),
    C("export-out-existing-file", ["export", "m.tflite", "--format", "c-array", "--out", "afile"], 2, "not a folder",
      both(tflite_stub(), write("afile", "x")), owner="FORMATS"),
    C("export-missing-model", ["export", "nothing.tflite", "--format", "c-array"], 2, "nothing.tflite"),
    C("export-wrong-suffix", ["export", "m.onnx", "--format", "c-array"], 2, "m.onnx", write("m.onnx", b"x")),
    C("export-exists-no-force", ["export", "m.tflite", "--format", "c-array", "--out", "c"], 2, "already exists",
      both(tflite_stub(), write("c/m.h", "old"), write("c/m.c", "old"))),
    # ---- model files
    C("model-lambda-h5", ["compress", *T, "--model", "evil.h5"], 2, "Lambda", h5_model("evil.h5", {
        "class_name": "Sequential", "config": {"name": "s", "layers": [INPUT, LAMBDA]}}), owner="LEAD"),
    C("model-legacy-list-h5", ["compress", *T, "--model", "legacy.h5"], 2, "Lambda", h5_model("legacy.h5", {
        "class_name": "Sequential", "config": [LAMBDA]}), owner="LEAD"),
    C("model-wrapped-lambda-h5", ["compress", *T, "--model", "wrapped.h5"], 2, "wrapped.h5", h5_model("wrapped.h5", {
        "class_name": "Sequential", "config": {"name": "s", "layers": [INPUT, {"class_name": "TimeDistributed",
                                                                             "config": {"layer": LAMBDA}}]}}), owner="LEAD"),
    C("model-custom-class-h5", ["compress", *T, "--model", "custom.h5"], 2, "custom.h5", h5_model("custom.h5", {
        "class_name": "Sequential", "config": {"name": "s", "layers": [INPUT, {"class_name": "my_pkg>Evil", "config": {}}]}}),
      owner="LEAD"),
    C("model-keras-config-bomb", ["compress", *T, "--model", "bomb.keras"], 2, "bomb.keras", keras_bomb, owner="LEAD"),
    C("model-keras-not-json", ["compress", *T, "--model", "m.keras"], 2, "m.keras", keras_zip(b"\xff not json"), owner="LEAD"),
    C("model-keras-not-a-zip", ["compress", *T, "--model", "z.keras"], 2, "z.keras", write("z.keras", b"PK\x03\x04junk"),
      owner="LEAD"),
    C("model-missing", ["compress", *T, "--model", "nothing.keras"], 2, "nothing.keras"),
    C("inspect-missing", ["inspect", "nothing.onnx"], 2, "nothing.onnx"),
    C("inspect-empty-onnx", ["inspect", "empty.onnx"], 2, "empty.onnx", write("empty.onnx", b""), owner="FORMATS"),
    C("inspect-garbage-onnx", ["inspect", "g.onnx"], 2, "g.onnx", write("g.onnx", os.urandom(64)), owner="FORMATS"),
    C("inspect-garbage-tflite", ["inspect", "g.tflite"], 2, "g.tflite", write("g.tflite", b"\x1c\x00\x00\x00TFL3" + bytes(64)),
      owner="FORMATS"),
    C("inspect-lambda-h5", ["inspect", "evil.h5"], 2, "Lambda", h5_model("evil.h5", {
        "class_name": "Sequential", "config": [LAMBDA]}), owner="LEAD"),
    # ---- flags (one validation path for flags and recipe keys)
    C("flag-quantization-bogus", ["compress", *T, "--quantization", "bogus"], 2, "quantization", owner="STAGES"),
    C("flag-seed-negative", ["compress", *T, "--seed", "-1"], 2, "seed", owner="STAGES"),
    C("flag-seed-too-large", ["compress", *T, "--seed", "4294967296"], 2, "--seed must be in [0, 4294967295]"),
    C("tune-seed-too-large", ["tune", *T[:6], "--seed", "4294967296"], 2, "--seed must be in [0, 4294967295]"),
    C("cache-env-is-a-file", ["compress", *T], 2, "EDGEKIT_CACHE_DIR", write("cachefile", "x"),
      env={"EDGEKIT_CACHE_DIR": "cachefile"}),
    C("flag-qat-epochs-negative", ["compress", *T, "--qat-epochs", "-3"], 2, "qat", owner="STAGES"),
    C("flag-image-size-zero", ["compress", *T, "--image-size", "0"], 2, "image", owner="STAGES"),
    C("flag-learning-rate-nan", ["compress", *T, "--learning-rate", "nan"], 2, "learning", owner="STAGES"),
    C("flag-learning-rate-negative", ["compress", *T, "--learning-rate", "-1"], 2, "learning", owner="STAGES"),
    C("flag-accuracy-drop-nan", ["compress", *T, "--max-accuracy-drop", "nan"], 2, "accuracy", owner="STAGES"),
    C("flag-bench-seconds-inf", ["compress", *T, "--bench-min-seconds", "inf"], 2, "bench", owner="STAGES"),
    C("flag-mac-budget-5", ["compress", *T, "--mac-budget", "5"], 2, "mac", owner="STAGES"),
    C("flag-structured-criterion-bogus", ["compress", *T, "--structured-criterion", "bogus"], 2, "criterion", owner="STAGES"),
    C("flag-prune-schedule-bogus", ["compress", *T, "--prune-schedule", "bogus"], 2, "schedule", owner="STAGES"),
    C("flag-calibration-bogus", ["compress", *T, "--calibration", "bogus"], 2, "calibration", owner="STAGES"),
    C("flag-sparsity-over-1", ["compress", *T, "--sparsity", "1.5"], 2, "sparsity"),
    C("flag-epochs-zero", ["compress", *T, "--epochs", "0"], 2, "epochs"),
    C("flag-unknown-dataset", ["compress", "--dataset", "imagenet", *QUICK], 2, "imagenet"),
    C("flag-dataset-and-data-dir", ["compress", "--dataset", "digits", "--data-dir", "data.npz", *QUICK], 2, "exclusive", npz()),
    C("flag-unknown-target", ["compress", *T, "--targets", "no-such-board"], 2, "no-such-board"),
    C("flag-broken-profile", ["compress", *T, "--devices-dir", "profiles", "--targets", "broken"], 2, "broken.toml",
      bad_profile),
    # ---- other commands
    C("report-malformed-json", ["report", "run"], 2, "report.json",
      both(folder("run"), write("run/report.json", '{"status": "ok", "artifacts": 5}'),
           write("run/report.html", "old"), write("run/report.md", "old")), owner="REPORT"),
    C("report-not-json", ["report", "run"], 2, "report.json", both(folder("run"), write("run/report.json", "{not json")),
      owner="REPORT"),
    C("report-missing-folder", ["report", "nowhere"], 2, "nowhere"),
    C("report-nested-100000-deep", ["report", "run"], 2, "not valid JSON",
      both(folder("run"), write("run/report.json", "[" * 100_000 + "]" * 100_000))),
    C("bench-min-seconds-inf", ["bench", "g.onnx", "--min-seconds", "inf"], 2, "--min-seconds must be finite",
      write("g.onnx", b"\x00" * 10)),
    C("bench-min-seconds-nan", ["bench", "g.onnx", "--min-seconds", "nan"], 2, "--min-seconds must be finite",
      write("g.onnx", b"\x00" * 10)),
    C("devices-unknown-profile", ["devices", "check", "no-such-board"], 2, "no-such-board"),
    C("bench-garbage-onnx", ["bench", "g.onnx", "--dataset", "digits"], 2, "g.onnx", write("g.onnx", b"\x00" * 10),
      owner="FORMATS"),
]


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_case(case: Case, tmp_path: Path, *extra: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``case`` (in this process, or with ``process`` as ``python -m edgekit``) and check the five things."""
    work = tmp_path / "work"
    work.mkdir()
    if case.setup:
        case.setup(work)
    before = _snapshot(work)
    cache = tmp_path / "cache"
    env = {**os.environ, "EDGEKIT_OFFLINE": "1", "EDGEKIT_CACHE_DIR": str(cache), "HOME": str(work / "home"),
           "EDGEKIT_DATA_DIR": str(tmp_path / "datasets"), "TF_CPP_MIN_LOG_LEVEL": "3", **case.env}
    env.pop("EDGEKIT_DEBUG", None)
    run = edgekit_subprocess if process else edgekit_in_process
    r = run(*extra, *case.args, cwd=work, env=env)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{r.stderr[-3000:]}"
    assert lines[0].startswith("edgekit: error:"), lines[0]
    assert len(lines[0]) < 1000, f"a {len(lines[0])}-character error line"  # messages quote truncated values
    assert case.words.lower() in lines[0].lower(), lines[0]
    assert r.returncode == case.code, f"exit {r.returncode}: {lines[0]}"
    assert _snapshot(work) == before, "files under the case folder changed"
    assert not (work / MARKER).exists() and not (tmp_path / MARKER).exists()
    assert not (cache / "artifacts").exists() or not any((cache / "artifacts").iterdir()), "a cache entry was written"
    return r


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=False, reason=f"owner: {case.owner}")] if case.owner in XFAIL_OWNERS else []
    return pytest.param(case, id=case.id, marks=marks)


XFAIL_OWNERS: set[str] = set()
"""Owners whose fixes are still landing (their failing cases xfail); empty once every fix is in."""


def test_catalogue_is_large_enough() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)


THROUGH_A_PROCESS = ("npz-nan-pixel", "recipe-python-tag", "model-lambda-h5", "inspect-garbage-tflite",
                     "out-not-a-run-force", "report-malformed-json")
"""Cases also run as ``python -m edgekit`` in a child process: one per kind of input (data, recipe, model
code, model file, run folder, report), so the real entry point's exit code and stderr are checked too."""


@pytest.mark.parametrize("case", [_param(c) for c in CASES if c.id in THROUGH_A_PROCESS])
def test_hostile_through_a_process(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path, process=True)


def test_cases_through_a_process_exist() -> None:
    assert set(THROUGH_A_PROCESS) <= {c.id for c in CASES}


def test_debug_shows_a_traceback(tmp_path: Path) -> None:
    """``--debug`` keeps the one-line error last and adds the traceback above it."""
    case = next(c for c in CASES if c.id == "npz-nan-pixel")
    work = tmp_path / "work"
    work.mkdir()
    case.setup(work)  # type: ignore[misc]
    env = {**os.environ, "EDGEKIT_OFFLINE": "1", "EDGEKIT_CACHE_DIR": str(tmp_path / "cache")}
    r = edgekit_in_process("--debug", *case.args, cwd=work, env=env)
    assert r.returncode == 2 and "Traceback" in r.stderr and "NaN" in r.stderr.strip().splitlines()[-1]


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Path:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)],
                                           capture_output=True).returncode:
        pytest.skip("needs root to mount a tiny tmpfs")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_is_one_line(tmp_path: Path, tiny_tmpfs: Path) -> None:
    """ENOSPC (a real 16 KiB tmpfs) is one line, exit 1, and leaves no temporary file."""
    (tmp_path / "m.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64 << 10))
    r = edgekit_in_process("export", str(tmp_path / "m.tflite"), "--format", "c-array", "--out", str(tiny_tmpfs))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "No space left on device" in lines[0], r.stderr
    assert list(tiny_tmpfs.iterdir()) == []


def test_read_only_out_is_one_line(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=16k", "tmpfs", str(ro)],
                                           capture_output=True).returncode:
        pytest.skip("needs root to mount a read-only tmpfs")
    try:
        case = C("out-read-only", ["compress", *T, "--out", str(ro / "run")], 2, "not writable")
        run_case(case, tmp_path)
    finally:
        subprocess.run(["umount", str(ro)], check=False)
