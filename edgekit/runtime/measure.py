"""Timing and batched prediction: at least N runs *and* T seconds, percentiles, never just a mean."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank-interpolated percentile of an ascending list."""
    if not sorted_ms:
        return float("nan")
    k = (len(sorted_ms) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (k - lo)


def time_cell(predict: Callable[[np.ndarray], np.ndarray], batches: list[np.ndarray], *, warmup_runs: int,
              min_runs: int, min_seconds: float, max_seconds: float) -> dict[str, Any]:
    """Warm up, then time ``predict`` for at least ``min_runs`` runs *and* ``min_seconds`` (capped by
    ``max_seconds``)."""
    for i in range(warmup_runs):
        predict(batches[i % len(batches)])
    samples: list[int] = []
    start = time.perf_counter_ns()
    deadline_min = start + int(min_seconds * 1e9)
    deadline_max = start + int(max_seconds * 1e9)
    i = 0
    while True:
        t0 = time.perf_counter_ns()
        predict(batches[i % len(batches)])
        t1 = time.perf_counter_ns()
        samples.append(t1 - t0)
        i += 1
        if (len(samples) >= min_runs and t1 >= deadline_min) or t1 >= deadline_max:
            break
    total_s = (time.perf_counter_ns() - start) / 1e9
    ms = sorted(s / 1e6 for s in samples)
    batch = len(batches[0])
    mean = statistics.fmean(ms)
    return {
        "runs": len(ms),
        "seconds": round(total_s, 4),
        "latency_ms": {
            "p50": percentile(ms, 50), "p90": percentile(ms, 90), "p95": percentile(ms, 95),
            "p99": percentile(ms, 99), "mean": mean, "std": statistics.pstdev(ms), "min": ms[0], "max": ms[-1],
        },
        "throughput_per_s": batch * 1000.0 / mean if mean > 0 else float("nan"),
        "min_runs_met": len(ms) >= min_runs,
    }


def predict_all(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int,
                fixed_batch: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 predictions and scores (N × classes) over all of ``x``, ``batch`` samples at a time."""
    step = fixed_batch or batch
    preds, scores = [], []
    for i in range(0, len(x), step):
        chunk = x[i : i + step]
        if fixed_batch and len(chunk) < fixed_batch:  # pad a fixed-batch model's last chunk
            pad = np.zeros((fixed_batch - len(chunk), *chunk.shape[1:]), chunk.dtype)
            out = predict(np.concatenate([chunk, pad]))[: len(chunk)]
        else:
            out = predict(chunk)
        out = np.asarray(out, np.float32).reshape(len(chunk), -1)
        scores.append(out)
        preds.append(out.argmax(axis=1))
    return np.concatenate(preds), np.concatenate(scores)


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MiB."""
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024.0 if sys.platform != "darwin" else ru / (1024.0 * 1024.0)
