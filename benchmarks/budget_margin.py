"""How wide the accuracy budget's statistical margin is on a finished run.

For each deployable file of each run folder: its validation drop against the trained model, paired image by
image, and the one-sided 95 % upper bound the chooser judges (edgekit.compression.budget.paired_drop_bound),
next to the test-split drop the choice never saw. The trained model is represented by the fp32 ONNX export of
it (the plain conversion: the script then needs no TensorFlow; the chooser itself pairs with the Keras model).
Writes the ``budget-margin`` section of benchmarks/RESULTS.md.

    python benchmarks/budget_margin.py runs/rules-default runs/wire-fm
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402

from edgekit.compression.budget import paired_drop_bound  # noqa: E402
from edgekit.data.datasets import load_dataset  # noqa: E402
from edgekit.evaluate import predict_file  # noqa: E402


def _dataset(report: dict[str, Any]) -> Any:
    c = report["config"]
    return load_dataset(c["dataset"], data_dir=c.get("data_dir"), train_limit=c.get("train_limit"),
                        test_limit=c.get("test_limit"), seed=c.get("seed", 0), image_size=c.get("image_size", 28),
                        color=c.get("color", "grayscale"))


def rows_for(run: Path) -> list[dict[str, Any]]:
    """One row per deployable artifact of ``run``: validation drop and bound, test drop, chosen or not."""
    report = json.loads((run / "report.json").read_text())
    ds = _dataset(report)
    arts = {a["name"]: a for a in report["artifacts"]}
    deployable = [a for a in report["artifacts"] if a["format"] in ("tflite", "onnx")]
    ref_art = next(a for a in deployable if a["format"] == "onnx" and a["stage"] == "export.onnx"
                   and arts.get("baseline", {}).get("id") == a["parent_id"])

    def correct(a: dict[str, Any], x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(predict_file(str(run / a["path"]), a["format"], x).argmax(1) == y)

    ref_val, ref_test = correct(ref_art, ds.x_val, ds.y_val), correct(ref_art, ds.x_test, ds.y_test)
    out = []
    for a in deployable:
        b = paired_drop_bound(ref_val, correct(a, ds.x_val, ds.y_val))
        test = paired_drop_bound(ref_test, correct(a, ds.x_test, ds.y_test))
        out.append({"run": run.name, "artifact": a["name"], "chosen": a["id"] == report["chosen_id"], "n_val": b.n,
                    "val_drop": b.drop_pp, "bound": b.bound_pp, "lost": b.lost, "gained": b.gained,
                    "n_test": test.n, "test_drop": test.drop_pp})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished edgekit compress run folders")
    args = ap.parse_args(argv)
    rows = [r for run in args.runs for r in rows_for(run)]
    lines = ["## The budget's statistical margin", "",
             f"Command: `python benchmarks/budget_margin.py {' '.join(str(r) for r in args.runs)}`", "",
             f"Machine: {machine_line()}. Drops in pp against the trained model (its fp32 ONNX export), paired per "
             "image; bound: one-sided 95 % paired Wald upper bound on the flipped images (what the chooser "
             "judges against the budget); margin = bound − drop.", "",
             "| run | artifact | val images | val drop | bound | margin | lost / gained | test images | test drop |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = r["artifact"] + (" **(chosen)**" if r["chosen"] else "")
        lines.append(f"| {r['run']} | {name} | {r['n_val']} | {r['val_drop']:+.2f} | {r['bound']:+.2f} | "
                     f"{r['bound'] - r['val_drop']:.2f} | {r['lost']} / {r['gained']} | {r['n_test']} | "
                     f"{r['test_drop']:+.2f} |")
    body = "\n".join(lines) + "\n"
    update_section("budget-margin", body)
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
