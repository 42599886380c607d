"""Assemble ``report.json``: the dict form of :class:`edgekit.report.model.Report`, which renderers and machines
read."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from edgekit import __version__
from edgekit.artifact import Artifact
from edgekit.audit import gzip_bytes
from edgekit.executor import Executor
from edgekit.fsutil import file_bytes, sha256_file
from edgekit.report.model import ArtifactRecord, Audit, BenchRow, TargetInfo, Verification
from edgekit.report.regressions import find_regressions
from edgekit.runtime.host import installed_version
from edgekit.schema import to_mapping

REPORT_VERSION = 1

# report.json's environment key -> the distribution whose version it records
_VERSIONED = {"tensorflow": "tensorflow", "tf_keras": "tf-keras", "tfmot": "tensorflow-model-optimization",
              "tf2onnx": "tf2onnx", "onnx": "onnx", "onnxruntime": "onnxruntime", "litert": "ai-edge-litert"}


def environment() -> dict[str, Any]:
    """Versions and the CPU this report was made on."""
    from edgekit.runtime.host import cpu_flags, cpu_model

    flags = cpu_flags()
    interesting = [f for f in sorted(flags) if f in ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni",
                                                     "amx_int8", "asimd", "asimddp", "sve")]
    return {
        "edgekit": __version__, **{key: installed_version(dist) for key, dist in _VERSIONED.items()},
        "python": platform.python_version(),
        "platform": platform.platform(), "machine": platform.machine(), "cpu_model": cpu_model(),
        "cpu_flags": interesting, "cpu_count": os.cpu_count(),
    }


def artifact_record(a: Artifact, run_dir: Path, verification: dict[str, Any] | None,
                    audit: dict[str, Any] | None) -> dict[str, Any]:
    """One artifact's report.json entry (:class:`ArtifactRecord`): its file, metrics, audit and verification."""
    d = a.to_dict(relative_to=run_dir)
    metrics = dict(a.metrics)
    if audit and "path" in audit:
        audit = {**audit, "path": d["path"]}  # keep report.json portable
    return ArtifactRecord(
        id=a.id, name=a.name, stage=a.stage, format=a.format, precision=a.precision, path=d["path"],
        bytes=file_bytes(a.path), gzip_bytes=gzip_bytes(a.path),
        sha256=sha256_file(a.path) if a.path.is_file() else None, parent_id=a.parent_id,
        accuracy=metrics.get("accuracy"), val_accuracy=metrics.get("val_accuracy"), sparsity=metrics.get("sparsity"),
        config=d["config"], metrics=metrics, meta=d["meta"],
        audit=Audit.from_dict(audit, "audit") if audit is not None else None,
        verification=Verification.from_dict(verification, "verification") if verification is not None else None,
    ).to_dict()


def build_report(*, cfg: Any, dataset: Any, artifacts: list[Artifact], run_dir: Path, verification: dict[str, Any],
                 audits: dict[str, Any], benchmarks: list[dict[str, Any]], targets: list[Any],
                 search: dict[str, Any] | None, command: str, seconds: float, chosen_id: str | None = None,
                 analysis: dict[str, Any] | None = None, tune: dict[str, Any] | None = None,
                 executor: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report dict for a compress run (``edgekit bench`` builds the same shape).

    ``regressions`` lists every artifact that is larger, slower or less accurate than its parent
    (:func:`edgekit.report.regressions.find_regressions`); ``warnings`` repeats those of the chosen
    artifact, so the run's status line says so. ``analysis`` (``edgekit analyze``) and ``tune``
    (``edgekit tune``) are optional sections, written only when given. ``executor`` (where the run's
    parallel work ran, :meth:`edgekit.executor.Executor.info`) is always written: in process by default.
    """
    records = [artifact_record(a, run_dir, verification.get(a.id), audits.get(a.id)) for a in artifacts]
    regressions = find_regressions([ArtifactRecord.from_dict(r) for r in records],
                                   [BenchRow.from_dict(b) for b in benchmarks],
                                   budget_pp=getattr(cfg, "max_accuracy_drop", None))  # the one rule (regressions.py)
    warnings = [f"the chosen artifact is worse than its parent: {g.message}" for g in regressions
                if chosen_id is not None and g.artifact_id == chosen_id]
    problems = [f"{r['name']}: {r['verification']['reason']}" for r in records
                if r["verification"] and r["verification"]["status"] != "ok"]
    baseline = next((a for a in artifacts if a.stage == "train"), None)
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "edgekit_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "seconds": round(seconds, 1),
        "dataset": dataset.summary(),
        "seed": getattr(cfg, "seed", None),
        "config": to_mapping(cfg) if cfg is not None else None,
        "environment": environment(),
        "targets": [TargetInfo(t.name, t.location, t.arch, t.emulated, tuple(t.onnxruntime.providers),
                               t.source).to_dict() for t in targets],
        "baseline_id": baseline.id if baseline else None,
        "chosen_id": chosen_id,
        "artifacts": records,
        "benchmarks": benchmarks,
        "status": "failed" if problems or (search or {}).get("status") == "failed" else "ok",
        "problems": problems + ([search["reason"]] if search and search.get("status") == "failed" else []),
        "warnings": warnings,
        "regressions": [g.to_dict() for g in regressions],
        "executor": executor if executor is not None else Executor("inprocess").info(),
    }
    from edgekit.mcu import report_section

    mcu = report_section(targets, artifacts, chosen_id)  # microcontroller targets: budgets, cross-compiled size
    if mcu:
        report["mcu"] = mcu
    if baseline is not None and "as_brought" in baseline.metrics:  # a user's model, measured before any training
        report["as_brought"] = {**baseline.metrics["as_brought"], "fine_tuning": baseline.metrics.get("fine_tuning")}
    for key, section in (("search", search), ("analysis", analysis), ("tune", tune)):
        if section is not None:
            report[key] = section
    return report
