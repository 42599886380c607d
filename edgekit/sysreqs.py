"""System tools edgekit uses and the Debian packages that provide them (one table), so a missing
set can be named in one message instead of one failed attempt at a time."""

from __future__ import annotations

import shutil

TOOLS: dict[str, str] = {
    # executable → Debian package
    "qemu-aarch64-static": "qemu-user-static",
    "debootstrap": "debootstrap",
    "chromium": "chromium",
    "ssh": "openssh-client",
    "arm-none-eabi-gcc": "gcc-arm-none-eabi",
}


def missing_packages(*executables: str) -> list[str]:
    """Debian packages (in order, without repeats) whose executables are not on PATH."""
    out: list[str] = []
    for exe in executables:
        if shutil.which(exe) is None:
            package = TOOLS.get(exe, exe)
            if package not in out:
                out.append(package)
    return out


def missing_message(what: str, *executables: str) -> str | None:
    """One line naming every missing package for ``what``, or None when all are present."""
    packages = missing_packages(*executables)
    if not packages:
        return None
    return f"{what}: missing {', '.join(packages)} (Debian: apt-get install {' '.join(packages)})"
