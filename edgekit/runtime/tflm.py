"""TensorFlow Lite Micro on the host: run a TFLite model on TFLM's real kernels, measure its arena, check MCU budgets.

The ``tflite-micro`` package (``pip install --pre tflite-micro``, edgekit's ``mcu`` extra)
wraps TFLM's ``MicroInterpreter`` with the full op resolver and a recording allocator.
Every run happens in a child process: TFLM aborts the process (a segfault) when the
arena is too small, and a crash must become a one-line reason, never take edgekit down.

* :func:`run_tflm` runs images and returns the scores, the arena TFLM actually used
  (``RecordingMicroAllocator``'s total, the figure ``MicroInterpreter::arena_used_bytes()``
  returns) and the ops TFLM has no kernel for.
* :func:`verify_on_tflm` compares TFLM's top-1 predictions with LiteRT's.
* :func:`measure_arena` is the arena alone (one all-zero input); the budgets that use
  it (:func:`edgekit.mcu.fits`) sit above this leaf package.

Like the rest of :mod:`edgekit.runtime`, this module imports only the standard library,
NumPy and the runtime it opens.

The arena is measured with TFLM's 64-bit host build; its bookkeeping structs hold
pointers, so a 32-bit Cortex-M needs the same tensor bytes and slightly less overhead:
the figure errs on the safe side.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "tflite-micro"
INSTALL_HINT = "pip install --pre tflite-micro  (or: pip install 'edgekit[mcu]')"
HOST_ARENA_BYTES = 64 * 1024 * 1024
"""The arena the measuring run gets; TFLM records how much of it the model really uses."""

_ARENA_RE = re.compile(r"Arena allocation total (\d+) bytes")
_MISSING_OP_RES = (re.compile(r"Didn't find op for builtin opcode '([A-Za-z0-9_]+)'"),
                   re.compile(r"Failed to get registration from op code ([A-Za-z0-9_]+)"),
                   re.compile(r"Didn't find custom op for name '([^']+)'"))


@dataclass(frozen=True)
class TflmRun:
    """The outcome of running a model on TFLM."""

    ok: bool
    scores: np.ndarray | None = None  # (N, classes) float scores, dequantized
    arena_bytes: int | None = None
    unsupported_ops: tuple[str, ...] = ()
    reason: str = ""
    log: str = field(default="", repr=False)  # what TFLM printed

    @property
    def predictions(self) -> list[int]:
        if self.scores is None:
            return []
        return [int(i) for i in np.argmax(self.scores.reshape(len(self.scores), -1), axis=1)]


def unavailable_reason() -> str | None:
    """None when the ``tflite-micro`` package can be imported, else why not and how to install it."""
    import importlib

    try:
        importlib.import_module("tflite_micro.python.tflite_micro.runtime")
    except ImportError as e:
        return f"{PACKAGE} is not installed ({e}); {INSTALL_HINT}"
    return None


def tflm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return ""


def run_tflm(tflite_path: str | os.PathLike[str], x: np.ndarray | None = None, *,
             arena_size: int = HOST_ARENA_BYTES, timeout_s: float = 1800) -> TflmRun:
    """Run ``x`` (float images, one batch of N; None: one all-zero input) through TFLM, image by image.

    Integer-input models get ``x`` quantized with the input's own scale and zero point; integer
    outputs are dequantized. Returns ``ok=False`` with a reason (and the unsupported ops, if that
    is why) instead of raising when TFLM cannot run the model.
    """
    why = unavailable_reason()
    if why:
        return TflmRun(False, reason=why)
    path = Path(tflite_path)
    if not path.is_file():
        return TflmRun(False, reason=f"{path}: no such model file")
    with tempfile.TemporaryDirectory(prefix="edgekit-tflm-") as tmp:
        folder = Path(tmp)
        (folder / "request.json").write_text(json.dumps({"model": str(path.resolve()), "arena_size": int(arena_size)}))
        if x is not None:
            np.save(folder / "x.npy", np.ascontiguousarray(x, dtype=np.float32))
        cmd = [sys.executable, "-c",
               "import sys; from edgekit.runtime.tflm import _child_main; _child_main(sys.argv[1])", str(folder)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return TflmRun(False, reason=f"{path.name}: TFLM run timed out after {timeout_s:g} s")
        text = _read(folder / "tflm.log")
        result = json.loads(_read(folder / "result.json") or "{}")
        missing = _unsupported(text)
        if proc.returncode != 0 or not result.get("ok"):
            detail = (result.get("error") or _last_line(text) or _last_line(proc.stderr)
                      or f"exit status {proc.returncode}")
            if proc.returncode < 0:
                detail = f"TFLM crashed (signal {-proc.returncode}; arena of {arena_size} bytes too small?): {detail}"
            reason = (f"TFLM has no kernel for {', '.join(missing)}" if missing
                      else f"TFLM could not run the model: {detail}")
            return TflmRun(False, unsupported_ops=missing, reason=reason, log=text)
        match = _ARENA_RE.search(text)
        scores = np.load(folder / "scores.npy") if (folder / "scores.npy").is_file() else None
        return TflmRun(True, scores, int(match.group(1)) if match else None, (), "", text)


def measure_arena(tflite_path: str | os.PathLike[str]) -> TflmRun:
    """The tensor arena the model needs on TFLM (one inference on an all-zero input)."""
    return run_tflm(tflite_path, None)


def verify_on_tflm(tflite_path: str | os.PathLike[str], x: np.ndarray, litert_predictions: Any) -> dict[str, Any]:
    """Run ``x`` on TFLM and compare its top-1 predictions with LiteRT's ``litert_predictions`` (one per image).

    Returns ``runtime``, ``version``, ``status`` (ok | unsupported | failed | skipped), ``reason``,
    ``images``, ``agreement`` (share of equal top-1, None when it did not run), ``arena_bytes``,
    ``unsupported_ops`` and ``predictions``.
    """
    expected = [int(p) for p in np.asarray(litert_predictions).reshape(-1)]
    if len(expected) != len(x):
        raise ValueError(f"{len(x)} images but {len(expected)} LiteRT predictions")
    out: dict[str, Any] = {"runtime": PACKAGE, "version": tflm_version(), "images": int(len(x)), "agreement": None,
                           "arena_bytes": None, "unsupported_ops": [], "predictions": None}
    why = unavailable_reason()
    if why:
        return {**out, "status": "skipped", "reason": why}
    run = run_tflm(tflite_path, x)
    if not run.ok:
        status = "unsupported" if run.unsupported_ops else "failed"
        return {**out, "status": status, "reason": run.reason, "unsupported_ops": list(run.unsupported_ops)}
    preds = run.predictions
    agreement = float(np.mean(np.asarray(preds) == np.asarray(expected))) if preds else None
    return {**out, "status": "ok", "reason": "", "agreement": agreement, "arena_bytes": run.arena_bytes,
            "predictions": preds}


def _unsupported(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for rx in _MISSING_OP_RES:
        for name in rx.findall(text):
            if name not in found:
                found.append(name)
    return tuple(found)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------- child process


def _quantize(x: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(details["dtype"])
    scales = details["quantization_parameters"]["scales"]
    if dtype == np.float32 or not len(scales):
        return x.astype(dtype)
    zero = details["quantization_parameters"]["zero_points"]
    info = np.iinfo(dtype)
    q = np.round(x / float(scales[0]) + float(zero[0] if len(zero) else 0))
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    scales = details["quantization_parameters"]["scales"]
    if y.dtype == np.float32 or not len(scales):
        return y.astype(np.float32)
    zero = details["quantization_parameters"]["zero_points"]
    return (y.astype(np.float32) - float(zero[0] if len(zero) else 0)) * float(scales[0])


def _child_main(folder_arg: str) -> None:
    """Run in a child process: TFLM's messages (and a crash) stay out of the caller's process."""
    folder = Path(folder_arg)
    req = json.loads((folder / "request.json").read_text())
    log_fd = os.open(folder / "tflm.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log_fd, 2)  # TFLM prints errors and the allocation record on the C stderr

    def finish(result: dict[str, Any]) -> None:
        (folder / "result.json").write_text(json.dumps(result))

    from tflite_micro.python.tflite_micro import runtime

    model = Path(req["model"]).read_bytes()
    try:
        it = runtime.Interpreter.from_bytes(model, arena_size=int(req["arena_size"]))
    except (RuntimeError, ValueError) as e:
        finish({"ok": False, "error": str(e)})
        return
    inp, out = it.get_input_details(0), it.get_output_details(0)
    shape = [int(d) for d in inp["shape"]]
    x_path = folder / "x.npy"
    x = np.load(x_path) if x_path.is_file() else np.zeros([1, *shape[1:]], np.float32)
    scores = []
    try:
        for i in range(len(x)):
            it.set_input(_quantize(x[i:i + 1].reshape(shape), inp), 0)
            it.invoke()
            scores.append(_dequantize(np.asarray(it.get_output(0)), out).reshape(-1))
    except (RuntimeError, ValueError) as e:
        finish({"ok": False, "error": str(e)})
        return
    np.save(folder / "scores.npy", np.stack(scores))
    sys.stderr.flush()
    it.print_allocations()
    finish({"ok": True})
