"""The device-side benchmark runner: time and evaluate one model file, request in, JSON out.

It runs on this machine (in a subprocess, so every target is measured the same way and the
peak RSS is that of the benchmark process alone), under qemu, and on boards over SSH. It
imports the standard library, NumPy, the runtime it measures and :mod:`edgekit.runtime` only;
:func:`edgekit.runtime.archive.runner_archive` packs them into one ``.pyz`` file for the trip.

Usage: ``python edgekit-runner.pyz REQUEST.json [RESULT.json]``; the request names the model,
an ``.npz`` with ``x`` (float32 NHWC in [0, 1]), ``y`` and optionally ``ref`` (the parent's
top-1), and the cells to measure. The result is JSON.

Each ``ok`` row on the CPU also gets this machine's GEMM peak for its thread count and the kernel of the
request's ``precision`` (:func:`edgekit.runtime.peak.row_peak`: ``peak_gmacs``, ``peak_kernel``,
``peak_reason``), measured after the timed cells (cached per machine); ``"peak": false`` skips it.

Timed region: float32 batch in → float32 scores out. For models with integer I/O the
(de)quantisation of input/output is inside the timed region, so every artifact is timed the same way.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from typing import Any

import numpy as np

from edgekit.runtime.measure import peak_rss_mb, predict_all, time_cell
from edgekit.runtime.peak import row_peak
from edgekit.runtime.sessions import SESSIONS, SessionError, open_session

RUNNER_VERSION = 4


def environment() -> dict[str, Any]:
    """What the runner ran on (reported with every result)."""
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "runner_version": RUNNER_VERSION,
    }


def _reason(e: Exception) -> str:
    if isinstance(e, SessionError):
        return str(e)
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def run_request(req: dict[str, Any]) -> dict[str, Any]:
    """Measure every (batch, threads) cell of one model with one runtime configuration."""
    runtime = req["runtime"]
    if runtime not in SESSIONS:
        return {"error": f"unknown runtime {runtime!r}", "rows": []}
    data = np.load(req["data"], allow_pickle=False)
    x = np.ascontiguousarray(data["x"], dtype=np.float32)
    y = data["y"].astype(np.int64)
    ref = data["ref"].astype(np.int64) if "ref" in data.files else None
    providers = req.get("providers", ["CPUExecutionProvider"])
    options = {"providers": providers, "provider_options": req.get("provider_options", {}),
               "strict": bool(req.get("strict", False))}
    timing = req.get("timing", {})
    rows: list[dict[str, Any]] = []
    base = {"runtime": runtime, "requested_providers": providers if runtime == "onnxruntime" else []}
    cores = os.cpu_count() or 1
    thread_counts = list(dict.fromkeys(t or cores for t in req["threads"]))  # 0 = all cores of this machine
    eval_threads = max(thread_counts)
    # One session (all threads, profiling on) for accuracy and node shares.
    try:
        with tempfile.TemporaryDirectory() as prof:
            sess = open_session(runtime, req["model"], eval_threads, profile_dir=prof, **options)
            sess.predict(x[:1] if not sess.fixed_batch else x[: sess.fixed_batch])
            node_share = sess.node_share()
            preds, _ = predict_all(sess.predict, x, batch=max(req["batch_sizes"]), fixed_batch=sess.fixed_batch)
    except Exception as e:  # noqa: BLE001 - the runner's boundary: any runtime failure becomes failed rows
        return {"rows": [{**base, "status": "failed", "reason": _reason(e), "batch_size": b, "threads": t}
                         for b in req["batch_sizes"] for t in thread_counts], "env": environment()}
    accuracy = float((preds == y).mean())
    agreement = float((preds == ref).mean()) if ref is not None else None
    for threads in thread_counts:
        try:
            t0 = time.perf_counter_ns()
            s = open_session(runtime, req["model"], threads, **options)
            create_ms_t = (time.perf_counter_ns() - t0) / 1e6
            first = x[: s.fixed_batch or 1]
            t0 = time.perf_counter_ns()
            s.predict(first if len(first) == (s.fixed_batch or 1) else np.resize(first, (s.fixed_batch, *x.shape[1:])))
            first_ms = (time.perf_counter_ns() - t0) / 1e6  # first inference of a fresh session, before warm-up
        except SessionError as e:
            rows += [{**base, "status": "failed", "reason": str(e), "batch_size": b, "threads": threads}
                     for b in req["batch_sizes"]]
            continue
        for batch in req["batch_sizes"]:
            row = {**base, "batch_size": batch, "threads": threads, "providers": s.providers,
                   "provider": _ran_provider(node_share, s.providers), "node_share": node_share,
                   "runtime_version": s.version, "session_create_ms": create_ms_t,
                   "first_inference_ms": first_ms, "accuracy": accuracy, "top1_agreement": agreement,
                   "eval_samples": int(len(x))}
            if s.fixed_batch and s.fixed_batch != batch:
                rows.append({**row, "status": "skipped", "reason": f"model has a fixed batch size of {s.fixed_batch}"})
                continue
            n = max(1, len(x) // batch)
            batches = [x[i * batch : (i + 1) * batch] for i in range(min(n, 64))]
            if len(batches[0]) < batch:  # fewer samples than the batch: tile
                reps = -(-batch // len(x))
                batches = [np.ascontiguousarray(np.concatenate([x] * reps)[:batch])]
            cell = time_cell(s.predict, batches, warmup_runs=int(timing.get("warmup_runs", 10)),
                             min_runs=int(timing.get("min_runs", 200)),
                             min_seconds=float(timing.get("min_seconds", 1.0)),
                             max_seconds=float(timing.get("max_seconds", 30.0)))
            rows.append({**row, **cell, "status": "ok", "reason": ""})
        del s
    peak = peak_rss_mb()
    for r in rows:
        r["peak_rss_mb"] = peak
    if req.get("peak", True):  # after the timed cells, so the microbenchmark never disturbs them
        ok = [r for r in rows if r["status"] == "ok"]
        cells = dict.fromkeys((r["threads"], r["provider"]) for r in ok)
        gemm = {(t, p): row_peak(req.get("precision"), t, p) for t, p in cells}
        for r in ok:
            r.update(gemm[(r["threads"], r["provider"])])
    return {"rows": rows, "env": environment(),
            "predictions": preds.tolist() if req.get("return_predictions") else None}


def _ran_provider(node_share: dict[str, float], providers: list[str]) -> str:
    """The provider that executed most nodes (from the profile), else the session's first provider."""
    if node_share:
        return max(node_share.items(), key=lambda kv: kv[1])[0]
    return providers[0] if providers else ""


def main(argv: list[str]) -> int:
    """``runner REQUEST.json [RESULT.json]``: write the result JSON (atomically) or print it."""
    if len(argv) < 2:
        print("usage: edgekit-runner.pyz REQUEST.json [RESULT.json]", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        req = json.load(f)
    result = run_request(req)
    text = json.dumps(result, allow_nan=True)
    if len(argv) > 2:
        tmp = argv[2] + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, argv[2])
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
