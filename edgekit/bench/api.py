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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import interrupts
from edgekit.artifact import Artifact
from edgekit.bench.peak import add_percent_of_peak
from edgekit.console import progress
from edgekit.errors import TargetError
from edgekit.executor import Executor, map_by_key
from edgekit.locations import location_for
from edgekit.locations.base import THIS_MACHINE, Location
from edgekit.report.model import BenchRow
from edgekit.schema import Checked, flag_name, option
from edgekit.targets import RUNTIME_FORMATS, Target

log = logging.getLogger(__name__)

ROW_FIELDS = BenchRow.keys("row")
"""The fields every benchmark row carries (report.json's ``benchmarks``, declared by :class:`BenchRow`); a
microcontroller row (location ``tflm``) also has ``mcu``: the TFLM check and the RAM/flash fit, and no latency."""

CPU_PROVIDER = "CPUExecutionProvider"


@dataclass(frozen=True)
class Timing(Checked):
    """How long each cell is timed: at least ``min_runs`` runs *and* ``min_seconds``. Checked when built
    (finite, in range), so a bad ``bench`` flag fails before any model is loaded, not in the first cell."""

    warmup_runs: int = option(10, ge=0, help="untimed runs first")
    min_runs: int = option(200, ge=1, help="timed runs per cell, at least")
    min_seconds: float = option(1.0, ge=0, help="seconds per cell, at least")
    max_seconds: float = option(30.0, gt=0, help="seconds per cell, at most (stops before min_runs)")

    @classmethod
    def label(cls, f: dataclasses.Field[Any]) -> str:
        return flag_name(f.name)


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


MEASURED = BenchRow.measured_keys()
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


@dataclass
class _Cell:
    """One artifact on one target: the runner's rows and top-1 predictions once it ran."""

    artifact: Artifact
    target: Target
    runtime: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[int] | None = None


def _now() -> str:
    """Wall-clock time in UTC, milliseconds: when a cell started and finished (never a latency figure)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _CellRunner:
    """Runs cells; remembers each target's availability and the boards that stopped answering.

    A target's cells all run in its machine's lane (one thread), so the per-target and per-machine
    state below is only ever touched by one thread.
    """

    def __init__(self, locations: dict[str, Location], x: np.ndarray, y: np.ndarray,
                 references: dict[str, np.ndarray], timing: Timing, strict: bool | None, tmpdir: Path,
                 bar: Any) -> None:
        self.locations, self.x, self.y, self.references = locations, x, y, references
        self.timing, self.strict, self.tmpdir, self.bar = timing, strict, tmpdir, bar
        self.reasons: dict[str, str | None] = {}  # target name -> why it cannot run from here
        self.dropped: dict[str, str] = {}  # machine -> why it stopped answering mid-run

    def machine(self, cell: _Cell) -> str:
        return self.locations[cell.target.name].machine()

    def __call__(self, cell: _Cell) -> None:
        a, t = cell.artifact, cell.target
        self.bar.update(description=f"benchmarking {a.name or a.id} on {t.name}")
        try:
            cell.rows, cell.predictions = self._run(cell)
        except Exception as e:  # one cell's bug or odd error fails its own rows, never the other boards'
            interrupts.check()  # ... unless it is a Ctrl-C/SIGTERM some library swallowed: that stops the run
            reason = f"{type(e).__name__}: {e}"
            log.warning("%s on %s: unexpected error: %s", a.name or a.id, t.name, reason)
            log.debug("%s on %s: traceback", a.name or a.id, t.name, exc_info=True)
            cell.rows, cell.predictions = _blank_rows(a, t, cell.runtime, "failed", reason), None
        finally:
            self.bar.advance()

    def _run(self, cell: _Cell) -> tuple[list[dict[str, Any]], list[int] | None]:
        a, t, runtime = cell.artifact, cell.target, cell.runtime
        where, machine = self.locations[t.name], self.machine(cell)
        if machine in self.dropped:  # checked before probing: a board that went away is not asked again
            return _blank_rows(a, t, runtime, "failed", f"not run: {self.dropped[machine]}"), None
        if t.name not in self.reasons:  # probed in the lane: a fleet's boards are probed at the same time
            self.reasons[t.name] = where.unavailable_reason()
        if self.reasons[t.name]:
            return _blank_rows(a, t, runtime, "skipped", self.reasons[t.name] or ""), None
        work = self.tmpdir / f"{a.id}-{t.name}"
        work.mkdir()
        data: dict[str, Any] = {"x": self.x, "y": self.y}  # Any: mypy checks **data against allow_pickle too
        if a.id in self.references:
            data["ref"] = self.references[a.id]
        np.savez(work / "data.npz", **data)
        started = _now()
        try:
            request = _request(a, runtime, t, work / "data.npz", self.timing, self.strict, where.host_paths)
            result = where.run(request, work)
        except TargetError as e:
            log.warning("%s on %s: %s", a.name or a.id, t.name, e)
            if machine != THIS_MACHINE and not interrupts.received():  # did the board itself go away?
                # Then its other cells are not tried (after Ctrl-C/SIGTERM the board is not asked again)
                gone = where.unavailable_reason()
                if gone:
                    self.dropped[machine] = f"{t.name} stopped answering during this run ({gone})"
                    log.warning("%s: %s", machine, self.dropped[machine])
            rows = _blank_rows(a, t, runtime, "failed", str(e))
            return [{**r, "started": started, "finished": _now()} for r in rows], None
        finished = _now()
        rows = [_provider_truth(_complete({**r, "artifact_id": a.id, "target": t.name, "emulated": t.emulated,
                                           "started": started, "finished": finished}), t)
                for r in result.get("rows", [])]
        return rows, result.get("predictions")


def fleet_executor(targets: Iterable[Target]) -> dict[str, Any]:
    """report.json's ``executor`` for :func:`benchmark`: in this process, one worker per board driven at once."""
    boards = {m for m in (location_for(t).machine() for t in targets) if m != THIS_MACHINE}
    return {**Executor("inprocess").info(), "workers": max(1, len(boards))}


def benchmark(artifacts: Iterable[Artifact], x: np.ndarray, y: np.ndarray, targets: Iterable[Target], *,
              references: dict[str, np.ndarray] | None = None, timing: Timing = Timing(),
              strict: bool | None = None) -> list[dict[str, Any]]:
    """Benchmark every artifact on every target that has a runtime for its format.

    ``references`` maps an artifact id to the top-1 predictions its agreement is measured against
    (``top1_agreement``). Each row also gets ``target_agreement``: the top-1 agreement of the same
    artifact between this target and ``reference_target``, the first target it ran on (e.g. ARM vs x86).
    ``strict`` overrides the profiles' ``onnxruntime.strict`` (session.disable_cpu_ep_fallback).

    Where the cells run: this machine's targets (local, qemu, tflm) one at a time, alone, so their
    timings stay clean; then SSH boards all at the same time, one benchmark per board at a time
    (:func:`edgekit.executor.map_by_key`, keyed by :meth:`Location.machine`). A board that stops
    answering fails its remaining cells (``failed``, with the reason; it is not probed again) and no one
    else's; any other error in a cell fails that cell's rows (``reason``: the exception's type and
    message), never the run; Ctrl-C/SIGTERM stops the run at once (the boards' ssh calls are ended). Rows come
    in artifact × target order whatever order the cells finished in; each ran cell's rows carry
    ``started`` and ``finished`` (UTC).
    """
    artifacts = [a for a in artifacts if a.format in RUNTIME_FORMATS.values()]
    targets = list(targets)
    locations = {t.name: location_for(t) for t in targets}
    cells = [_Cell(a, t, runtime) for a in artifacts for t in targets if (runtime := _runtime_for(a, t))]
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp, progress("benchmarking", len(cells)) as bar:
        run = _CellRunner(locations, x, y, references or {}, timing, strict, Path(tmp), bar)
        for cell in cells:
            if run.machine(cell) == THIS_MACHINE:
                run(cell)
        map_by_key(run, [c for c in cells if run.machine(c) != THIS_MACHINE], key=run.machine)
    rows: list[dict[str, Any]] = []
    first_preds: dict[str, tuple[str, list[int]]] = {}  # artifact id -> (target, predictions), in job order
    for cell in cells:
        if cell.predictions and any(r["status"] == "ok" for r in cell.rows):
            ref_target, ref_preds = first_preds.setdefault(cell.artifact.id, (cell.target.name, cell.predictions))
            for r in cell.rows:
                if r["status"] == "ok":
                    r["reference_target"] = ref_target
                    r["target_agreement"] = _agreement(cell.predictions, ref_preds)
        rows += cell.rows
    return add_percent_of_peak(rows, artifacts)  # MACs per image and % of peak
