#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU: installs ONNX Runtime's GPU build (with the CUDA,
# cuDNN and TensorRT wheels), makes the reference model's fp32 / fp16 / int8 ONNX artifacts on
# the bundled `digits` data, and benchmarks them on nvidia-cuda and nvidia-tensorrt (x86-cpu for
# comparison). Rows whose graph fell back to the CPU provider come out `failed`, never as GPU figures.
#
#   benchmarks/gpu_check.sh [OUT]        # default OUT: runs/gpu-check; needs network for pip
#
# Record the printed table and the command in benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu-check}
PY=${PYTHON:-python3}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || {
    echo "gpu_check: no NVIDIA GPU (nvidia-smi failed)" >&2; exit 1; }

# onnxruntime and onnxruntime-gpu must not both be installed: they share the `onnxruntime` package.
ORT_VERSION=$($PY -c "import importlib.metadata as m; print(m.version('onnxruntime'))" 2>/dev/null || echo "1.32.0")
$PY -m pip install -q -e ".[gpu]" || $PY -m pip install -q -e .
$PY -m pip uninstall -q -y onnxruntime || true
$PY -m pip install -q "onnxruntime-gpu[cuda,cudnn]==${ORT_VERSION}" "tensorrt-cu12" onnxconverter-common
# The CUDA/cuDNN/TensorRT libraries come as pip wheels; let ONNX Runtime find them.
LIBS=$($PY - <<'PY'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for pat in ("nvidia/*/lib", "tensorrt_libs", "tensorrt"):
        dirs.update(d for d in glob.glob(os.path.join(sp, pat)) if os.path.isdir(d))
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH="${LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
$PY -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
$PY -m edgekit devices --no-probe

mkdir -p "$OUT/models"
$PY - "$OUT/models" <<'PY'
"""Train the reference-sized tiny CNN on digits; export fp32, fp16 and int8 (QDQ S8S8 per-channel) ONNX."""
import sys
from pathlib import Path

from tests.helpers.models import build_models  # the same models the test-suite uses (cwd: repository root)

from edgekit.artifact import ModelMeta
from edgekit.export.metadata import embed_metadata

out = Path(sys.argv[1])
m = build_models(out)
import onnx
from onnxconverter_common import float16

fp16 = out / "tiny_fp16.onnx"
onnx.save(float16.convert_float_to_float16(onnx.load(str(m.onnx)), keep_io_types=True), str(fp16))
embed_metadata(fp16, ModelMeta(labels=m.labels, input_shape=(28, 28, 1), dataset="digits"), artifact_id="gpucheckfp16")
print("models:", m.onnx, fp16, m.onnx_int8)
PY

$PY -m edgekit bench "$OUT/models/tiny.onnx" "$OUT/models/tiny_fp16.onnx" "$OUT/models/tiny_int8.onnx" \
    --target x86-cpu --target nvidia-cuda --target nvidia-tensorrt --out "$OUT" --force \
    || echo "gpu_check: some rows failed; their reasons are in $OUT/report.md" >&2
echo "gpu_check: report in $OUT/report.md"
