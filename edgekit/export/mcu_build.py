"""Cross-compile the examples/mcu firmware for a Cortex-M and read its flash/RAM footprint.

The example (``main.c`` + the STUB interpreter + the model's C array, no TFLM library)
is built with Debian's ``gcc-arm-none-eabi`` and newlib's ``nosys`` specs by the
example's own Makefile (``make cortex-m4``); ``arm-none-eabi-size`` then reports the
model object alone and the whole image in Berkeley format (text, data, bss).

``make`` expands ``$(...)`` in every variable it is given (on its command line or from the
environment) and hands recipe lines to the shell, so nothing that comes from outside goes into a
make variable as it is: the CPU name must match :data:`edgekit.targets.CPU_NAME`, the model is
copied into the build folder under a fixed name, and the interpreter's path is quoted for both.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgekit.errors import ExportError, UsageError

CROSS = "arm-none-eabi-"
TOOLCHAIN_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi"
EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "mcu"
"""The example in a source checkout (it is not installed with the package)."""
_SIZE_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[0-9a-f]+\s+(\S+)\s*$")


def toolchain_unavailable_reason(cross: str = CROSS) -> str | None:
    """None when the Arm cross compiler, newlib and ``make`` are installed, else what to install."""
    missing = [tool for tool in (f"{cross}gcc", f"{cross}size", "make") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found (apt-get install {TOOLCHAIN_PACKAGES} make)"
    probe = subprocess.run([f"{cross}gcc", "--specs=nosys.specs", "-print-file-name=libc.a"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or not Path(probe.stdout.strip()).is_file():
        return f"newlib for {cross}gcc is missing (apt-get install libnewlib-arm-none-eabi)"
    return None


def parse_size(text: str) -> dict[str, dict[str, int]]:
    """``size`` (Berkeley format) output → {file name: {text, data, bss, flash, ram}}."""
    rows: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        m = _SIZE_ROW.match(line)
        if m:
            text_b, data_b, bss_b = (int(m.group(i)) for i in (1, 2, 3))
            rows[Path(m.group(5)).name] = {"text": text_b, "data": data_b, "bss": bss_b,
                                           "flash": text_b + data_b, "ram": data_b + bss_b}
    return rows


def make_literal(text: str) -> str:
    """``text`` as a make variable value that make and the shell both read back as exactly ``text``."""
    return shlex.quote(text).replace("$", "$$")


def check_cpu(cpu: str) -> str:
    """``cpu`` if it is a plain compiler CPU name, else a UsageError (it reaches make and the shell)."""
    from edgekit.targets import CPU_NAME

    if not isinstance(cpu, str) or not re.fullmatch(CPU_NAME, cpu):
        raise UsageError(f"mcu.cpu must match {CPU_NAME} (a GCC -mcpu name such as cortex-m4), got {str(cpu)[:60]!r}")
    return cpu


def cross_compile_example(tflite_path: str | Path, *, cpu: str = "cortex-m4", work_dir: str | Path | None = None,
                          example_dir: str | Path | None = None, timeout_s: float = 300) -> dict[str, Any]:
    """Build examples/mcu around ``tflite_path`` for ``cpu`` and return its footprint.

    Returns ``cpu``, ``toolchain`` (compiler version line), ``model`` and ``firmware`` size rows
    (``text``/``data``/``bss``/``flash``/``ram`` bytes; ``model`` is the C array's object file alone),
    ``arena_bytes`` (MODEL_ARENA_BYTES from the generated header, None if not measured), ``elf`` and
    ``size_output`` (what ``arm-none-eabi-size`` printed). Raises :class:`UsageError` when the toolchain
    or the example is missing and :class:`ExportError` when the build fails.
    """
    from edgekit.export.c_array import write_c_array

    check_cpu(cpu)
    why = toolchain_unavailable_reason()
    if why:
        raise UsageError(why)
    src = Path(example_dir) if example_dir is not None else EXAMPLE_DIR
    if not (src / "Makefile").is_file():
        raise UsageError(f"{src}: the mcu example is not there (it ships with the source checkout, not the package)")
    model = Path(tflite_path)
    with tempfile.TemporaryDirectory(prefix="edgekit-mcu-") as tmp:
        work = Path(work_dir) if work_dir is not None else Path(tmp) / "mcu"
        shutil.copytree(src, work, ignore=shutil.ignore_patterns("firmware", "firmware-*", "*.o", "model_data.*"),
                        dirs_exist_ok=True)
        shutil.copyfile(model, work / "model.tflite")  # make sees a fixed name, never the caller's path
        files = write_c_array(model, work, name="model_data", force=True)  # newer than model.tflite: not remade
        cmd = ["make", "-s", "--no-print-directory", "-C", str(work), "MODEL=model.tflite",
               f"EDGEKIT={make_literal(sys.executable)} -m edgekit", f"CPU={cpu}", cpu]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ExportError(f"{model}: the {cpu} build of the mcu example failed: {' | '.join(tail)}")
        sizes = parse_size(proc.stdout)
        version = subprocess.run([f"{CROSS}gcc", "--version"], capture_output=True, text=True).stdout.splitlines()
        elf = work / f"firmware-{cpu}.elf"
        return {"cpu": cpu, "toolchain": version[0] if version else "", "model": sizes.get(f"model_data-{cpu}.o"),
                "firmware": sizes.get(elf.name), "arena_bytes": files.arena_bytes,
                "elf": str(elf) if work_dir is not None else "", "size_output": proc.stdout.strip("\n")}
