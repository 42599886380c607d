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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgekit.errors import TargetError
from edgekit.rules.fit import KIB, Budgets, Fit
from edgekit.runtime.tflm import measure_arena, unavailable_reason


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
        why = (f"{path.name}: only .tflite models run on {mcu.runtime}" if path.suffix != ".tflite"
               else f"{path}: no such model file")
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
    f = Fit(arena, model_bytes, Budgets(mcu.ram_kb, mcu.flash_kb, mcu.runtime_ram_kb, mcu.runtime_flash_kb))
    if decided is True:  # the arena was measured and the file is there
        verdict, reason = f.fits, f.reason
    else:
        verdict = decided  # False: cannot run on TFLM; None: not measured
    ram, flash, ram_need, flash_need = f.ram, f.flash, f.ram_needed, f.flash_needed
    return {
        "target": target.name, "model": str(path), "runtime": mcu.runtime, "fits": verdict, "reason": reason,
        "fits_ram": f.fits_ram, "fits_flash": f.fits_flash, "arena_bytes": arena, "model_bytes": model_bytes,
        "runtime_ram_bytes": mcu.runtime_ram_kb * KIB, "runtime_flash_bytes": mcu.runtime_flash_kb * KIB,
        "ram_bytes": ram, "flash_bytes": flash, "ram_needed_bytes": ram_need, "flash_needed_bytes": flash_need,
        "ram_margin_bytes": ram - ram_need if ram_need is not None else None,
        "flash_margin_bytes": flash - flash_need if flash_need is not None else None,
        "unsupported_ops": list(unsupported),
    }


def report_section(targets: Iterable[Any], artifacts: Iterable[Any], chosen_id: str | None) -> list[dict[str, Any]]:
    """report.json's ``mcu`` list: each microcontroller target's budgets and the chosen artifact's cross-compile.

    The fit of every artifact is in the benchmark rows (location ``tflm``); this adds what is per
    target: the profile's budgets, and the examples/mcu firmware built around the chosen ``.tflite``
    for the profile's ``cpu`` with ``arm-none-eabi-size``'s output (built once per CPU; skipped, with
    the reason, without the toolchain, for a non-Arm core or a chosen file that is not ``.tflite``).
    """
    chosen = next((a for a in artifacts if a.id == chosen_id), None) if chosen_id else None
    builds: dict[str, dict[str, Any]] = {}
    out = []
    for t in targets:
        if not is_mcu(t):
            continue
        mcu = t.mcu
        if mcu.cpu not in builds:
            builds[mcu.cpu] = cross_compile_record(chosen, mcu.cpu)
        out.append({"target": t.name, "runtime": mcu.runtime, "cpu": mcu.cpu, "ram_kb": mcu.ram_kb,
                    "flash_kb": mcu.flash_kb, "runtime_ram_kb": mcu.runtime_ram_kb,
                    "runtime_flash_kb": mcu.runtime_flash_kb, "cross_compile": builds[mcu.cpu]})
    return out


def cross_compile_record(artifact: Any, cpu: str) -> dict[str, Any]:
    """The examples/mcu build around ``artifact`` for ``cpu``
    (:func:`edgekit.export.mcu_build.cross_compile_example`)."""
    from edgekit.errors import EdgekitError, UsageError
    from edgekit.export.mcu_build import cross_compile_example

    base: dict[str, Any] = {"cpu": cpu or None, "artifact_id": artifact.id if artifact is not None else None}
    if not cpu:
        return {**base, "status": "skipped", "reason": "not an Arm Cortex-M core (no cross-compile check)"}
    if artifact is None:
        return {**base, "status": "skipped", "reason": "no artifact was chosen"}
    if artifact.format != "tflite":
        return {**base, "status": "skipped",
                "reason": f"the chosen artifact is {artifact.format}, the firmware embeds a .tflite"}
    try:
        built = cross_compile_example(artifact.path, cpu=cpu)
    except UsageError as e:  # no toolchain, or no example in this install
        return {**base, "status": "skipped", "reason": str(e)}
    except EdgekitError as e:
        return {**base, "status": "failed", "reason": str(e)}
    return {**base, "status": "ok", "reason": "", "toolchain": built["toolchain"], "model": built["model"],
            "firmware": built["firmware"], "arena_bytes": built["arena_bytes"], "size_output": built["size_output"]}


MIN_TFLM_AGREEMENT = 0.99
"""A file whose TFLM top-1 predictions agree with LiteRT's on fewer test images than this is not deployable."""


def mcu_exclusions(artifacts: Iterable[Any], rows: Iterable[dict[str, Any]], targets: Iterable[Any]) -> dict[str, str]:
    """Artifact id → why it cannot go on one of the microcontroller ``targets`` (the chooser's filter).

    An artifact is kept only when, on every MCU target, it runs on TFLM, agrees with LiteRT on at least
    :data:`MIN_TFLM_AGREEMENT` of the test images and fits RAM and flash. The benchmark ``rows`` of
    location ``tflm`` (with their ``mcu`` record) decide where present; otherwise the fit is measured
    here (:func:`fits`). Empty when no target is a microcontroller.
    """
    from edgekit.formats import deployable_formats

    mcus = [t for t in targets if is_mcu(t)]
    if not mcus:
        return {}
    rows = list(rows)
    why: dict[str, str] = {}
    for a in artifacts:
        if a.format not in deployable_formats():
            continue
        for t in mcus:
            reason = _unfit_reason(a, t, rows)
            if reason:
                why[a.id] = f"not for {t.name}: {reason}"
                break
    return why


def _unfit_reason(artifact: Any, target: Any, rows: list[dict[str, Any]]) -> str | None:
    row = next((r for r in rows if r.get("artifact_id") == artifact.id and r.get("target") == target.name
                and r.get("mcu") is not None), None)
    if row is not None:
        mcu = row["mcu"]
        if row.get("status") != "ok":
            return row.get("reason") or mcu.get("reason") or str(row.get("status"))
        agreement = mcu.get("tflm_agreement")
        if agreement is not None and agreement < MIN_TFLM_AGREEMENT:
            return f"TFLM agrees with LiteRT on {agreement:.2%} of the test images (< {MIN_TFLM_AGREEMENT:.0%})"
        return None
    if artifact.format != "tflite":
        return f"only .tflite files run on {target.mcu.runtime}"
    if artifact.precision in ("fp32", "fp16"):
        return f"{artifact.precision} file: a microcontroller runs int8 models"
    fit = fits(artifact.path, target)
    return None if fit["fits"] else (fit["reason"] or "its fit could not be measured")
