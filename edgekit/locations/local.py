"""This machine: the runner runs in a subprocess of this Python, so every target is measured the same way."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from edgekit.fsutil import write_json
from edgekit.locations.base import Location
from edgekit.locations.process import run_and_read
from edgekit.runtime.archive import runner_archive
from edgekit.runtime.host import GPU_PROVIDERS, cpu_flags, has_nvidia_gpu, machine, ort_providers


class LocalLocation(Location):
    """Benchmarks on this machine's CPU/GPU."""

    kind = "local"
    host_paths = True

    def unavailable_reason(self, probe: bool = True) -> str | None:
        target = self.target
        here = machine()
        if target.arch != here:
            return f"needs an {target.arch} CPU, this machine is {here}"
        missing = [f for f in target.requires_cpu_flags if f not in cpu_flags()]
        if missing:
            return f"this CPU lacks {', '.join(missing)}"
        reasons = []
        if target.requires_gpu and not has_nvidia_gpu():
            reasons.append("no NVIDIA GPU on this machine (/dev/nvidia0 and nvidia-smi absent)")
        if "onnxruntime" in target.runtimes:
            have = ort_providers()
            absent = [p for p in target.onnxruntime.providers if p not in have]
            if absent:
                hint = " (pip install 'edgekit[gpu]')" if any(p in GPU_PROVIDERS for p in absent) else ""
                reasons.append(f"{', '.join(absent)} not in this onnxruntime build "
                               f"(has {', '.join(have) or 'none'}){hint}")
        return "; ".join(reasons) or None

    def run(self, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
        """Run the runner with this Python, in a subprocess (``request["timeout_s"]``, default 1 h)."""
        req, res = workdir / "request.json", workdir / "result.json"
        write_json(req, request)
        cmd = [sys.executable, str(runner_archive(workdir)), str(req), str(res)]
        return run_and_read(cmd, res, float(request.get("timeout_s", 3600)))
