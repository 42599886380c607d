"""Benchmark model files on device profiles and collect one row per cell.

A row (see :data:`ROW_FIELDS`) is one artifact × target × batch size × thread
count. Rows report the provider that *really* ran (from the session and ONNX
Runtime's per-node profile), never the one requested: a GPU target that ended
up on the CPU is ``failed``, with no latency under the GPU's name.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from edgekit.artifact import Artifact
from edgekit.bench.availability import unavailable_reason
from edgekit.bench.execute import run_on_target
from edgekit.console import progress
from edgekit.errors import TargetError
from edgekit.targets import RUNTIME_FORMATS, Target

log = logging.getLogger(__name__)

ROW_FIELDS = (
    "artifact_id", "runtime", "target", "emulated", "provider", "providers", "node_share", "status", "reason",
    "batch_size", "threads", "latency_ms", "throughput_per_s", "runs", "seconds", "session_create_ms",
    "first_inference_ms", "peak_rss_mb", "accuracy", "top1_agreement",
)
"""The fields every benchmark row carries (report.json's ``benchmarks``)."""

CPU_PROVIDER = "CPUExecutionProvider"


@dataclass(frozen=True)
class Timing:
    """How long each cell is timed: at least ``min_runs`` runs *and* ``min_seconds``."""

    warmup_runs: int = 10
    min_runs: int = 200
    min_seconds: float = 1.0
    max_seconds: float = 30.0


def _runtime_for(artifact: Artifact, target: Target) -> str | None:
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


def _provider_truth(row: dict[str, Any], target: Target) -> dict[str, Any]:
    """Fail a row whose requested accelerator did not actually run the graph."""
    if row.get("runtime") != "onnxruntime" or row.get("status") != "ok":
        return row
    wanted = target.onnxruntime.providers[0]
    if wanted != CPU_PROVIDER and row.get("provider") == CPU_PROVIDER:
        row = {**row, "status": "failed",
               "reason": f"asked for {wanted} but ONNX Runtime ran the graph on {CPU_PROVIDER} (providers: {row.get('providers')})",
               "latency_ms": None, "throughput_per_s": None}
    return row


def benchmark(artifacts: Iterable[Artifact], x: np.ndarray, y: np.ndarray, targets: Iterable[Target], *,
              references: dict[str, np.ndarray] | None = None, timing: Timing = Timing()) -> list[dict[str, Any]]:
    """Benchmark every artifact on every target that has a runtime for its format.

    ``references`` maps an artifact id to the top-1 predictions its agreement is measured against.
    """
    artifacts = [a for a in artifacts if a.format in RUNTIME_FORMATS.values()]
    targets = list(targets)
    rows: list[dict[str, Any]] = []
    jobs = [(a, t) for t in targets for a in artifacts if _runtime_for(a, t)]
    reasons = {t.name: unavailable_reason(t) for t in targets}
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp, progress("benchmarking", len(jobs)) as bar:
        tmpdir = Path(tmp)
        for artifact, target in jobs:
            runtime = _runtime_for(artifact, target)
            assert runtime is not None
            bar.update(description=f"benchmarking {artifact.name or artifact.id} on {target.name}")
            if reasons[target.name]:
                rows += _blank_rows(artifact, target, runtime, "skipped", reasons[target.name])
                bar.advance()
                continue
            work = tmpdir / f"{artifact.id}-{target.name}"
            work.mkdir()
            data = {"x": x, "y": y}
            ref = (references or {}).get(artifact.id)
            if ref is not None:
                data["ref"] = ref
            np.savez(work / "data.npz", **data)
            request = {
                "model": str(artifact.path), "data": str(work / "data.npz"), "runtime": runtime,
                "providers": list(target.onnxruntime.providers), "provider_options": target.onnxruntime.provider_options,
                "strict": target.onnxruntime.strict, "batch_sizes": list(target.batch_sizes),
                "threads": list(target.threads),
                "timing": timing.__dict__,
            }
            try:
                result = run_on_target(target, request, work)
            except TargetError as e:
                log.warning("%s on %s: %s", artifact.name or artifact.id, target.name, e)
                rows += _blank_rows(artifact, target, runtime, "failed", str(e))
                bar.advance()
                continue
            for r in result.get("rows", []):
                row = _complete({**r, "artifact_id": artifact.id, "target": target.name, "emulated": target.emulated})
                rows.append(_provider_truth(row, target))
            bar.advance()
    return rows
