"""The same fp32 and int8 ONNX models on x86, emulated ARM64 and (absent) CUDA.

Runs `edgekit bench` on the default Fashion-MNIST run's ONNX models (made by
`benchmarks/pipeline_fashion.py`), checks the cross-target goals and writes the table
into benchmarks/RESULTS.md (section "targets-fashion").

    python benchmarks/targets_fashion.py [--run runs/fm] [--out runs/bench-fm] [--test-limit N] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402

MODELS = ("baseline-onnx", "pruned-int8-onnx")
TARGETS = ("x86-cpu", "arm64-qemu", "nvidia-cuda")
REFERENCE, ARM, GPU = TARGETS


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _share(share: dict[str, float] | None) -> str:
    if not share:
        return "–"
    return ", ".join(f"{p.removesuffix('ExecutionProvider')} {f * 100:.0f} %" for p, f in share.items())


def _table(report: dict[str, Any]) -> str:
    """The rows as a Markdown table; each distinct skip/fail reason is written once, below it."""
    arts = {a["id"]: a for a in report["artifacts"]}
    reasons: dict[str, int] = {}
    head = ("| model | precision | target | emulated | batch | threads | status | provider (node share) "
            "| p50 ms | p90 ms | accuracy % | top-1 agreement vs x86 % |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in report["benchmarks"]:
        a = arts[r["artifact_id"]]
        lat = r.get("latency_ms") or {}
        emu = " (emulated)" if r["emulated"] and lat else ""
        status = r["status"] + (f" [{reasons.setdefault(r['reason'], len(reasons) + 1)}]" if r.get("reason") else "")
        agree = r.get("target_agreement") if r["target"] != r.get("reference_target") else None
        lines.append(
            f"| {a['name']} | {a['precision']} | {r['target']} | {'yes' if r['emulated'] else 'no'} | {r['batch_size']} "
            f"| {r['threads']} | {status} | {(r.get('provider') or '–').removesuffix('ExecutionProvider')} "
            f"({_share(r.get('node_share'))}) | {_fmt(lat.get('p50'), '.3f')}{emu} | {_fmt(lat.get('p90'), '.3f')}{emu} "
            f"| {_fmt(r['accuracy'] * 100 if r.get('accuracy') is not None else None, '.2f')} "
            f"| {_fmt(agree * 100 if agree is not None else None, '.2f')} |")
    lines += ["", *[f"[{n}] {why}" for why, n in reasons.items()]] if reasons else []
    return "\n".join(lines)


def _cell(report: dict[str, Any], name: str, target: str) -> list[dict[str, Any]]:
    ids = {a["id"] for a in report["artifacts"] if a["name"] == name}
    return [r for r in report["benchmarks"] if r["artifact_id"] in ids and r["target"] == target]


def _quantization(run: Path) -> str:
    """How the int8 ONNX model was quantized, from the pipeline run's report.json (empty if unknown)."""
    try:
        report = json.loads((run / "report.json").read_text())
    except (OSError, ValueError):
        return ""
    art = next((a for a in report.get("artifacts", []) if a.get("name") == MODELS[1]), {})
    onnx = (art.get("config") or {}).get("onnx") or {}
    text = ", ".join(f"{k} {onnx[k]}" for k in ("activation_type", "weight_type", "per_channel", "reduce_range") if k in onnx)
    layers = (((art.get("metrics") or {}).get("int8") or {}).get("layers")) or []
    kept = [la for la in layers if la.get("precision") != "int8"]
    if kept:  # a mixed-precision file: say which layers are not int8, as the pipeline recorded them
        text += f"; precision {art.get('precision')}, not int8: " + "; ".join(
            f"{la['name']} {la.get('precision')}" + (f" ({la['reason']})" if la.get("reason") else "") for la in kept)
    return text


def _checks(report: dict[str, Any], quantization: str) -> tuple[list[tuple[str, bool]], list[str]]:
    checks: list[tuple[str, bool]] = []
    notes: list[str] = []
    for name in MODELS:
        for target in (REFERENCE, ARM):
            rows = _cell(report, name, target)
            ok = bool(rows) and all(r["status"] == "ok" and r.get("accuracy") is not None for r in rows)
            accs = sorted({round(r["accuracy"] * 100, 2) for r in rows if r.get("accuracy") is not None})
            checks.append((f"{name} on {target}: {len(rows)} rows ok with accuracy ({', '.join(map(str, accs))} %)", ok))
    arm = [r for n in MODELS for r in _cell(report, n, ARM)]
    checks.append((f"all {len(arm)} {ARM} rows labelled emulated: true", bool(arm) and all(r["emulated"] is True for r in arm)))
    fp32 = [r["target_agreement"] for r in _cell(report, MODELS[0], ARM)]
    low = min((a for a in fp32 if a is not None), default=None)
    checks.append((f"fp32 top-1 agreement {ARM} vs {REFERENCE}: {_fmt(low * 100 if low is not None else None, '.2f')} % "
                   "(lowest row) ≥ 99.9 %", low is not None and None not in fp32 and low >= 0.999))
    gpu = [r for n in MODELS for r in _cell(report, n, GPU)]
    no_figure = all(r.get("latency_ms") is None and r.get("accuracy") is None and r.get("throughput_per_s") is None
                    for r in gpu)
    statuses = sorted({r["status"] for r in gpu})
    checks.append((f"{GPU}: {len(gpu)} rows {'/'.join(statuses)} with a reason and no CPU figure",
                   bool(gpu) and set(statuses) <= {"failed", "skipped"} and all(r.get("reason") for r in gpu) and no_figure))

    int8 = {t: _cell(report, MODELS[1], t) for t in (REFERENCE, ARM)}
    x86_acc = {r["accuracy"] for r in int8[REFERENCE] if r.get("accuracy") is not None}
    arm_acc = {r["accuracy"] for r in int8[ARM] if r.get("accuracy") is not None}
    agree = [r["target_agreement"] for r in int8[ARM] if r.get("target_agreement") is not None]
    test_n = report["dataset"]["test_size"]
    if agree:
        differing = round((1 - min(agree)) * test_n)
        notes.append(f"int8 on {ARM} vs {REFERENCE}: top-1 agreement {min(agree) * 100:.2f} % "
                     f"({differing} of {test_n} test images classified differently); accuracy "
                     f"{', '.join(f'{a * 100:.2f}' for a in sorted(x86_acc))} % on x86 vs "
                     f"{', '.join(f'{a * 100:.2f}' for a in sorted(arm_acc))} % on ARM — "
                     + ("identical predictions." if differing == 0 else "the int8 kernels differ.")
                     + (f" The model is QDQ int8 with {quantization}." if quantization else ""))
    flags = set((report.get("environment") or {}).get("cpu_flags") or [])
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags
    notes.append("This x86 CPU has " + (", ".join(sorted(f for f in flags if "vnni" in f)) if vnni else "no VNNI")
                 + (": ONNX Runtime's int8 GEMM uses the VNNI dot-product path, which does not saturate, so the "
                    "AVX2-without-VNNI saturation (u8×s8 pairs summed into int16 by vpmaddubsw) cannot "
                    "show here; an AVX2-only x86 may differ more from ARM than this run does." if vnni else
                    ": ONNX Runtime's int8 GEMM uses AVX2's vpmaddubsw, whose int16 pair sums can saturate."))
    return checks, notes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/fm", help="the pipeline run whose models/ are benchmarked")
    ap.add_argument("--out", default="runs/bench-fm")
    ap.add_argument("--test-limit", type=int, help="evaluate on the first N test images (default: all)")
    ap.add_argument("--reuse", action="store_true", help="read an existing --out/report.json instead of running")
    args = ap.parse_args()
    models = [str(Path(args.run) / "models" / f"{m}.onnx") for m in MODELS]
    command = ["edgekit", "bench", *models, *[a for t in TARGETS for a in ("--target", t)],
               "--dataset", "fashion-mnist", "--out", args.out, "--force"]
    if args.test_limit:
        command += ["--test-limit", str(args.test_limit)]
    if not args.reuse:
        subprocess.run(command, check=False)  # exit 1 is expected: the nvidia-cuda rows fail or skip
    report = json.loads((Path(args.out) / "report.json").read_text())
    checks, notes = _checks(report, _quantization(Path(args.run)))
    from edgekit.fsutil import sha256_file

    stale = [a["name"] for a in report["artifacts"] if sha256_file(Path(a["path"])) != a["sha256"]]
    checks.insert(0, (f"the benchmarked files are the current {args.run} models"
                      + (f" (changed since: {', '.join(stale)})" if stale else ""), not stale))
    test_n = report["dataset"]["test_size"]
    body = "\n".join([
        "## The same ONNX models on x86, emulated ARM64 and CUDA", "",
        f"Command: `{shlex.join(command)}` (written by `python benchmarks/targets_fashion.py`). "
        f"Accuracy on {test_n} Fashion-MNIST test images"
        + (" (the full test set)." if not args.test_limit else f" (`--test-limit {args.test_limit}`)."), "",
        "Models (sha256, first 12): " + ", ".join(f"`{a['name']}` {a['sha256'][:12]}" for a in report["artifacts"])
        + f" — from `{args.run}`, the run recorded in the pipeline-fashion section.", "",
        f"Machine: {machine_line()}. Benchmark took {report.get('seconds', 0):.0f} s. "
        f"{ARM} latency is qemu-user emulation (marked *(emulated)*): it compares models with each other on that "
        "target only and is not ARM device speed. Accuracy and agreement on ARM are real: the aarch64 ONNX Runtime "
        "kernels computed them.", "",
        _table(report), "",
        *[f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks],
        *[f"- Note: {n}" for n in notes],
    ])
    update_section("targets-fashion", body)
    print(body)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
