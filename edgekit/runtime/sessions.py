"""Inference sessions: one model file opened with one runtime, float32 batch in, float32 scores out.

A session has ``runtime``, ``version``, ``providers`` (what the session really uses, not what was
asked for), ``fixed_batch`` (``None`` when the batch axis is free), ``predict(x)`` and
``node_share()`` (the fraction of graph nodes each provider executed). Integer-I/O models are
(de)quantised inside ``predict``, so every artifact is timed the same way.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np


class SessionError(Exception):
    """The model could not be opened with the requested runtime/provider."""


class OnnxSession:
    """An ONNX Runtime session that reports the providers it really uses."""

    runtime = "onnxruntime"

    def __init__(self, model: str, threads: int, providers: list[str] | None = None,
                 provider_options: dict[str, dict[str, Any]] | None = None, strict: bool = False,
                 profile_dir: str | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise SessionError(f"onnxruntime is not installed for {sys.executable} ({e})") from None
        providers = list(providers or ["CPUExecutionProvider"])
        provider_options = provider_options or {}
        self.version = ort.__version__
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing and strict:
            raise SessionError(f"provider(s) {', '.join(missing)} not in this onnxruntime build "
                               f"(has {', '.join(available)})")
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
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SessionError(f"onnxruntime could not create a session: {first}") from None
        self.providers = list(self.sess.get_providers())
        inputs = self.sess.get_inputs()
        if not inputs:
            raise SessionError("onnxruntime could not create a session: the model has no inputs")
        inp = inputs[0]
        self.input_name = inp.name
        self.input_dtype = np.float32
        self.fixed_batch = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) else None

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
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert " + getattr(ai_edge_litert, "__version__", "")
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # older boards

        return Interpreter, "tflite-runtime"
    except ImportError as e:
        raise SessionError(
            f"neither ai-edge-litert nor tflite-runtime is installed for {sys.executable} ({e})") from None


class LiteRTSession:
    """A LiteRT interpreter; reports whether the XNNPACK delegate took the graph."""

    runtime = "litert"

    def __init__(self, model: str, threads: int, **_: Any) -> None:
        cls, self.version = _litert_interpreter_class()
        try:
            self.interp = cls(model_path=model, num_threads=threads)
        except Exception as e:  # LiteRT raises ValueError/RuntimeError for unreadable flatbuffers
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SessionError(f"LiteRT could not load the model: {first}") from None
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
"""Runtime name → session class (the one runtimes table; a format handler names its runtime)."""


def open_session(runtime: str, model: str, threads: int, **options: Any) -> Any:
    """Open ``model`` with ``runtime`` (a key of :data:`SESSIONS`); raises :class:`SessionError`."""
    if runtime not in SESSIONS:
        raise SessionError(f"unknown runtime {runtime!r} (known: {', '.join(SESSIONS)})")
    return SESSIONS[runtime](model, threads=threads, **options)
