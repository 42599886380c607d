"""Bare timing loops shared by the benchmark scripts that compare speeds: one ONNX Runtime session / LiteRT
interpreter per file, 1 thread, float32 batch in → float32 scores out, p50 of ``perf_counter_ns`` around each call.

Every model of a table is timed interleaved in one process (models take turns in blocks of 10 calls),
so a ratio between two rows compares them under the same machine load. Input quantization of an integer-I/O
TFLite model is inside the timed region (none of edgekit's models has integer I/O by default).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def ort_predict(path: str | Path, threads: int = 1) -> Predict:
    """A bare ``session.run`` closure on the CPU provider (default graph optimizations)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: x})[0]

    return run


def litert_predict(path: str | Path, batch: int, threads: int = 1) -> Predict:
    """A bare ``set_tensor / invoke / get_tensor`` closure (default XNNPACK delegate), sized for ``batch``."""
    from ai_edge_litert.interpreter import Interpreter

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    it = Interpreter(model_path=str(path), num_threads=threads)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    out = it.get_output_details()[0]
    in_q = inp["quantization"] if inp["dtype"] != np.float32 else None
    out_q = out["quantization"] if out["dtype"] != np.float32 else None

    def run(x: np.ndarray) -> np.ndarray:
        if in_q is not None:
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / in_q[0] + in_q[1]), info.min, info.max).astype(inp["dtype"])
        it.set_tensor(inp["index"], x)
        it.invoke()
        y = it.get_tensor(out["index"])
        return (y.astype(np.float32) - out_q[1]) * out_q[0] if out_q is not None else y

    return run


def predictor(path: str | Path, batch: int) -> Predict:
    return ort_predict(path) if str(path).endswith(".onnx") else litert_predict(path, batch)


def p50_us(fn: Predict, x: np.ndarray, runs: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn(x)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn(x)
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e3


def interleaved(paths: dict[str, Path], batches: tuple[int, ...] = (1, 32), repeats: int = 3,
                runs: dict[int, int] | None = None, seed: int = 0, block: int = 10,
                shape: tuple[int, ...] = (28, 28, 1)) -> dict[tuple[str, int], list[float]]:
    """p50 (µs) of every model (input ``shape`` per image) at every batch size, ``repeats`` times, interleaved in
    this process.

    Within a repeat the models take turns in blocks of ``block`` calls until each has ``runs[batch]``
    samples, so every model's samples are spread over the same stretch of time: on a machine shared
    with other jobs, a load change hits all rows alike instead of whichever model ran then.
    Returns {(name, batch): [p50 of repeat 1, 2, …]}.
    """
    runs = runs or {1: 400, 32: 60}
    rng = np.random.default_rng(seed)
    result: dict[tuple[str, int], list[float]] = {}
    for batch in batches:
        x = rng.random((batch, *shape), dtype=np.float32)
        fns = {name: predictor(p, batch) for name, p in paths.items()}
        for fn in fns.values():
            for _ in range(20):
                fn(x)
        n = runs.get(batch, 100)
        for _ in range(repeats):
            samples: dict[str, list[int]] = {name: [] for name in fns}
            for _ in range(-(-n // block)):
                for name, fn in fns.items():
                    for _ in range(block):
                        t0 = time.perf_counter_ns()
                        fn(x)
                        samples[name].append(time.perf_counter_ns() - t0)
            for name, s in samples.items():
                result.setdefault((name, batch), []).append(statistics.median(s) / 1e3)
        del fns
    return result


def ratios(times: dict[tuple[str, int], list[float]], slow: str, fast: str, batch: int) -> list[float]:
    """Per-repeat speed-up of ``fast`` over ``slow`` (slow p50 ÷ fast p50), from the same round."""
    return [a / b for a, b in zip(times[(slow, batch)], times[(fast, batch)])]


def scores(path: str | Path, x: np.ndarray, batch: int = 250) -> np.ndarray:
    """A model file's outputs over ``x`` (ONNX Runtime or LiteRT, float32 in), ``batch`` images per call."""
    out = []
    fn = predictor(path, batch)
    for i in range(0, len(x), batch):
        chunk = x[i:i + batch]
        n = len(chunk)
        if n < batch:  # LiteRT interpreters are sized for one batch: pad the last chunk
            chunk = np.concatenate([chunk, np.zeros((batch - n, *x.shape[1:]), x.dtype)])
        out.append(np.asarray(fn(chunk)).reshape(batch, -1)[:n])
    return np.concatenate(out)


def top1(path: str | Path, x: np.ndarray, batch: int = 250) -> np.ndarray:
    """Top-1 predictions of a model file over ``x`` (ONNX Runtime or LiteRT, float32 in)."""
    return scores(path, x, batch).argmax(1)


def spread(values: list[float]) -> str:
    """median (min–max) of a list of ratios."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def ort_profile(path: str | Path, batch: int, shape: tuple[int, ...] = (28, 28, 1),
                runs: int = 300) -> tuple[list[tuple[str, float]], list[str]]:
    """(op type, median kernel µs) per node from ONNX Runtime's profiler (``enable_profiling``, 1 thread, ``runs``
    runs at ``batch``), and the op types of the graph ORT runs (``optimized_model_filepath``)."""
    import collections
    import json
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as d:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(d, "p")
        so.optimized_model_filepath = os.path.join(d, "opt.onnx")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
        for _ in range(runs):
            sess.run(None, {sess.get_inputs()[0].name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
        graph = [n.op_type for n in onnx.load(os.path.join(d, "opt.onnx")).graph.node]
    per: dict[str, list[float]] = collections.defaultdict(list)
    op_of: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per[e["name"]].append(e["dur"])
            op_of[e["name"]] = e["args"]["op_name"]
    return [(op_of[n], statistics.median(v)) for n, v in per.items()], graph

