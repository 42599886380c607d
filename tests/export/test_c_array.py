"""`edgekit export --format c-array`: the generated C compiles and embeds exactly the model's bytes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.models import TinyModels, tiny_models
from edgekit.cli import main
from edgekit.errors import OutputExistsError, UsageError
from edgekit.export.c_array import c_identifier, write_c_array

CC = shutil.which("cc")
CXX = shutil.which("c++")
needs_cc = pytest.mark.skipif(CC is None, reason="needs a C compiler (`cc`, e.g. apt-get install gcc)")

CHECK_C = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "NAME.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  FILE* f = fopen(argv[1], "rb");
  if (!f) { perror(argv[1]); return 2; }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* buf = (unsigned char*)malloc((size_t)n);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) return 2;
  fclose(f);
  if ((uintptr_t)NAME % 16 != 0) { printf("misaligned\n"); return 1; }
  if ((unsigned long)n != NAME_len) { printf("length %ld != %u\n", n, NAME_len); return 1; }
  if (memcmp(buf, NAME, (size_t)n) != 0) { printf("bytes differ\n"); return 1; }
  printf("ok %u bytes, %u labels:", NAME_len, NAME_labels_count);
  for (unsigned int i = 0; i < NAME_labels_count; i++) printf(" %s", NAME_labels[i]);
  printf("\n");
  free(buf);
  return 0;
}
"""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return tiny_models(tmp_path_factory.getbasetemp())


def _build_and_run(folder: Path, name: str, model: Path, std: str) -> str:
    (folder / "check.c").write_text(CHECK_C.replace("NAME", name))
    exe = folder / f"check_{std}"
    compiler = [CXX, "-x", "c++"] if std.startswith("c++") else [CC]
    subprocess.run([*compiler, f"-std={std}", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(folder),
                    str(folder / "check.c"), str(folder / f"{name}.c"), "-o", str(exe)], check=True)
    return subprocess.run([str(exe), str(model)], check=True, capture_output=True, text=True).stdout


@needs_cc
@pytest.mark.parametrize("std", ["c11", "c99", pytest.param("c++11", marks=pytest.mark.skipif(
    CXX is None, reason="needs a C++ compiler (`c++`, e.g. apt-get install g++)"))])
@pytest.mark.slow
def test_c_array_compiles_and_embeds_the_file(tiny: TinyModels, tmp_path: Path, std: str) -> None:
    model = tmp_path / "tiny-int8 model.tflite"  # a name that is not a C identifier
    shutil.copyfile(tiny.tflite_int8, model)
    assert main(["export", str(model), "--format", "c-array", "--out", str(tmp_path / "out")]) == 0
    name = "tiny_int8_model"
    header = (tmp_path / "out" / f"{name}.h").read_text()
    assert "#ifndef TINY_INT8_MODEL_H_" in header
    out = _build_and_run(tmp_path / "out", name, model, std)
    assert out.strip() == f"ok {model.stat().st_size} bytes, 10 labels: 0 1 2 3 4 5 6 7 8 9"


@needs_cc
@pytest.mark.slow
def test_model_without_labels_and_odd_label_text(tiny: TinyModels, tmp_path: Path) -> None:
    from edgekit.artifact import ModelMeta
    from edgekit.export.metadata import embed_metadata

    raw = tmp_path / "raw.tflite"
    shutil.copyfile(tiny.folder / "tiny_raw.tflite", raw)
    files = write_c_array(raw, tmp_path, name="m")
    assert files.labels == ()
    assert _build_and_run(tmp_path, "m", raw, "c11").strip() == f"ok {raw.stat().st_size} bytes, 0 labels:"
    embed_metadata(raw, ModelMeta(labels=('say "hi"', "back\\slash", "wh??=t", "ünï"), input_shape=(28, 28, 1)), "x")
    write_c_array(raw, tmp_path, name="m", force=True)
    assert _build_and_run(tmp_path, "m", raw, "c11").strip().endswith('labels: say "hi" back\\slash wh??=t ünï')


@pytest.mark.slow
def test_refuses_to_overwrite_and_bad_input(tiny: TinyModels, tmp_path: Path) -> None:
    write_c_array(tiny.tflite, tmp_path)
    with pytest.raises(OutputExistsError, match="--force"):
        write_c_array(tiny.tflite, tmp_path)
    with pytest.raises(UsageError, match="not a valid C identifier"):
        write_c_array(tiny.tflite, tmp_path, name="1 bad")
    assert main(["export", str(tiny.onnx), "--format", "c-array"]) == 2
    assert main(["export", str(tmp_path / "missing.tflite"), "--format", "c-array"]) == 2


def test_c_identifier() -> None:
    assert c_identifier("model-v1.2") == "model_v1_2"
    assert c_identifier("9lives") == "model_9lives"
    assert c_identifier("int") == "int_model"
