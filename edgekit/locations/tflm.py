"""A microcontroller profile, run on this host on TensorFlow Lite Micro's real kernels (location ``tflm``).

No Cortex-M is attached: the ``tflite-micro`` package runs the model's int8 ``.tflite`` file
on TFLM's interpreter and reference kernels here (:mod:`edgekit.runtime.tflm`). One row per
file gives what that measures, and what the microcontroller would need:

* accuracy on the test images and top-1 agreement with the parent (``top1_agreement``);
* the ``mcu`` record: agreement of TFLM with LiteRT on the same file, the tensor arena TFLM
  used, and the fit against the profile's RAM and flash with margins (:func:`edgekit.mcu.fits`).

No latency is reported: the host's speed on TFLM's kernels says nothing about a Cortex-M's.
A row is ``skipped`` (reason given, fit still recorded where measured) for a float file (an MCU
runs int8), a file with ops TFLM has no kernel for (named), or one that does not fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import TargetError
from edgekit.locations.base import Location
from edgekit.mcu import fits
from edgekit.runtime import tflm
from edgekit.runtime.measure import predict_all
from edgekit.runtime.sessions import SessionError, open_session

FLOAT_PRECISIONS = ("fp32", "fp16")
PROVIDER = "TFLM kernels (host)"
LATENCY_NOTE = "not measured: TFLM's kernels on this host are not the microcontroller's speed"


class TflmLocation(Location):
    """A microcontroller profile (``[mcu]`` table) checked on TFLM's kernels on this machine."""

    kind = "tflm"
    host_paths = True

    def where(self) -> str:
        return "tflm (TFLM kernels on this host)"

    def unavailable_reason(self, probe: bool = True) -> str | None:
        if self.target.mcu is None:
            return "location 'tflm' needs an [mcu] table in the profile"
        return tflm.unavailable_reason()

    def run(self, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
        """One row for ``request["model"]`` (a ``.tflite``) on the test data in ``request["data"]``."""
        data = np.load(request["data"], allow_pickle=False)
        x = np.ascontiguousarray(data["x"], dtype=np.float32)
        y = data["y"].astype(np.int64)
        ref = data["ref"].astype(np.int64) if "ref" in data.files else None
        return mcu_check(Path(request["model"]), self.target, x, y, ref, precision=str(request.get("precision") or ""))


def _litert_predictions(path: Path, x: np.ndarray) -> np.ndarray:
    try:
        session = open_session("litert", str(path), threads=1)
    except SessionError as e:
        raise TargetError(f"{path.name}: LiteRT, the reference TFLM is compared with, cannot open it: {e}") from None
    preds, _ = predict_all(session.predict, x, 64, session.fixed_batch)
    return preds


def mcu_check(path: Path, target: Any, x: np.ndarray, y: np.ndarray, ref: np.ndarray | None = None, *,
              precision: str = "") -> dict[str, Any]:
    """Run ``path`` on TFLM (int8 files), compare with LiteRT, check the fit; returns
    ``{"rows": [row], "predictions"}``."""
    mcu = target.mcu
    base: dict[str, Any] = {"runtime": mcu.runtime, "provider": PROVIDER, "providers": [PROVIDER], "batch_size": 1,
                            "threads": 1}
    record: dict[str, Any] = {"tflm_version": tflm.tflm_version(), "tflm_status": "skipped", "tflm_agreement": None,
                              "tflm_images": 0, "latency": LATENCY_NOTE}
    if path.suffix != ".tflite":
        fit = fits(path, target)
        return {"rows": [{**base, "status": "skipped", "reason": fit["reason"], "mcu": {**_fit(fit), **record}}]}
    if precision in FLOAT_PRECISIONS:
        fit = fits(path, target)  # the arena of one inference: enough to say whether it would fit
        reason = f"{precision} file: a microcontroller runs int8 models (fit measured, accuracy not)"
        return {"rows": [{**base, "status": "skipped", "reason": reason, "mcu": {**_fit(fit), **record}}]}
    litert = _litert_predictions(path, x)
    verdict = tflm.verify_on_tflm(path, x, litert)
    record.update(tflm_status=verdict["status"], tflm_agreement=verdict["agreement"], tflm_images=verdict["images"])
    if verdict["status"] != "ok":
        fit = fits(path, target)  # names the unsupported ops, or says why it could not be measured
        row = {**base, "status": "skipped" if verdict["status"] in ("unsupported", "skipped") else "failed",
               "reason": verdict["reason"], "mcu": {**_fit(fit), **record}}
        return {"rows": [row]}
    fit = fits(path, target, arena_bytes=verdict["arena_bytes"])
    preds = np.asarray(verdict["predictions"], np.int64)
    row = {**base, "status": "ok" if fit["fits"] else "skipped",
           "reason": "" if fit["fits"] else f"does not fit {target.name}: {fit['reason']}",
           "accuracy": float((preds == y).mean()),
           "top1_agreement": float((preds == ref).mean()) if ref is not None and len(ref) == len(preds) else None,
           "mcu": {**_fit(fit), **record}}
    return {"rows": [row], "predictions": [int(p) for p in preds]}


def _fit(fit: dict[str, Any]) -> dict[str, Any]:
    """The fit row without the host path of the model (report.json stays portable)."""
    return {k: v for k, v in fit.items() if k != "model"}
