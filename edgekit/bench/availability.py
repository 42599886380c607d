"""Can a device profile run from here, and if not, exactly why."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

from edgekit.targets import Target


GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def cpu_flags() -> set[str]:
    """CPU feature flags of this machine (Linux /proc/cpuinfo)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    """This machine's CPU model name (Linux /proc/cpuinfo), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def ort_providers() -> list[str]:
    """Execution providers compiled into the installed onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def has_nvidia_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def _local_reason(target: Target) -> str | None:
    machine = platform.machine().replace("arm64", "aarch64").replace("AMD64", "x86_64")
    if target.arch != machine:
        return f"needs an {target.arch} CPU, this machine is {machine}"
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
            reasons.append(f"{', '.join(absent)} not in this onnxruntime build (has {', '.join(have) or 'none'}){hint}")
    return "; ".join(reasons) or None


def unavailable_reason(target: Target, probe_remote: bool = True) -> str | None:
    """``None`` when ``target`` can run from here, else a one-line reason."""
    if target.location == "local":
        return _local_reason(target)
    if target.location == "qemu":
        from edgekit.bench.emulate import qemu_unavailable_reason

        return qemu_unavailable_reason(target)
    if target.location == "ssh":
        from edgekit.bench.remote import ssh_unavailable_reason

        return ssh_unavailable_reason(target, probe=probe_remote)
    return f"unknown location {target.location!r}"  # pragma: no cover
