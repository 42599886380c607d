"""This machine's GEMM peak: the reference of a benchmark row's "% of peak".

:func:`gemm_peak` times square GEMMs in ONNX Runtime: fp32 (``MatMul``, MLAS' SGEMM) and int8
(``MatMulInteger`` u8 × s8 → s32, MLAS' QGEMM: VNNI or dot-product kernels where the CPU has them).
A row's % of peak = its model's MACs per image × its images/s ÷ the peak of the kernel its precision
runs on (:func:`kernel_for`), on the row's own thread count.

The peak is the best the kernel reaches, so a row can never honestly exceed it:

* several sizes (:data:`SIZES`, all fitting the L2 cache of a current core, so no size is memory-bound), the
  fastest taken; each window's rate comes from its fastest call, not its median (a shared machine only ever
  slows a call down);
* a peak on ``t`` threads is at least ``t`` × the one-thread peak: the cores are alike, and a ``t``-thread GEMM
  timed while other processes hold some of the cores measures the load, not the machine. The first measured
  figure (before this rule) was 55 GMAC/s for both one and two threads, and a batch-32 two-thread row came out
  at 157 % of it.

A theoretical bound from the CPU flags (FMA lanes × FMA units × clock) is not used: the flags name the vector
width but not the number of FMA units, and under a hypervisor the clock is unknown (no cpufreq; ``cpu MHz`` is
the nominal clock, below the boost clock MLAS actually runs at, so the "bound" comes out under the measured rate).

The runner (:mod:`edgekit.runtime.runner`) measures it where the rows run (this machine, under qemu,
on a board over SSH), with each row's thread count. A measurement costs a second or two; it is kept
in ``peak.json`` in edgekit's cache folder of that machine (``$EDGEKIT_CACHE_DIR``, else
``~/.cache/edgekit``), keyed by machine, CPU, thread count, onnxruntime version and :data:`METHOD`, so it runs once.

Like every module of this package it imports only the standard library, NumPy and onnxruntime
(the GEMM models are serialised here, without the ``onnx`` package, which boards may lack).
"""

from __future__ import annotations

import functools
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.runtime.host import cpu_model

METHOD = "ort-gemm-v2"
"""Names how the peak is measured; part of the cache key (a new method measures again)."""
SIZES = (128, 256, 384)
"""M = K = N of the timed GEMMs: large enough for MLAS' packed kernels, within a core's L2, small enough for qemu."""
SIZE = 256  # the size a quick single measurement uses
KERNELS = {"fp32": "MatMul", "int8": "MatMulInteger"}
"""Peak kernel → the ONNX op timed for it."""
CACHE_FILE = "peak.json"
CPU_PROVIDERS = ("CPUExecutionProvider", "XNNPACK", "CPU")
"""Providers/delegates that run on the CPU cores the microbenchmark measures (a GPU row gets no CPU peak)."""


def kernel_for(precision: str | None) -> str:
    """The GEMM kernel a model of ``precision`` runs on: ``int8`` for int8 and mixed files, else ``fp32``."""
    return "int8" if precision in ("int8", "mixed") else "fp32"


def percent_of_peak(macs_per_image: int, images_per_s: float, peak_macs_per_s: float) -> float:
    """How much of the measured peak a model uses: MACs × images/s ÷ peak, in %."""
    return 100.0 * macs_per_image * images_per_s / peak_macs_per_s


def over_peak(percent: float | None) -> bool:
    """Whether a row's % of peak is above 100: impossible for a dense kernel, so a measurement or MAC-count bug
    (or a sparse kernel skipping the zeros the MAC count includes)."""
    return percent is not None and percent > 100.0


# --------------------------------------------------------------------------- an ONNX GEMM without onnx
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _bytes(field: int, data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return _varint(field << 3 | 2) + _varint(len(raw)) + raw


_DTYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.int32): 6}
"""NumPy dtype → ONNX TensorProto.DataType."""


def _value_info(name: str, dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    dims = b"".join(_bytes(1, _int(1, d)) for d in shape)  # TensorShapeProto.dim{dim_value}
    tensor_type = _int(1, _DTYPES[dtype]) + _bytes(2, dims)  # TypeProto.Tensor{elem_type, shape}
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))  # ValueInfoProto{name, type{tensor_type}}


def gemm_model(op: str, a_dtype: Any, b: np.ndarray, out_dtype: Any, m: int) -> bytes:
    """A serialised ONNX model ``Y = op(A, B)`` with ``A`` [m, K] an input and ``B`` a constant [K, N]."""
    k, n = b.shape
    init = (b"".join(_int(1, d) for d in b.shape) + _int(2, _DTYPES[b.dtype]) + _bytes(8, "B")
            + _bytes(9, np.ascontiguousarray(b).tobytes()))  # TensorProto{dims, data_type, name, raw_data}
    node = _bytes(1, "A") + _bytes(1, "B") + _bytes(2, "Y") + _bytes(3, "gemm") + _bytes(4, op)
    graph = (_bytes(1, node) + _bytes(2, "peak") + _bytes(5, init)
             + _bytes(11, _value_info("A", np.dtype(a_dtype), (m, k)))
             + _bytes(12, _value_info("Y", np.dtype(out_dtype), (m, n))))
    opset = _bytes(1, "") + _int(2, 13)
    return _int(1, 8) + _bytes(2, "edgekit") + _bytes(7, graph) + _bytes(8, opset)  # ir_version 8, opset 13


def _feed(kernel: str, size: int) -> tuple[bytes, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    if kernel == "fp32":
        b = rng.standard_normal((size, size)).astype(np.float32)
        a = rng.standard_normal((size, size)).astype(np.float32)
        return gemm_model("MatMul", np.float32, b, np.float32, size), {"A": a}
    b8 = rng.integers(-127, 128, (size, size), dtype=np.int8)
    a8 = rng.integers(0, 256, (size, size), dtype=np.uint8)
    return gemm_model("MatMulInteger", np.uint8, b8, np.int32, size), {"A": a8}


# --------------------------------------------------------------------------- timing
def _best_rate(run: Callable[[], Any], macs: int, windows: int, min_runs: int, min_seconds: float) -> float:
    """MAC/s of the fastest call over ``windows`` windows (each >= ``min_runs`` calls and ``min_seconds``)."""
    for _ in range(2):
        run()
    rates = []
    for _ in range(windows):
        samples: list[int] = []
        deadline = time.perf_counter_ns() + int(min_seconds * 1e9)
        while len(samples) < min_runs or time.perf_counter_ns() < deadline:
            t0 = time.perf_counter_ns()
            run()
            samples.append(time.perf_counter_ns() - t0)
        rates.append(macs / (min(samples) / 1e9))
    return max(rates)


def measure_peak(threads: int, size: int | tuple[int, ...] = SIZES, windows: int = 3, min_runs: int = 5,
                 min_seconds: float = 0.05) -> dict[str, float]:
    """{"fp32": MAC/s, "int8": MAC/s}: the fastest size³ GEMM of ``size`` in ONNX Runtime on ``threads`` threads
    (not cached; no one-thread floor, see :func:`gemm_peak`)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    out: dict[str, float] = {}
    for kernel in KERNELS:
        for n in (size,) if isinstance(size, int) else size:
            model, feed = _feed(kernel, n)
            sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
            rate = _best_rate(functools.partial(sess.run, None, feed), n ** 3, windows, min_runs, min_seconds)
            out[kernel] = max(out.get(kernel, 0.0), rate)
    return out


# --------------------------------------------------------------------------- cache
def cache_path() -> Path:
    """``peak.json`` in edgekit's cache folder of this machine (``$EDGEKIT_CACHE_DIR``, else ``~/.cache/edgekit``)."""
    root = os.environ.get("EDGEKIT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "edgekit")
    return Path(root) / CACHE_FILE


def _cpu() -> str:
    """The CPU's model name, else (ARM) its implementer and part, else what ``platform`` says."""
    name = cpu_model()
    if name:
        return name
    try:
        fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in
                                                      Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)}
        part = " ".join(fields.get(k, "") for k in ("CPU implementer", "CPU part")).strip()
        return f"arm {part}" if part else ""
    except OSError:
        return ""


def cache_key(threads: int) -> str:
    """Host, architecture, CPU, threads, onnxruntime version and method: what a cached peak holds for."""
    import onnxruntime as ort

    return "|".join((platform.node(), platform.machine(), _cpu(), f"{threads} threads",
                     f"onnxruntime {ort.__version__}", METHOD))


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, key: str, value: dict[str, float]) -> None:
    """Add one entry (atomically: a temporary file renamed over the old one); a read-only cache is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**_read_cache(path), key: value}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass


def gemm_peak(threads: int, *, cache: Path | None = None) -> dict[str, float]:
    """{"fp32": MAC/s, "int8": MAC/s} on ``threads`` threads, from the cache when measured before.

    On more than one thread each figure is at least ``threads`` × the one-thread peak (the cores are alike; a
    multi-thread GEMM on a shared machine measures the other processes too). Raises ImportError when
    onnxruntime is not installed (nothing to measure with).
    """
    path = cache or cache_path()
    key = cache_key(threads)
    hit = _read_cache(path).get(key)
    if isinstance(hit, dict) and all(isinstance(hit.get(k), (int, float)) and hit[k] > 0 for k in KERNELS):
        return {k: float(hit[k]) for k in KERNELS}
    value = measure_peak(threads)
    if threads > 1:
        one = gemm_peak(1, cache=path)
        value = {k: max(value[k], threads * one[k]) for k in KERNELS}
    _write_cache(path, key, value)
    return value


def row_peak(precision: str | None, threads: int, provider: str | None = None, *,
             cache: Path | None = None) -> dict[str, Any]:
    """The peak fields of one benchmark row: ``peak_gmacs`` and ``peak_kernel``, or ``peak_reason`` when not
    measured."""
    kernel = kernel_for(precision)
    if provider is not None and provider not in CPU_PROVIDERS:
        return {"peak_kernel": kernel, "peak_gmacs": None,
                "peak_reason": f"no GEMM peak for {provider}: the microbenchmark measures the CPU cores"}
    try:
        peak = gemm_peak(threads, cache=cache)
    except ImportError as e:
        return {"peak_kernel": kernel, "peak_gmacs": None,
                "peak_reason": f"no GEMM peak: onnxruntime is not installed ({e})"}
    except Exception as e:  # noqa: BLE001 - the runner's boundary: a failed microbenchmark leaves the cell empty
        first = str(e).splitlines()[0] if str(e) else ""
        return {"peak_kernel": kernel, "peak_gmacs": None, "peak_reason": f"no GEMM peak: {type(e).__name__}: {first}"}
    return {"peak_kernel": kernel, "peak_gmacs": peak[kernel] / 1e9}  # no peak_reason: a typed row omits it empty
