"""Issue 2's figures: the default `edgekit compress` on the full Fashion-MNIST (and issue 8's goals for the
chosen artifact: ≥ 10× smaller, ≥ 2× faster at batch 1, within 0.5 pp).

Runs the command below, checks the issues' goals and writes the table into
benchmarks/RESULTS.md and README.md (section "pipeline-fashion").

    python benchmarks/pipeline_fashion.py [--out runs/fm]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import README_PATH, machine_line, update_section  # noqa: E402

from edgekit.report.markdown import render_table  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/fm")
    ap.add_argument("--reuse", action="store_true", help="read an existing run's report.json instead of running")
    args = ap.parse_args()
    command = ["edgekit", "compress", "--dataset", "fashion-mnist", "--out", args.out, "--force"]
    if not args.reuse:
        subprocess.run(command, check=False)
    report = json.loads((Path(args.out) / "report.json").read_text())
    arts = {a["name"]: a for a in report["artifacts"]}
    base = arts["baseline"]["accuracy"] * 100
    checks = [(f"baseline test accuracy {base:.2f} % ≥ 90.5 %", base >= 90.5)]
    for fmt in ("tflite", "onnx"):
        a = arts[f"pruned-int8-{fmt}"]
        drop = base - a["accuracy"] * 100
        ratio = a["bytes"] / arts[f"baseline-{fmt}"]["bytes"]
        checks.append((f"pruned int8 {fmt}: accuracy drop {drop:.2f} pp ≤ 1.0 pp", drop <= 1.0))
        checks.append((f"pruned int8 {fmt}: {ratio:.3f} × the fp32 {fmt} bytes ≤ 0.30", ratio <= 0.30))
    checks += chosen_checks(report)
    body = "\n".join([
        "## The default pipeline on Fashion-MNIST (issue 2)", "",
        f"Command: `{' '.join(command)}` (written by `python benchmarks/pipeline_fashion.py`)", "",
        f"Machine: {machine_line()}. Run took {report.get('seconds', 0):.0f} s. "
        "Latency is shared-machine wall time: compare rows within this table, not across machines.", "",
        render_table(report), "",
        *[f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks],
    ])
    update_section("pipeline-fashion", body)
    update_section("pipeline-fashion", body, README_PATH)
    print(body)
    return 0 if all(ok for _, ok in checks) else 1


def _p50(report: dict, artifact_id: str) -> float | None:
    """Batch-1, 1-thread p50 (ms) of an artifact on the run's first target."""
    target = report["targets"][0]["name"] if report.get("targets") else ""
    for b in report["benchmarks"]:
        if (b["artifact_id"], b["target"], b["batch_size"], b["threads"], b["status"]) == (artifact_id, target, 1, 1, "ok"):
            return float(b["latency_ms"]["p50"])
    return None


def chosen_checks(report: dict) -> list[tuple[str, bool]]:
    """Issue 8's goals for the artifact the default run hands out: ≥ 10× smaller and ≥ 2× faster (batch 1, its
    runtime) than the fp32 baseline of its format, within 0.5 pp test accuracy."""
    arts = {a["id"]: a for a in report["artifacts"]}
    chosen = arts.get(report.get("chosen_id") or "")
    if chosen is None:
        return [("issue 8: an artifact was chosen", False)]
    base = next(a for a in report["artifacts"] if a["name"] == f"baseline-{chosen['format']}")
    ratio = base["bytes"] / chosen["bytes"]
    drop = (arts[report["baseline_id"]]["accuracy"] - chosen["accuracy"]) * 100
    lat, base_lat = _p50(report, chosen["id"]), _p50(report, base["id"])
    speed = base_lat / lat if lat and base_lat else 0.0
    name = f"issue 8, chosen {chosen['name']} ({chosen['precision']})"
    return [(f"{name}: {ratio:.2f}× smaller than {base['name']} (goal ≥ 10×)", ratio >= 10),
            (f"{name}: {speed:.2f}× faster at batch 1, 1 thread (p50 {lat} vs {base_lat} ms; goal ≥ 2×)", speed >= 2),
            (f"{name}: test accuracy {-drop:+.2f} pp against the trained model (goal within 0.5 pp)", drop <= 0.5)]


if __name__ == "__main__":
    sys.exit(main())
