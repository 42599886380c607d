"""This machine's measured GEMM throughput on one thread: fp32 (ONNX Runtime MatMul, and NumPy) and
int8 (ONNX Runtime MatMulInteger, u8 × s8 → s32: MLAS' VNNI kernel where the CPU has it).

``peak_macs_per_s()`` is the reference for a "% of peak" figure: a model's MACs × its measured
throughput (images/s) ÷ the peak of its precision. It belongs in the runtime/host-probing leaf
package (edgekit/runtime/, owned by FORMATS) once that exists; it lives here until then.

    python benchmarks/_peak.py          # prints the figures
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np


def _session(model: Any) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _gemm_model(op: str, m: int, k: int, n: int) -> tuple[Any, dict[str, np.ndarray]]:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if op == "MatMul":
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        node = helper.make_node("MatMul", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.FLOAT, TensorProto.FLOAT
    else:
        a = rng.integers(0, 255, (m, k), dtype=np.uint8)
        b = rng.integers(-127, 127, (k, n), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
    graph = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("A", a_type, [m, k])],
                              [helper.make_tensor_value_info("Y", y_type, [m, n])], [numpy_helper.from_array(b, "B")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), {"A": a}


def _best_rate(run: Any, macs: int, repeats: int, runs: int) -> float:
    """MAC/s of the fastest repeat (p50 of ``runs`` calls each): the peak the machine reached."""
    for _ in range(5):
        run()
    rates = []
    for _ in range(repeats):
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            run()
            samples.append(time.perf_counter_ns() - t0)
        rates.append(macs / (statistics.median(samples) / 1e9))
    return max(rates)


def peak_macs_per_s(size: int = 512, repeats: int = 5, runs: int = 20) -> dict[str, float]:
    """{"fp32": MAC/s, "int8": MAC/s, "fp32_numpy": MAC/s} of a size³ GEMM on one thread."""
    macs = size ** 3
    out: dict[str, float] = {}
    for key, op in (("fp32", "MatMul"), ("int8", "MatMulInteger")):
        model, feed = _gemm_model(op, size, size, size)
        sess = _session(model)
        out[key] = _best_rate(lambda: sess.run(None, feed), macs, repeats, runs)
    try:  # NumPy's BLAS on one thread, for comparison (threadpoolctl is a scikit-learn dependency)
        from threadpoolctl import threadpool_limits

        a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
        with threadpool_limits(1):
            out["fp32_numpy"] = _best_rate(lambda: a @ a, macs, repeats, runs)
    except ImportError:
        pass
    return out


def percent_of_peak(macs_per_image: int, images_per_s: float, peak: float) -> float:
    """How much of the measured peak a model uses: MACs × throughput ÷ peak, in %."""
    return 100.0 * macs_per_image * images_per_s / peak


if __name__ == "__main__":
    for k, v in peak_macs_per_s().items():
        print(f"{k}: {v / 1e9:.1f} GMAC/s")
