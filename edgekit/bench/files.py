"""Benchmark model files that did not come from a pipeline run (``edgekit bench``'s library half).

Accuracy is measured on the given data, by default the dataset recorded in the
models' embedded metadata; the report has the same shape as ``compress``'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgekit.artifact import PRECISIONS, Artifact, ModelMeta
from edgekit.bench.api import Timing, benchmark, fleet_executor
from edgekit.errors import OutputExistsError, UsageError
from edgekit.formats import deployable_formats, format_of, spec
from edgekit.fsutil import sha256_file


def _dataset_name(paths: list[Path], metas: dict[Path, ModelMeta | None]) -> str:
    names = {p: m.dataset for p, m in metas.items() if m is not None and m.dataset}
    if not names:
        raise UsageError(f"{paths[0]}: no dataset recorded in the model's metadata; pass --dataset or --data-dir")
    if len(set(names.values())) > 1:
        detail = ", ".join(f"{p.name}: {n}" for p, n in names.items())
        raise UsageError(f"the models record different datasets ({detail}); pass --dataset or --data-dir")
    return next(iter(names.values()))


def _artifact(path: Path, audit: dict[str, Any], meta: ModelMeta | None) -> Artifact:
    precision = audit.get("precision")
    return Artifact(id=sha256_file(path)[:12], stage="external", format=format_of(path),  # type: ignore[arg-type]
                    precision=precision if precision in PRECISIONS else "fp32",  # type: ignore[arg-type]
                    path=path.resolve(), parent_id=None, meta=meta, name=path.stem)


def nothing_ran(rows: list[dict[str, Any]]) -> str | None:
    """Why no benchmark cell ran (every target skipped or failed), or None when at least one did."""
    if any(r["status"] == "ok" for r in rows):
        return None
    reasons = {f"{r['target']}: {r['reason']}" for r in rows if r.get("reason")}
    return ("nothing was benchmarked: every target was skipped or failed ("
            + ("; ".join(sorted(reasons)) or "no target has a runtime for these models") + ")")


def benchmark_models(models: Sequence[str | Path], *, targets: Sequence[str] = (), dataset: str | None = None,
                     data_dir: str | Path | None = None, test_limit: int | None = None,
                     devices_dirs: Sequence[str | Path] = (), strict: bool | None = None, timing: Timing = Timing(),
                     out: str | Path | None = None, force: bool = False, command: str = "") -> dict[str, Any]:
    """Benchmark ``.onnx``/``.tflite`` files on device profiles; returns the report (written to ``out`` if given)."""
    from edgekit.audit import audit_model
    from edgekit.data.datasets import load_dataset
    from edgekit.export.metadata import read_metadata
    from edgekit.report.build import build_report
    from edgekit.report.write import write_reports
    from edgekit.targets import default_target_name, get_target

    start = time.perf_counter()
    paths = [Path(m) for m in models]
    runnable = [spec(f).suffix for f in deployable_formats()]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such model file")
        if format_of(path) not in deployable_formats():
            raise UsageError(f"{path}: edgekit bench runs {' and '.join(runnable)} files (export a Keras model first)")
    if dataset is not None and data_dir is not None:
        raise UsageError("--dataset and --data-dir are mutually exclusive")
    if test_limit is not None and test_limit < 1:
        raise UsageError(f"--test-limit: must be >= 1, got {test_limit}")
    if out is not None and not force and (Path(out) / "report.json").exists():
        raise OutputExistsError(f"{Path(out) / 'report.json'}: already exists (use --force to replace it)")
    profiles = [get_target(n, list(devices_dirs)) for n in dict.fromkeys(targets or [default_target_name()])]
    audits = {p: audit_model(p) for p in paths}  # an empty or damaged file is refused here, before any data loads
    metas = {p: read_metadata(p) for p in paths}
    name = dataset or (None if data_dir else _dataset_name(paths, metas))
    ds = load_dataset(name, data_dir=data_dir, test_limit=test_limit)
    for p, m in metas.items():
        if m is not None and m.input_shape and tuple(m.input_shape) != ds.input_shape:
            raise UsageError(f"{p}: the model takes {tuple(m.input_shape)} images, {ds.name} has {ds.input_shape}")
    artifacts = [_artifact(p, audits[p], metas[p]) for p in paths]
    rows = benchmark(artifacts, ds.x_test, ds.y_test, profiles, timing=timing, strict=strict)
    run_dir = Path(out) if out is not None else Path.cwd()
    report = build_report(cfg=None, dataset=ds, artifacts=artifacts, run_dir=run_dir, verification={},
                          audits={a.id: audits[p] for a, p in zip(artifacts, paths)}, benchmarks=rows,
                          targets=profiles, search=None, command=command, seconds=time.perf_counter() - start,
                          executor=fleet_executor(profiles))
    failed = [f"{r['artifact_id']} on {r['target']} (batch {r['batch_size']}, {r['threads']} threads): {r['reason']}"
              for r in rows if r["status"] == "failed"]
    nothing = nothing_ran(rows)
    report["problems"] = list(report.get("problems", [])) + failed + ([nothing] if nothing else [])
    report["status"] = "failed" if report["problems"] else "ok"
    if out is not None:
        write_reports(Path(out), report, force=force)
    return report
