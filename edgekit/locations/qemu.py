"""The ``qemu`` location, emulated ARM64: run the benchmark runner under qemu-user with an ARM64 Debian sysroot.

The sysroot (``edgekit devices setup arm64-qemu``) holds Debian bookworm's arm64
``python3.11`` (unpacked from the debs ``debootstrap --foreign`` fetches) and the
aarch64 ``onnxruntime``/``numpy`` wheels. It runs as
``qemu-aarch64-static -L SYSROOT SYSROOT/usr/bin/python3.11`` with ``QEMU_CPU``
set to the profile's core.

Pitfall: ONNX Runtime's cpuinfo library reads ``/proc/cpuinfo``; ``-L`` makes
qemu look every absolute path up inside the sysroot first, so the sysroot must
hold an ARM ``proc/cpuinfo`` whose ``CPU part`` matches ``QEMU_CPU``. Without
it ``import onnxruntime`` segfaults (it parses the x86 host's file); with a
mismatched part the int8 kernels chosen for the claimed core hit SIGILL.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import TargetError, UsageError
from edgekit.fsutil import write_json, write_text
from edgekit.locations.base import Location
from edgekit.locations.process import run_and_read, run_command
from edgekit.runtime.archive import runner_archive
from edgekit.runtime.host import installed_version
from edgekit.targets import QemuOptions, Target

log = logging.getLogger(__name__)

SYSROOT_ENV = "EDGEKIT_SYSROOT"
MIRROR_ENV = "EDGEKIT_DEBIAN_MIRROR"
SUITE = "bookworm"
GUEST_PYTHON = "usr/bin/python3.11"
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"  # on Debian python's sys.path by default
READY_FILE = ".edgekit-ready.json"
DEBS = ("python3.11-minimal", "libpython3.11-stdlib")
WHEEL_PLATFORM = "manylinux_2_28_aarch64"  # with only manylinux2014, pip silently picks onnxruntime 1.16
SETUP_TIMEOUT_S = 1800


@dataclass(frozen=True)
class ArmCore:
    """What an ARM core's /proc/cpuinfo says about it (the one table of known cores)."""

    implementer: str
    part: str
    variant: str
    revision: str
    features: str


_V82 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
CORES: dict[str, ArmCore] = {
    "cortex-a53": ArmCore("0x41", "0xd03", "0x0", "4", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a57": ArmCore("0x41", "0xd07", "0x1", "3", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a72": ArmCore("0x41", "0xd08", "0x0", "3", "fp asimd evtstrm crc32 cpuid"),  # Raspberry Pi 4
    "cortex-a76": ArmCore("0x41", "0xd0b", "0x4", "1", _V82),  # Raspberry Pi 5
    "neoverse-n1": ArmCore("0x41", "0xd0c", "0x3", "1", _V82 + " ssbs"),  # Graviton 2, Ampere Altra
    "neoverse-v1": ArmCore("0x41", "0xd40", "0x1", "1", _V82 + " sha3 sm3 sm4 sha512 sve asimdfhm dit uscat ilrcpc "
                           "flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng"),  # Graviton 3
}


# --------------------------------------------------------------------------- locations


def sysroot_of(target: Target) -> Path:
    """The sysroot folder of a qemu profile: its ``sysroot``, else $EDGEKIT_SYSROOT, else the user cache."""
    opts = _qemu(target)
    if opts.sysroot:
        return Path(opts.sysroot).expanduser()
    if os.environ.get(SYSROOT_ENV):
        return Path(os.environ[SYSROOT_ENV]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "edgekit" / "arm64-sysroot"


def _qemu(target: Target) -> QemuOptions:
    if target.qemu is None:
        raise UsageError(f"{target.name}: not an emulated profile (location = {target.location!r})")
    return target.qemu


def guest_command(target: Target, *args: str) -> list[str]:
    """Argument list that runs the sysroot's python under qemu with ``args``."""
    root = sysroot_of(target)
    binary = shutil.which(_qemu(target).binary) or _qemu(target).binary
    return [binary, "-L", str(root), str(root / GUEST_PYTHON), "-I", *args]


def guest_env(target: Target) -> dict[str, str]:
    """This process's environment minus anything that would point the guest python at x86 packages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QEMU_", "LD_"))}
    env["QEMU_CPU"] = _qemu(target).cpu
    return env


# --------------------------------------------------------------------------- cpuinfo


def cpuinfo_text(cpu: str, count: int) -> str:
    """An ARM /proc/cpuinfo for ``count`` cores of kind ``cpu`` (a QEMU_CPU name)."""
    core = CORES.get(cpu)
    if core is None:
        raise UsageError(f"qemu.cpu: no /proc/cpuinfo known for {cpu!r} (known: {', '.join(sorted(CORES))})")
    blocks = [
        f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: {core.features}\nCPU implementer\t: {core.implementer}\n"
        f"CPU architecture: 8\nCPU variant\t: {core.variant}\nCPU part\t: {core.part}\n"
        f"CPU revision\t: {core.revision}\n"
        for i in range(max(1, count))
    ]
    return "\n".join(blocks) + "\n"


def ensure_cpuinfo(root: Path, cpu: str) -> None:
    """Write ``root/proc/cpuinfo`` for ``cpu`` with this machine's core count, unless it already says that."""
    text = cpuinfo_text(cpu, os.cpu_count() or 1)
    path = root / "proc" / "cpuinfo"
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    write_text(path, text)


# --------------------------------------------------------------------------- availability


def qemu_unavailable_reason(target: Target) -> str | None:
    """``None`` when ``target`` can be emulated here, else why not (one line)."""
    opts = _qemu(target)
    if shutil.which(opts.binary) is None:
        return f"{opts.binary} not found (Debian: apt-get install qemu-user-static)"
    if opts.cpu not in CORES:
        return f"qemu.cpu {opts.cpu!r} has no known /proc/cpuinfo (known: {', '.join(sorted(CORES))})"
    root = sysroot_of(target)
    if not (root / READY_FILE).is_file():
        return f"no ARM64 sysroot at {root} (run `edgekit devices setup {target.name}`)"
    return None


# --------------------------------------------------------------------------- running


def run_qemu(target: Target, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run one benchmark request under qemu-user; returns the runner's result."""
    reason = qemu_unavailable_reason(target)
    if reason:
        raise TargetError(f"{target.name}: {reason}")
    ensure_cpuinfo(sysroot_of(target), _qemu(target).cpu)
    req, res = workdir / "request.json", workdir / "result.json"
    write_json(req, request)
    timeout = float(request.get("timeout_s", 3600))
    runner = runner_archive(workdir)
    return run_and_read(guest_command(target, str(runner), str(req), str(res)), res, timeout,
                        env=guest_env(target), where=f"{target.name} (qemu {_qemu(target).cpu})")


def probe(target: Target, timeout_s: float = 300) -> dict[str, Any]:
    """Import numpy and onnxruntime in the emulated python; returns their versions and the machine."""
    code = ("import json, platform, numpy, onnxruntime as o; print(json.dumps({'machine': platform.machine(), "
            "'python': platform.python_version(), 'numpy': numpy.__version__, 'onnxruntime': o.__version__, "
            "'providers': o.get_available_providers()}))")
    ensure_cpuinfo(sysroot_of(target), _qemu(target).cpu)
    out = run_command(guest_command(target, "-c", code), timeout_s, f"{target.name}: emulated python",
                      env=guest_env(target))
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------- provisioning


def debian_mirror() -> str:
    """$EDGEKIT_DEBIAN_MIRROR, else the first Debian mirror in this machine's apt sources, else deb.debian.org."""
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV]
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for f in files:
        if not f.is_file() or f.suffix not in (".list", ".sources", ""):
            continue
        for m in re.finditer(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+/debian)/?\s", f.read_text() + "\n", re.M):
            return m.group(1)
    return "http://deb.debian.org/debian"


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, timeout_s: float = SETUP_TIMEOUT_S) -> None:
    log.debug("%s: %s", what, " ".join(cmd))
    run_command(cmd, timeout_s, what)


def setup_arm64_sysroot(target: Target, force: bool = False) -> Path:
    """Provision the ARM64 sysroot of ``target`` (idempotent; ``force`` rebuilds). Returns its folder.

    Needs root for debootstrap, the Debian mirror (apt's) and PyPI. Downloaded debs are
    kept beside the sysroot (``arm64-debs``) and wheels in pip's cache, so a rebuild is fast.
    """
    opts = _qemu(target)
    root = sysroot_of(target)
    from edgekit.sysreqs import missing_message

    missing = missing_message(target.name, opts.binary, "debootstrap")  # every missing package in one message
    if missing:
        raise TargetError(missing)
    if os.geteuid() != 0:
        raise TargetError(f"{target.name}: setting up {root} runs debootstrap, which needs root")
    cpuinfo_text(opts.cpu, 1)  # unknown core -> one-line error before any download
    with _lock(root.parent / f".{root.name}.lock"):
        if (root / READY_FILE).is_file() and not force:
            log.info("%s: sysroot ready at %s", target.name, root)
            return root
        debs = root.parent / "arm64-debs"
        debs.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
        try:
            _populate(build, debs, target)
            if root.exists():
                shutil.rmtree(root)
            os.replace(build, root)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        info = probe(target)
        write_json(root / READY_FILE, {**info, "cpu": opts.cpu, "mirror": debian_mirror(), "suite": SUITE})
        log.info("%s: sysroot ready at %s (%s)", target.name, root, info)
        return root


def _populate(build: Path, debs: Path, target: Target) -> None:
    mirror = debian_mirror()
    log.info("%s: debootstrap %s arm64 from %s, then pip wheels for %s", target.name, SUITE, mirror, WHEEL_PLATFORM)
    _run(["debootstrap", "--arch=arm64", "--variant=minbase", "--foreign", f"--cache-dir={debs}",
          f"--include={','.join(DEBS)}", SUITE, str(build), mirror], f"debootstrap arm64 {SUITE} from {mirror}")
    # --foreign unpacks only the required set; unpack every package it resolved (python and its libraries too).
    archives = build / "var/cache/apt/archives"
    for line in (build / "debootstrap" / "debpaths").read_text().splitlines():
        name = Path(line.split()[-1]).name
        deb = archives / name if (archives / name).is_file() else debs / name
        _run(["dpkg-deb", "-x", str(deb), str(build)], f"unpacking {deb.name}", 300)
    shutil.rmtree(build / "var/cache/apt/archives", ignore_errors=True)
    if not (build / GUEST_PYTHON).is_file():
        raise TargetError(f"{target.name}: debootstrap did not fetch {GUEST_PYTHON}")
    pins = [f"onnxruntime=={v}" if (v := installed_version("onnxruntime")) else "onnxruntime",
            f"numpy=={v}" if (v := installed_version("numpy")) else "numpy"]
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
          "--target", str(build / SITE_PACKAGES), "--platform", WHEEL_PLATFORM, "--only-binary=:all:",
          "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", *pins],
         f"pip install {' '.join(pins)} for {WHEEL_PLATFORM}")
    (build / "proc").mkdir(exist_ok=True)
    write_text(build / "proc" / "cpuinfo", cpuinfo_text(_qemu(target).cpu, os.cpu_count() or 1))


class QemuLocation(Location):
    """An emulated ARM64 machine on this host (latency is a relative figure, never device speed)."""

    kind = "qemu"

    def where(self) -> str:
        return f"qemu {_qemu(self.target).cpu}"

    def unavailable_reason(self, probe: bool = True) -> str | None:
        return qemu_unavailable_reason(self.target)

    def setup(self, force: bool = False) -> str:
        root = setup_arm64_sysroot(self.target, force=force)
        return f"{self.target.name}: sysroot ready at {root}: {probe(self.target)}"

    def run(self, request: dict[str, Any], workdir: Path) -> dict[str, Any]:
        return run_qemu(self.target, request, workdir)
