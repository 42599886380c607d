"""Device profiles (``devices/*.toml``): where and how a model is benchmarked.

A profile names the runtimes and ONNX Runtime providers to use, thread counts
and batch sizes, the quantization preset that suits the hardware, and where it
runs: ``local``, ``qemu`` (emulated, e.g. ARM64 on x86) or ``ssh`` (a board).
Extra folders of profiles come from ``--devices-dir`` or ``EDGEKIT_DEVICES_DIR``
(``os.pathsep``-separated); a later folder's profile replaces one of the same name.
"""

from __future__ import annotations

import importlib.resources
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgekit.errors import ConfigError, UsageError
from edgekit.formats import runtime_formats
from edgekit.schema import from_mapping, option

CPU_NAME = r"[a-z0-9][a-z0-9+.-]*"
"""A compiler CPU name (``cortex-m4``): handed to ``make`` and GCC, so nothing either would expand or parse as
an option ($, quotes, spaces, a leading dash)."""
HOST_NAME = r"[A-Za-z0-9_\[][A-Za-z0-9_.:%\[\]-]*"
"""A host name or address (IPv6 in brackets allowed); never a leading dash (ssh would read an option)."""
USER_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
QEMU_BINARY = r"(?:(?:/[A-Za-z0-9_.+-]+)*/)?qemu-[A-Za-z0-9_.+-]+"
MAX_THREADS = 1024
MAX_BATCH = 4096
MAX_KB = 1 << 24
"""Largest memory size a microcontroller profile may give, in KiB (16 GiB: anything above is a typo)."""

BUILTIN_PACKAGE = "edgekit.devices"
"""The built-in profiles: the repository's ``devices/`` folder, installed as this package's data."""
DEVICES_ENV = "EDGEKIT_DEVICES_DIR"

Runtime = Literal["onnxruntime", "litert"]
LocationKind = Literal["local", "qemu", "ssh", "tflm"]  # the kinds of edgekit.locations.LOCATIONS
Preset = Literal["avx2", "avx512_vnni", "arm64", "tensorrt"]

RUNTIME_FORMATS: dict[str, str] = runtime_formats()
"""Which model format each runtime executes (derived from :data:`edgekit.formats.FORMATS`)."""


@dataclass(frozen=True)
class OrtOptions:
    providers: tuple[str, ...] = field(default=("CPUExecutionProvider",), metadata={
        "help": "ONNX Runtime execution providers, in priority order"})
    strict: bool = field(default=False, metadata={
        "help": "set session.disable_cpu_ep_fallback: fail instead of running on CPU"})
    provider_options: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={
        "help": "options per provider, e.g. [onnxruntime.provider_options.CUDAExecutionProvider] device_id = 0"})


@dataclass(frozen=True)
class QemuOptions:
    cpu: str = option("neoverse-n1", pattern=CPU_NAME, help="QEMU_CPU model; the sysroot's /proc/cpuinfo must match it")
    sysroot: str = field(default="", metadata={
        "help": "ARM64 sysroot folder (default: the cache folder `edgekit devices setup` fills)"})
    binary: str = option("qemu-aarch64-static", pattern=QEMU_BINARY,
                         help="the qemu-user binary (a qemu-* name or path)")


@dataclass(frozen=True)
class SshOptions:
    host: str = option(pattern=HOST_NAME, help="host name or address of the board")
    user: str = option("", pattern=f"(?:{USER_NAME})?", help="login user (default: ssh's own default)")
    port: int = option(22, ge=1, le=65535, help="ssh port")
    key: str = field(default="", metadata={"help": "private key file"})
    known_hosts: str = field(default="~/.ssh/known_hosts", metadata={
        "help": "known_hosts file; host keys are verified, never blindly accepted"})
    python: str = field(default="python3", metadata={"help": "the board's python with numpy and onnxruntime/LiteRT"})
    timeout_s: int = option(900, ge=1, le=86400, help="timeout for one remote benchmark, seconds")
    connect_timeout_s: int = option(10, ge=1, le=3600, help="ssh connect timeout, seconds")


@dataclass(frozen=True)
class McuOptions:
    """A microcontroller's memory budgets; models are run on TensorFlow Lite Micro to measure their arena."""

    ram_kb: int = option(ge=1, le=MAX_KB, help="on-chip RAM in KiB (tensor arena + runtime + application)")
    flash_kb: int = option(ge=1, le=MAX_KB, help="flash in KiB (model bytes + runtime code + application)")
    runtime: Literal["tflite-micro"] = field(default="tflite-micro", metadata={
        "help": "the interpreter the firmware links"})
    runtime_ram_kb: int = option(16, ge=0, le=MAX_KB, help="estimated RAM the runtime needs besides the arena "
                                 "(interpreter, op resolver, stack)")
    runtime_flash_kb: int = option(100, ge=0, le=MAX_KB, help="estimated flash of the runtime's code (interpreter "
                                   "and the kernels a CNN uses)")
    cpu: str = option("", pattern=f"(?:{CPU_NAME})?", help="GCC -mcpu value for the cross-compile check "
                      "(e.g. cortex-m4); empty: not an Arm core")


@dataclass(frozen=True)
class Target:
    """A device profile."""

    name: str = field(metadata={"help": "profile name (must match the file name)"})
    description: str = field(default="", metadata={"help": "one line for `edgekit devices`"})
    arch: Literal["x86_64", "aarch64", "armv7e-m", "xtensa"] = field(default="x86_64", metadata={
        "help": "CPU architecture of the device"})
    location: LocationKind = field(default="local", metadata={
        "help": "local | qemu (emulated) | ssh (remote board) | tflm (an MCU profile, on TFLM's kernels here)"})
    runtimes: tuple[Runtime, ...] = field(default=("onnxruntime", "litert"), metadata={
        "help": "runtimes to benchmark with"})
    quant_preset: Preset = field(default="avx2", metadata={"help": "ONNX quantization preset that suits this hardware"})
    threads: tuple[int, ...] = option((1, 0), ge=0, le=MAX_THREADS, help="thread counts; 0 = all cores of the device")
    batch_sizes: tuple[int, ...] = option((1, 32), ge=1, le=MAX_BATCH, help="batch sizes to time")
    requires_cpu_flags: tuple[str, ...] = option((), pattern=r"[a-z0-9_]+",
                                                 help="CPU flags (from /proc/cpuinfo) needed to run")
    requires_gpu: bool = field(default=False, metadata={"help": "needs an NVIDIA GPU"})
    onnxruntime: OrtOptions = field(default_factory=OrtOptions, metadata={"help": "ONNX Runtime settings"})
    qemu: QemuOptions | None = field(default=None, metadata={"help": "emulation settings (location = qemu)"})
    ssh: SshOptions | None = field(default=None, metadata={"help": "remote board settings (location = ssh)"})
    mcu: McuOptions | None = field(default=None, metadata={
        "help": "microcontroller RAM/flash budgets (models checked on TFLite Micro)"})
    source: str = field(default="", metadata={"help": "(set by the loader) the file the profile came from"})

    @property
    def emulated(self) -> bool:
        return self.location == "qemu"

    def validate(self, where: str) -> None:
        if self.location == "ssh" and self.ssh is None:
            raise ConfigError(f"{where}: location = 'ssh' needs an [ssh] table")
        if self.location == "tflm" and self.mcu is None:
            raise ConfigError(f"{where}: location = 'tflm' needs an [mcu] table")
        if self.location == "qemu" and self.qemu is None:
            raise ConfigError(f"{where}: location = 'qemu' needs a [qemu] table")
        if not self.threads:
            raise ConfigError(f"{where}.threads: give at least one thread count (0 = all cores)")
        if not self.batch_sizes:
            raise ConfigError(f"{where}.batch_sizes: give at least one batch size")

    def resolved_threads(self, cpu_count: int | None = None) -> list[int]:
        """Thread counts with 0 replaced by the core count (deduplicated, in order)."""
        cores = cpu_count or os.cpu_count() or 1
        out: list[int] = []
        for t in self.threads:
            t = cores if t == 0 else t
            if t not in out:
                out.append(t)
        return out


def builtin_devices_dir() -> Path:
    """The folder of built-in profiles; a broken install (no folder, no profiles) is an error, never an empty list."""
    try:
        root = importlib.resources.files(BUILTIN_PACKAGE)
    except ModuleNotFoundError:
        raise ConfigError(
            f"{BUILTIN_PACKAGE}: the built-in device profiles are not installed (reinstall edgekit)") from None
    folder = Path(str(root))
    if not folder.is_dir() or not any(folder.glob("*.toml")):
        raise ConfigError(f"{folder}: no built-in device profiles there (a broken install: reinstall edgekit)")
    return folder


def devices_dirs(extra: list[str | Path] | None = None) -> list[Path]:
    """Profile folders, lowest priority first: built-in, $EDGEKIT_DEVICES_DIR, then ``extra``."""
    dirs = [builtin_devices_dir()]
    dirs += [Path(p) for p in os.environ.get(DEVICES_ENV, "").split(os.pathsep) if p]
    dirs += [Path(p) for p in (extra or [])]
    return dirs


def load_profile(path: Path) -> Target:
    """Load and validate one profile file."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    target = from_mapping(Target, {**data, "source": str(path)}, str(path))
    if target.name != path.stem:
        raise ConfigError(f"{path}: name {target.name!r} does not match the file name {path.stem!r}")
    return target


def load_targets(extra_dirs: list[str | Path] | None = None) -> dict[str, Target]:
    """Every profile, by name."""
    targets: dict[str, Target] = {}
    for d in devices_dirs(extra_dirs):
        if not d.is_dir():
            raise UsageError(f"{d}: devices folder does not exist")
        for path in sorted(d.glob("*.toml")):
            targets[path.stem] = load_profile(path)
    return targets


def get_target(name: str, extra_dirs: list[str | Path] | None = None) -> Target:
    """The profile called ``name``; a one-line error lists the known ones otherwise."""
    targets = load_targets(extra_dirs)
    if name not in targets:
        raise UsageError(f"--target: unknown device profile {name!r} (known: {', '.join(sorted(targets))})")
    return targets[name]


def default_target_name() -> str:
    """The profile that describes this machine's CPU."""
    import platform

    return "arm64-cpu" if platform.machine() in ("aarch64", "arm64") else "x86-cpu"
