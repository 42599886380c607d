"""``edgekit doctor``: what this machine can do, and what to install or change to do more.

Checks package versions against edgekit's own requirements (and the pairs that must match),
``TF_USE_LEGACY_KERAS``, which ONNX Runtime providers are present *and* load a model, the
CUDA/cuDNN/TensorRT libraries the ``gpu`` extra needs, qemu and the ARM64 sysroot, and
Chromium. It never imports TensorFlow (versions come from the installed metadata).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
from dataclasses import dataclass
from importlib.metadata import requires
from pathlib import Path

from edgekit.runtime.host import installed_version

EXAMPLES = """\
examples:
  # everything, including loading a tiny model in each ONNX Runtime provider
  edgekit doctor

  # only list the providers (faster; a provider that is present may still fail to load)
  edgekit doctor --no-load

  # in CI: fail the job when something edgekit needs is broken (exit 1 on any FAIL row)
  edgekit doctor || exit 1
"""

OK, WARN, FAIL = "ok", "warn", "FAIL"

CORE = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx", "onnxruntime",
        "ai-edge-litert", "numpy")
GPU_LIBS: dict[str, tuple[str, ...]] = {
    # what → shared-object names tried in order (CUDA 12 / cuDNN 9 / TensorRT 10, as onnxruntime-gpu 1.32 expects)
    "CUDA runtime": ("libcudart.so.12", "libcudart.so"),
    "cuBLAS": ("libcublas.so.12", "libcublas.so"),
    "cuDNN": ("libcudnn.so.9", "libcudnn.so"),
    "TensorRT": ("libnvinfer.so.10", "libnvinfer.so"),
}


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-load", action="store_true", help="list ONNX Runtime providers without loading a model")


def _requirements() -> dict[str, str]:
    """edgekit's own version ranges (core and the gpu extra), from its installed metadata."""
    from packaging.requirements import Requirement

    out: dict[str, str] = {}
    for line in requires("edgekit") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": "gpu"}):
            out[req.name.lower()] = str(req.specifier)
    return out


def check_versions() -> list[Check]:
    from packaging.specifiers import SpecifierSet

    checks: list[Check] = []
    wanted = _requirements()
    for dist in CORE:
        have = installed_version(dist)
        spec = wanted.get(dist, "")
        if have is None:
            checks.append(Check(dist, FAIL, "not installed", f"pip install '{dist}{spec}'"))
        elif spec and not SpecifierSet(spec).contains(have, prereleases=True):
            checks.append(Check(dist, FAIL, f"{have} (edgekit is tested with {spec})", f"pip install '{dist}{spec}'"))
        else:
            checks.append(Check(dist, OK, have))
    tf, tfk = installed_version("tensorflow"), installed_version("tf-keras")
    if tf and tfk and tf.split(".")[:2] != tfk.split(".")[:2]:
        checks.append(Check("tensorflow/tf-keras", FAIL, f"{tf} with tf-keras {tfk}: minor versions must match",
                            f"pip install 'tf-keras=={'.'.join(tf.split('.')[:2])}.*'"))
    if installed_version("onnxruntime") and installed_version("onnxruntime-gpu"):
        checks.append(Check("onnxruntime/onnxruntime-gpu", WARN, "both installed; they overwrite each other's files",
                            "pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'edgekit[gpu]'"))
    return checks


def check_legacy_keras() -> Check:
    value = os.environ.get("TF_USE_LEGACY_KERAS")
    if value in (None, ""):
        return Check("TF_USE_LEGACY_KERAS", OK, "unset (edgekit sets it to 1 before importing TensorFlow)")
    if value.lower() in ("1", "true"):
        return Check("TF_USE_LEGACY_KERAS", OK, value)
    return Check("TF_USE_LEGACY_KERAS", FAIL, f"{value!r}: TFMOT needs Keras 2 (tf_keras)", "unset TF_USE_LEGACY_KERAS")


def _tiny_onnx() -> bytes:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "doctor", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


def check_providers(load: bool = True) -> list[Check]:
    try:
        import onnxruntime as ort
    except Exception as e:  # a broken wheel is exactly what doctor is for
        return [Check("onnxruntime", FAIL, f"import failed: {type(e).__name__}: {e}",
                      "pip install --force-reinstall onnxruntime")]
    checks = []
    model = _tiny_onnx() if load else b""
    for provider in ort.get_available_providers():
        if provider == "AzureExecutionProvider":
            continue
        if not load:
            checks.append(Check(provider, OK, "present (not loaded: --no-load)"))
            continue
        options = ort.SessionOptions()
        options.log_severity_level = 4
        try:
            session = ort.InferenceSession(model, options, providers=[provider])
            ran = session.get_providers()[0]
        except Exception as e:
            checks.append(Check(provider, FAIL, f"present but fails to load: {str(e).splitlines()[0][:160]}",
                                _provider_fix(provider)))
            continue
        if ran == provider:
            checks.append(Check(provider, OK, "loads a model"))
        else:
            checks.append(Check(provider, FAIL, f"present but falls back to {ran}", _provider_fix(provider)))
    return checks


def _provider_fix(provider: str) -> str:
    if provider == "TensorrtExecutionProvider":
        return "install TensorRT 10 (pip install tensorrt-cu12, or the nvinfer libraries) and put it on LD_LIBRARY_PATH"
    if provider == "CUDAExecutionProvider":
        return ("install CUDA 12 and cuDNN 9 "
                "(pip install 'nvidia-cudnn-cu12>=9' nvidia-cublas-cu12 nvidia-cuda-runtime-cu12)")
    return "reinstall onnxruntime"


def _loads(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            continue
    return None


def check_gpu_libs() -> list[Check]:
    if installed_version("onnxruntime-gpu") is None:
        return [Check("gpu extra", WARN, "onnxruntime-gpu not installed (CUDA/TensorRT targets unavailable)",
                      "pip install 'edgekit[gpu]' on a machine with an NVIDIA GPU")]
    checks = []
    for what, names in GPU_LIBS.items():
        found = _loads(names)
        status = OK if found else (WARN if what == "TensorRT" else FAIL)
        checks.append(Check(what, status, found or f"none of {', '.join(names)} loads",
                            "" if found else _provider_fix("TensorrtExecutionProvider" if what == "TensorRT"
                                                           else "CUDAExecutionProvider")))
    return checks


def _sysroot() -> tuple[Path, bool]:
    try:
        from edgekit.locations.qemu import READY_FILE, sysroot_of
        from edgekit.targets import get_target

        root = sysroot_of(get_target("arm64-qemu"))
        return root, (root / READY_FILE).is_file()
    except Exception:
        root = Path(os.environ.get("EDGEKIT_SYSROOT") or Path.home() / ".cache" / "edgekit" / "arm64-sysroot")
        return root, (root / "usr" / "bin" / "python3.11").exists()


def check_system() -> list[Check]:
    from edgekit.sysreqs import missing_message

    checks = []
    qemu = missing_message("emulated ARM64", "qemu-aarch64-static", "debootstrap")
    checks.append(Check("qemu", WARN if qemu else OK, qemu or shutil.which("qemu-aarch64-static") or "",
                        f"apt-get install {qemu.split('apt-get install ')[-1].rstrip(')')}" if qemu else ""))
    root, ready = _sysroot()
    checks.append(Check("ARM64 sysroot", OK if ready else WARN, str(root) + ("" if ready else ": not set up"),
                        "" if ready else "edgekit devices setup arm64-qemu"))
    chromium = os.environ.get("EDGEKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    checks.append(Check("chromium", OK if chromium else WARN, chromium or "not found (browser example and tests)",
                        "" if chromium else "apt-get install chromium"))
    return checks


def check_cache() -> Check:
    from edgekit.cache import default_cache_dir

    root = default_cache_dir()
    base = next((p for p in (root, *root.parents) if p.exists()), Path("/"))
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        return Check("artifact cache", FAIL, f"{root}: {base} is not a writable folder",
                     "set EDGEKIT_CACHE_DIR to a writable folder")
    entries = sum(1 for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else 0
    return Check("artifact cache", OK, f"{root} ({entries} entries)")


def run_checks(load: bool = True) -> list[Check]:
    return [*check_versions(), check_legacy_keras(), *check_providers(load), *check_gpu_libs(), *check_system(),
            check_cache()]


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    checks = run_checks(load=not args.no_load)
    table = Table(show_header=True, header_style="bold")
    for col in ("check", "status", "detail"):
        table.add_column(col)
    for c in checks:
        style = {OK: "green", WARN: "yellow", FAIL: "red"}[c.status]
        table.add_row(c.name, f"[{style}]{c.status}[/{style}]", c.detail)
    console = Console()
    console.print(table)
    fixes = [c for c in checks if c.fix]
    if fixes:
        console.print("To fix:", style="bold")
        for c in fixes:
            console.print(f"  {c.name}: {c.fix}", markup=False, highlight=False)
    else:
        console.print("Nothing to fix.")
    return 1 if any(c.status == FAIL for c in checks) else 0
