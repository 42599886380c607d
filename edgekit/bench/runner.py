"""Self-contained benchmark runner: time and evaluate one model file.

This file is copied as-is to emulated and remote machines (a Raspberry Pi, a
Jetson, the qemu ARM64 sysroot), so it imports nothing but the standard
library, NumPy and the runtime it measures (``onnxruntime`` or
``ai_edge_litert``/``tflite_runtime``). Local benchmarks run it in a
subprocess too, so every target is measured the same way and the peak RSS is
that of the benchmark process alone.

Usage: ``python runner.py REQUEST.json [RESULT.json]``; the request names the
model, an ``.npz`` with ``x`` (float32 NHWC in [0, 1]), ``y`` and optionally
``ref`` (the parent's top-1), and the cells to measure. The result is JSON.

Timed region: float32 batch in → float32 scores out. For models with integer
I/O the (de)quantisation of input/output is inside the timed region, so every
artifact is timed the same way.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

RUNNER_VERSION = 2


# --------------------------------------------------------------------------- sessions


class SessionError(Exception):
    """The model could not be opened with the requested runtime/provider."""


class OnnxSession:
    """An ONNX Runtime session that reports the providers it really uses."""

    runtime = "onnxruntime"

    def __init__(self, model: str, threads: int, providers: list[str], provider_options: dict[str, dict[str, Any]],
                 strict: bool, profile_dir: str | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise SessionError(f"onnxruntime is not installed for {sys.executable} ({e})") from None
        self.version = ort.__version__
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing and strict:
            raise SessionError(f"provider(s) {', '.join(missing)} not in this onnxruntime build (has {', '.join(available)})")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        if strict:
            so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        if profile_dir:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(profile_dir, "ort_profile")
        opts = [provider_options.get(p, {}) for p in providers]
        try:
            self.sess = ort.InferenceSession(model, sess_options=so, providers=providers, provider_options=opts)
        except Exception as e:  # onnxruntime raises its own Fail/RuntimeException types
            raise SessionError(f"onnxruntime could not create a session: {str(e).splitlines()[0]}") from None
        self.providers = list(self.sess.get_providers())
        inp = self.sess.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float32
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.sess.run(None, {self.input_name: x})[0]

    def node_share(self) -> dict[str, float]:
        """Fraction of graph nodes each provider executed, from ONNX Runtime's profile."""
        path = self.sess.end_profiling()
        try:
            with open(path) as f:
                events = json.load(f)
        finally:
            try:
                os.remove(path)
            except OSError:
                pass
        nodes: dict[str, str] = {}
        for ev in events:
            if ev.get("cat") == "Node" and "provider" in ev.get("args", {}):
                nodes[ev["name"].rsplit("_kernel_time", 1)[0]] = ev["args"]["provider"]
        if not nodes:
            return {}
        counts: dict[str, int] = {}
        for prov in nodes.values():
            counts[prov] = counts.get(prov, 0) + 1
        return {p: round(c / len(nodes), 4) for p, c in sorted(counts.items())}


def _litert_interpreter_class() -> tuple[Any, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter

        import ai_edge_litert

        return Interpreter, "ai-edge-litert " + getattr(ai_edge_litert, "__version__", "")
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # older boards

        return Interpreter, "tflite-runtime"
    except ImportError as e:
        raise SessionError(f"neither ai-edge-litert nor tflite-runtime is installed for {sys.executable} ({e})") from None


class LiteRTSession:
    """A LiteRT interpreter; reports whether the XNNPACK delegate took the graph."""

    runtime = "litert"

    def __init__(self, model: str, threads: int, **_: Any) -> None:
        cls, self.version = _litert_interpreter_class()
        try:
            self.interp = cls(model_path=model, num_threads=threads)
        except Exception as e:
            raise SessionError(f"LiteRT could not load the model: {str(e).splitlines()[0]}") from None
        self._batch = 0
        self.input_dtype = np.float32
        self.fixed_batch = None
        self._prepare(1)
        # After allocation, a delegate that took part of the graph shows up as DELEGATE nodes.
        ops = self.interp._get_ops_details() if hasattr(self.interp, "_get_ops_details") else []
        self._delegates = sum(1 for op in ops if op.get("op_name") == "DELEGATE")
        self.providers = ["XNNPACK", "CPU"] if self._delegates else ["CPU"]

    def _prepare(self, batch: int) -> None:
        if batch != self._batch:
            inp = self.interp.get_input_details()[0]
            self.interp.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
            self.interp.allocate_tensors()
            self._in = self.interp.get_input_details()[0]
            self._out = self.interp.get_output_details()[0]
            self._in_q = self._in["quantization"] if self._in["dtype"] != np.float32 else None
            self._out_q = self._out["quantization"] if self._out["dtype"] != np.float32 else None
            self._batch = batch

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._prepare(len(x))
        if self._in_q is not None:
            scale, zero = self._in_q
            info = np.iinfo(self._in["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self._in["dtype"])
        self.interp.set_tensor(self._in["index"], x)
        self.interp.invoke()
        y = self.interp.get_tensor(self._out["index"])
        if self._out_q is not None:
            scale, zero = self._out_q
            y = (y.astype(np.float32) - zero) * scale
        return y

    def node_share(self) -> dict[str, float]:
        """LiteRT does not say which nodes a delegate took; report the delegate's presence only."""
        return {"XNNPACK": 1.0} if self._delegates else {"CPU": 1.0}


SESSIONS: dict[str, Callable[..., Any]] = {"onnxruntime": OnnxSession, "litert": LiteRTSession}


# --------------------------------------------------------------------------- timing


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank-interpolated percentile of an ascending list."""
    if not sorted_ms:
        return float("nan")
    k = (len(sorted_ms) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (k - lo)


def time_cell(predict: Callable[[np.ndarray], np.ndarray], batches: list[np.ndarray], *, warmup_runs: int,
              min_runs: int, min_seconds: float, max_seconds: float) -> dict[str, Any]:
    """Warm up, then time ``predict`` for at least ``min_runs`` runs *and* ``min_seconds`` (capped by ``max_seconds``)."""
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


def evaluate(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, batch: int,
             fixed_batch: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 predictions and scores over all of ``x``."""
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
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024.0 if sys.platform != "darwin" else ru / (1024.0 * 1024.0)


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "runner_version": RUNNER_VERSION,
    }


# --------------------------------------------------------------------------- request


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
    strict = bool(req.get("strict", False))
    opts = req.get("provider_options", {})
    timing = req.get("timing", {})
    rows: list[dict[str, Any]] = []
    base = {"runtime": runtime, "requested_providers": providers if runtime == "onnxruntime" else []}
    cores = os.cpu_count() or 1
    thread_counts = list(dict.fromkeys(t or cores for t in req["threads"]))  # 0 = all cores of this machine
    eval_threads = max(thread_counts)
    # One session (all threads, profiling on) for accuracy and node shares.
    try:
        with tempfile.TemporaryDirectory() as prof:
            sess = SESSIONS[runtime](req["model"], threads=eval_threads, providers=providers, provider_options=opts,
                                     strict=strict, profile_dir=prof)
            sess.predict(x[:1] if not sess.fixed_batch else x[: sess.fixed_batch])
            node_share = sess.node_share()
            preds, _ = evaluate(sess.predict, x, y, batch=max(req["batch_sizes"]), fixed_batch=sess.fixed_batch)
    except Exception as e:  # noqa: BLE001 - the runner's boundary: any runtime failure becomes failed rows
        reason = str(e) if isinstance(e, SessionError) else f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return {"rows": [{**base, "status": "failed", "reason": reason, "batch_size": b, "threads": t}
                         for b in req["batch_sizes"] for t in thread_counts], "env": environment()}
    accuracy = float((preds == y).mean())
    agreement = float((preds == ref).mean()) if ref is not None else None
    for threads in thread_counts:
        try:
            t0 = time.perf_counter_ns()
            s = SESSIONS[runtime](req["model"], threads=threads, providers=providers, provider_options=opts, strict=strict)
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
                             min_runs=int(timing.get("min_runs", 200)), min_seconds=float(timing.get("min_seconds", 1.0)),
                             max_seconds=float(timing.get("max_seconds", 30.0)))
            rows.append({**row, **cell, "status": "ok", "reason": ""})
        del s
    peak = peak_rss_mb()
    for r in rows:
        r["peak_rss_mb"] = peak
    return {"rows": rows, "env": environment(), "predictions": preds.tolist() if req.get("return_predictions") else None}


def _ran_provider(node_share: dict[str, float], providers: list[str]) -> str:
    """The provider that executed most nodes (from the profile), else the session's first provider."""
    if node_share:
        return max(node_share.items(), key=lambda kv: kv[1])[0]
    return providers[0] if providers else ""


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: runner.py REQUEST.json [RESULT.json]", file=sys.stderr)
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
