"""How much the reference CNN's Fashion-MNIST accuracy moves with the seed (and Adam's learning rate).

Trains the reference CNN exactly as `edgekit compress` does (54,000 training images, 6,000 held out for
validation, 5 epochs, batch 64) for each seed × learning rate and records validation and test accuracy
in benchmarks/RESULTS.md (section "baseline-variance").

    python benchmarks/baseline_variance.py [--seeds 0,1,2] [--lrs 0.001,0.002]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine_line, update_section  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--lrs", default="0.001,0.002")
    args = ap.parse_args()
    from edgekit.data.datasets import load_dataset
    from edgekit.models.reference import build_reference_cnn
    from edgekit.train.trainer import FitSettings, fit, predict, seed_everything

    ds = load_dataset("fashion-mnist")
    rows, by_lr = [], {}
    for lr in (float(v) for v in args.lrs.split(",")):
        for seed in (int(v) for v in args.seeds.split(",")):
            seed_everything(seed)
            model = build_reference_cnn()
            t0 = time.perf_counter()
            hist = fit(model, ds.x_train, ds.y_train, FitSettings(5, 64, lr), validation=(ds.x_val, ds.y_val))
            test = float((predict(model, ds.x_test).argmax(1) == ds.y_test).mean())
            rows.append(f"| {lr:g} | {seed} | {hist['val_accuracy'][-1] * 100:.2f} % | {test * 100:.2f} % | {time.perf_counter() - t0:.0f} |")
            by_lr.setdefault(lr, []).append(test)
            print(rows[-1], flush=True)
    summary = [f"- learning rate {lr:g}: test accuracy mean {statistics.fmean(v) * 100:.2f} %, "
               f"min {min(v) * 100:.2f} %, max {max(v) * 100:.2f} % over {len(v)} seeds" for lr, v in by_lr.items()]
    body = "\n".join([
        "## Reference CNN on Fashion-MNIST: seed and learning-rate spread", "",
        f"Command: `python benchmarks/baseline_variance.py --seeds {args.seeds} --lrs {args.lrs}`", "",
        f"Machine: {machine_line()}.", "",
        "Training as `edgekit compress` does it: 54,000 training images (6,000 held out for validation), "
        "5 epochs, batch 64, Adam.", "",
        "| Adam learning rate | seed | validation accuracy | test accuracy | seconds |", "|---|---|---|---|---|",
        *rows, "", *summary,
    ])
    update_section("baseline-variance", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
