"""What this machine has: CPU model and flags, ONNX Runtime providers, an NVIDIA GPU."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path

GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None when it is not installed (or its metadata is
    unreadable)."""
    from importlib.metadata import version

    try:
        return version(dist)
    except Exception:  # noqa: BLE001 - any metadata problem means "not installed" here
        return None


def machine() -> str:
    """This machine's architecture, spelled as device profiles spell it (``x86_64``, ``aarch64``)."""
    return platform.machine().replace("arm64", "aarch64").replace("AMD64", "x86_64")


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
    """An NVIDIA device node or ``nvidia-smi`` is present."""
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None
