"""Microcontroller budgets: does a model fit a device profile's RAM and flash?

A profile with an ``[mcu]`` table (``devices/cortex-m4-256k.toml`` …) gives RAM and flash
sizes and estimates of what the runtime (TensorFlow Lite Micro) itself takes. A model fits when

* RAM: the tensor arena TFLM really used (:func:`edgekit.runtime.tflm.measure_arena`) plus the
  runtime RAM estimate is at most ``ram_kb``, and
* flash: the model file's bytes plus the runtime code estimate is at most ``flash_kb``.

The accuracy-budget search keeps only artifacts for which every MCU target in ``--targets``
fits (``all(row["fits"] for row in fit_table(path, targets))``); the report shows the rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from edgekit.errors import TargetError
from edgekit.runtime.tflm import measure_arena, unavailable_reason

KIB = 1024


def is_mcu(target: Any) -> bool:
    """Whether ``target`` is a microcontroller profile (has an ``[mcu]`` table)."""
    return getattr(target, "mcu", None) is not None


def fit_table(tflite_path: str | os.PathLike[str], targets: Iterable[Any]) -> list[dict[str, Any]]:
    """:func:`fits` rows for every microcontroller profile among ``targets``, measuring the arena once.

    Empty when none of ``targets`` is a microcontroller.
    """
    mcus = [t for t in targets if is_mcu(t)]
    if not mcus:
        return []
    path = Path(tflite_path)
    if path.suffix != ".tflite":
        return [fits(path, t) for t in mcus]
    run = measure_arena(path)
    if not run.ok:
        decided = False if run.unsupported_ops or unavailable_reason() is None else None
        return [_fit_row(t, path, None, None, run.unsupported_ops, decided, run.reason) for t in mcus]
    return [fits(path, t, arena_bytes=run.arena_bytes) for t in mcus]


def fits(tflite_path: str | os.PathLike[str], target: Any, *, arena_bytes: int | None = None) -> dict[str, Any]:
    """Does the model fit ``target``'s ``[mcu]`` budgets?

    RAM: measured TFLM arena + the profile's runtime RAM estimate against ``ram_kb``;
    flash: the model file's bytes + the runtime code estimate against ``flash_kb``.
    ``arena_bytes`` skips the TFLM run when the arena is already known. ``fits`` is True,
    False, or None when it cannot be decided (tflite-micro missing); ``reason`` says why not.
    Margins are budget minus need, in bytes (negative: over budget).
    """
    mcu = getattr(target, "mcu", None)
    if mcu is None:
        raise TargetError(f"{target.name}: not a microcontroller profile (no [mcu] table)")
    path = Path(tflite_path)
    if path.suffix != ".tflite" or not path.is_file():
        why = f"{path.name}: only .tflite models run on {mcu.runtime}" if path.suffix != ".tflite" else f"{path}: no such model file"
        return _fit_row(target, path, None, None, (), False, why)
    unsupported: tuple[str, ...] = ()
    if arena_bytes is None:
        run = measure_arena(path)
        if not run.ok:
            decided = False if run.unsupported_ops or unavailable_reason() is None else None
            return _fit_row(target, path, None, None, run.unsupported_ops, decided, run.reason)
        arena_bytes = run.arena_bytes
    return _fit_row(target, path, arena_bytes, path.stat().st_size, unsupported, True, "")


def _fit_row(target: Any, path: Path, arena: int | None, model_bytes: int | None, unsupported: tuple[str, ...],
             decided: bool | None, reason: str) -> dict[str, Any]:
    mcu = target.mcu
    model_bytes = model_bytes if model_bytes is not None else (path.stat().st_size if path.is_file() else None)
    ram, flash = mcu.ram_kb * KIB, mcu.flash_kb * KIB
    runtime_ram, runtime_flash = mcu.runtime_ram_kb * KIB, mcu.runtime_flash_kb * KIB
    ram_need = arena + runtime_ram if arena is not None else None
    flash_need = model_bytes + runtime_flash if model_bytes is not None else None
    fits_ram = ram_need <= ram if ram_need is not None else None
    fits_flash = flash_need <= flash if flash_need is not None else None
    if decided is True:
        verdict: bool | None = bool(fits_ram and fits_flash)
        problems = []
        if not fits_ram:
            problems.append(f"RAM: arena {arena / KIB:.1f} KB + runtime {mcu.runtime_ram_kb} KB > {mcu.ram_kb} KB")
        if not fits_flash:
            problems.append(f"flash: model {model_bytes / KIB:.1f} KB + runtime {mcu.runtime_flash_kb} KB > {mcu.flash_kb} KB")
        reason = "; ".join(problems)
    else:
        verdict = decided  # False: cannot run on TFLM; None: not measured
    return {
        "target": target.name, "model": str(path), "runtime": mcu.runtime, "fits": verdict, "reason": reason,
        "fits_ram": fits_ram, "fits_flash": fits_flash, "arena_bytes": arena, "model_bytes": model_bytes,
        "runtime_ram_bytes": runtime_ram, "runtime_flash_bytes": runtime_flash, "ram_bytes": ram, "flash_bytes": flash,
        "ram_needed_bytes": ram_need, "flash_needed_bytes": flash_need,
        "ram_margin_bytes": ram - ram_need if ram_need is not None else None,
        "flash_margin_bytes": flash - flash_need if flash_need is not None else None,
        "unsupported_ops": list(unsupported),
    }
