"""Benchmark model files on device profiles and collect one row per cell.

A row (see :data:`ROW_FIELDS`) is one artifact × target × batch size × thread
count. Rows report the provider that *really* ran (from the session and ONNX
Runtime's per-node profile), never the one requested: a GPU target that ended
up on the CPU is ``failed``, with no latency under the GPU's name.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from edgekit.artifact import Artifact
from edgekit.bench.peak import add_percent_of_peak
from edgekit.console import progress
from edgekit.errors import TargetError
from edgekit.locations import location_for
from edgekit.targets import RUNTIME_FORMATS, Target

log = logging.getLogger(__name__)

ROW_FIELDS = (
    "artifact_id", "runtime", "target", "emulated", "provider", "providers", "node_share", "status", "reason",
    "batch_size", "threads", "latency_ms", "throughput_per_s", "runs", "seconds", "session_create_ms",
    "first_inference_ms", "peak_rss_mb", "accuracy", "top1_agreement", "reference_target", "target_agreement",
)
"""The fields every benchmark row carries (report.json's ``benchmarks``); a microcontroller row
(location ``tflm``) also has ``mcu``: the TFLM check and the RAM/flash fit, and no latency."""

CPU_PROVIDER = "CPUExecutionProvider"


@dataclass(frozen=True)
class Timing:
    """How long each cell is timed: at least ``min_runs`` runs *and* ``min_seconds``."""

    warmup_runs: int = 10
    min_runs: int = 200
    min_seconds: float = 1.0
    max_seconds: float = 30.0


def _runtime_for(artifact: Artifact, target: Target) -> str | None:
    if target.mcu is not None:  # a microcontroller runs .tflite files on its interpreter (location tflm)
        return target.mcu.runtime if artifact.format == "tflite" else None
    for runtime in target.runtimes:
        if RUNTIME_FORMATS[runtime] == artifact.format:
            return runtime
    return None


def _blank_rows(artifact: Artifact, target: Target, runtime: str, status: str, reason: str) -> list[dict[str, Any]]:
    return [
        _complete({"artifact_id": artifact.id, "runtime": runtime, "target": target.name, "emulated": target.emulated,
                   "status": status, "reason": reason, "batch_size": b, "threads": t})
        for b in target.batch_sizes for t in target.resolved_threads()
    ]


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in ROW_FIELDS}
    out.update({k: v for k, v in row.items() if k not in out})
    return out


MEASURED = ("latency_ms", "throughput_per_s", "runs", "seconds", "session_create_ms", "first_inference_ms",
            "accuracy", "top1_agreement", "target_agreement")
"""Fields a row may only carry when the requested provider really ran the graph."""


def _provider_truth(row: dict[str, Any], target: Target) -> dict[str, Any]:
    """Fail a row whose requested accelerator did not actually run the graph (no CPU figure under a GPU name)."""
    if row.get("runtime") != "onnxruntime" or row.get("status") != "ok":
        return row
    wanted = target.onnxruntime.providers[0]
    if wanted == CPU_PROVIDER:
        return row
    got = row.get("providers") or []
    share = row.get("node_share") or {}
    if wanted not in got:
        why = f"asked for {wanted} but the session has only {', '.join(got) or 'no provider'}"
    elif row.get("provider") == CPU_PROVIDER or share.get(wanted, 0.0) == 0.0:
        why = f"asked for {wanted} but ONNX Runtime ran the graph on {row.get('provider')} (node share: {share})"
    else:
        return row
    return {**row, "status": "failed", "reason": why, **{k: None for k in MEASURED}}


def _expand_paths(options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Provider options with a leading ``~`` in string values expanded (engine cache paths)."""
    return {p: {k: os.path.expanduser(v) if isinstance(v, str) and v.startswith("~") else v for k, v in o.items()}
            for p, o in options.items()}


def _request(artifact: Artifact, runtime: str, target: Target, data: Path, timing: Timing,
             strict: bool | None, host_paths: bool) -> dict[str, Any]:
    ort_opts = target.onnxruntime
    options = _expand_paths(ort_opts.provider_options) if host_paths else ort_opts.provider_options
    return {
        "model": str(artifact.path), "data": str(data), "runtime": runtime,
        "providers": list(ort_opts.providers), "provider_options": options,
        "strict": ort_opts.strict if strict is None else strict, "batch_sizes": list(target.batch_sizes),
        "threads": list(target.threads), "timing": dataclasses.asdict(timing), "return_predictions": True,
        "timeout_s": target.ssh.timeout_s if target.ssh else 3600, "precision": artifact.precision,
    }


def _agreement(a: list[int] | None, b: list[int] | None) -> float | None:
    if not a or not b or len(a) != len(b):
        return None
    return float((np.asarray(a) == np.asarray(b)).mean())


def benchmark(artifacts: Iterable[Artifact], x: np.ndarray, y: np.ndarray, targets: Iterable[Target], *,
              references: dict[str, np.ndarray] | None = None, timing: Timing = Timing(),
              strict: bool | None = None) -> list[dict[str, Any]]:
    """Benchmark every artifact on every target that has a runtime for its format.

    ``references`` maps an artifact id to the top-1 predictions its agreement is measured against
    (``top1_agreement``). Each row also gets ``target_agreement``: the top-1 agreement of the same
    artifact between this target and ``reference_target``, the first target it ran on (e.g. ARM vs x86).
    ``strict`` overrides the profiles' ``onnxruntime.strict`` (session.disable_cpu_ep_fallback).
    """
    artifacts = [a for a in artifacts if a.format in RUNTIME_FORMATS.values()]
    targets = list(targets)
    rows: list[dict[str, Any]] = []
    jobs = [(a, t) for a in artifacts for t in targets if _runtime_for(a, t)]
    locations = {t.name: location_for(t) for t in targets}
    reasons = {name: loc.unavailable_reason() for name, loc in locations.items()}
    first_preds: dict[str, tuple[str, list[int]]] = {}  # artifact id -> (target, predictions)
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp, progress("benchmarking", len(jobs)) as bar:
        tmpdir = Path(tmp)
        for artifact, target in jobs:
            runtime = _runtime_for(artifact, target)
            assert runtime is not None  # jobs only holds pairs with a runtime
            bar.update(description=f"benchmarking {artifact.name or artifact.id} on {target.name}")
            if reasons[target.name]:
                rows += _blank_rows(artifact, target, runtime, "skipped", reasons[target.name] or "")
                bar.advance()
                continue
            work = tmpdir / f"{artifact.id}-{target.name}"
            work.mkdir()
            data = {"x": x, "y": y}
            ref = (references or {}).get(artifact.id)
            if ref is not None:
                data["ref"] = ref
            np.savez(work / "data.npz", **data)
            try:
                where = locations[target.name]
                request = _request(artifact, runtime, target, work / "data.npz", timing, strict, where.host_paths)
                result = where.run(request, work)
            except TargetError as e:
                log.warning("%s on %s: %s", artifact.name or artifact.id, target.name, e)
                rows += _blank_rows(artifact, target, runtime, "failed", str(e))
                bar.advance()
                continue
            preds = result.get("predictions")
            cell_rows = [_provider_truth(_complete({**r, "artifact_id": artifact.id, "target": target.name,
                                                    "emulated": target.emulated}), target)
                         for r in result.get("rows", [])]
            if preds and any(r["status"] == "ok" for r in cell_rows):
                ref_target, ref_preds = first_preds.setdefault(artifact.id, (target.name, preds))
                for r in cell_rows:
                    if r["status"] == "ok":
                        r["reference_target"] = ref_target
                        r["target_agreement"] = _agreement(preds, ref_preds)
            rows += cell_rows
            bar.advance()
    return add_percent_of_peak(rows, artifacts)  # MACs per image and % of peak
