"""How pruning's fine-tuning policy changes which images a model gets right (churn), on full Fashion-MNIST.

    python benchmarks/prune_churn.py [--work /tmp/churn] [--policies labels,distill05,distill1,lr01] [--epochs 5]
    python benchmarks/prune_churn.py --train-limit 4000 --seeds 0,1,2   # small data: section prune-churn-small
    python benchmarks/prune_churn.py --brought RUN --data-dir DATA.npz --levels '{"sep2": 0.3}'  # a brought model

Certification (:mod:`edgekit.rules`) bounds a pruned file's drop by the images whose correctness changed against
the trained model: a fine-tune that reshuffles 5 % of them cannot be certified within 1 pp on 2,000 images even
when it loses nothing on average. This trains the reference CNN (``--epochs``, the default recipe, kept in
``--work``), then magnitude-prunes it the way the default run's budgeted search did (conv1 0.3, conv2 0.8, dense1
0.9, output 0.3; 3 fine-tuning epochs, the polynomial schedule) under each fine-tuning policy, from the same seed:

- ``labels``: the stage's rate and BatchNorm in training mode, on the labels alone;
- ``distill05`` / ``distill1``: the same with half / all of each target from the parent's distribution;
- ``lr01``: the labels at a tenth of the rate; ``distill05-lr01`` / ``distill1-lr01``: distillation at a tenth;
- ``distill05-cos`` / ``distill03-cos``: half / 30 % from the parent, the rate decaying to zero (cosine).

``--brought``: the reference model of an ``edgekit compress --model`` run (``models/baseline.keras``) on the same
data file instead, pruned to ``--levels`` (the levels of an attempt its budgeted search made): section
``prune-churn-brought``.

Columns: the test drop against the trained model (negative: a gain), test images lost / gained / any prediction
changed, and the certificate the 6,000 certification images give it (half the 95 % error, the bound
:func:`edgekit.rules.reshuffles` picks). Writes the ``prune-churn`` section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
SECTION = "prune-churn"
PER_LAYER = {"conv1": 0.3, "conv2": 0.8, "dense1": 0.9, "output": 0.3}


def policies() -> dict[str, Any]:
    from edgekit.train.trainer import MAGNITUDE_FINE_TUNE

    labels = replace(MAGNITUDE_FINE_TUNE, distill=0.0)
    return {"labels": labels, "distill05": replace(labels, distill=0.5), "distill1": replace(labels, distill=1.0),
            "lr01": replace(labels, lr_scale=0.1), "distill05-lr01": replace(labels, distill=0.5, lr_scale=0.1),
            "distill1-lr01": replace(labels, distill=1.0, lr_scale=0.1),
            "distill05-cos": replace(labels, distill=0.5, lr_schedule="cosine"),
            "distill03-cos": replace(labels, distill=0.3, lr_schedule="cosine")}


def measure(model: Any, ds: Any, name: str, policy: Any, seed: int = 0,
            per_layer: dict[str, float] | None = None) -> dict[str, Any]:
    from edgekit.compression.prune import MagnitudePruneConfig, magnitude_prune
    from edgekit.rules import discordant_upper, paired_upper, reshuffles
    from edgekit.train.trainer import predict, seed_everything

    ref_test, ref_cert = predict(model, ds.x_test).argmax(1), predict(model, ds.x_cert).argmax(1)
    seed_everything(seed)
    started = time.perf_counter()
    pruned = magnitude_prune(model, ds.x_train, ds.y_train, MagnitudePruneConfig(per_layer=per_layer or PER_LAYER),
                             policy=policy)
    seconds = time.perf_counter() - started
    test, cert = predict(pruned, ds.x_test).argmax(1), predict(pruned, ds.x_cert).argmax(1)
    ref_ok, ok = ref_test == ds.y_test, test == ds.y_test
    cref_ok, cok = ref_cert == ds.y_cert, cert == ds.y_cert
    lost, gained = int((cref_ok & ~cok).sum()), int((~cref_ok & cok).sum())
    n = len(ds.y_cert)
    bound = (discordant_upper(lost, gained, n, 0.025) if reshuffles(lost, gained, n, n)
             else paired_upper(lost, gained, n, 0.0125))
    return {"policy": name, "seed": seed, "seconds": seconds, "drop_pp": 100 * float(ref_ok.mean() - ok.mean()),
            "lost": int((ref_ok & ~ok).sum()), "gained": int((~ref_ok & ok).sum()),
            "changed": int((test != ref_test).sum()), "n_test": len(ok), "cert_lost": lost, "cert_gained": gained,
            "n_cert": n, "bound_pp": 100 * bound}


def markdown(rows: list[dict[str, Any]], command: str, epochs: int, ds: Any, small: bool,
             brought: str | None = None, per_layer: dict[str, float] | None = None) -> str:
    from _results import machine_line

    levels = ", ".join(f"{k} {v:g}" for k, v in (per_layer or PER_LAYER).items())
    if brought:
        title = f"{brought}, a model users bring, {len(ds.y_train):,} training images"
        model = f"The run's reference model ({brought}: the model as brought, or fine-tuned where that was kept)"
    else:
        title = "reference CNN, " + (f"{len(ds.y_train):,} training images of Fashion-MNIST" if small
                                     else "full Fashion-MNIST")
        model = f"The reference CNN trained {epochs} epochs"
    lines = [f"## Pruning's fine-tuning and churn ({title})", "",
             f"Command: `{command}`", "", f"Machine: {machine_line()}.", "",
             f"{model}; magnitude pruning to {levels} while fine-tuning 3 epochs, one policy and pruning seed per "
             f"row. Test: {len(ds.y_test):,} images against that model; certificate: the {len(ds.y_cert):,} "
             "certification images, half the 95 % error.", "",
             "| policy | seed | test drop pp | test lost / gained | test correctness changed | predictions changed | "
             "certification lost / gained | certificate pp | fine-tuning s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['policy']} | {r['seed']} | {r['drop_pp']:+.2f} | {r['lost']} / {r['gained']} | "
                     f"{100 * (r['lost'] + r['gained']) / r['n_test']:.2f} % | "
                     f"{100 * r['changed'] / r['n_test']:.2f} % | "
                     f"{r['cert_lost']} / {r['cert_gained']} | {r['bound_pp']:.2f} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/churn", help="where the trained model is kept (reused)")
    ap.add_argument("--policies", default="labels,distill05,distill1,lr01")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--train-limit", type=int, default=None,
                    help="train on this many images (small data; writes section prune-churn-small)")
    ap.add_argument("--seeds", default="0", help="comma-separated pruning seeds, a row each")
    ap.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md alone")
    ap.add_argument("--brought", type=Path, default=None,
                    help="a compress run on a brought model: prune its reference (models/baseline.keras) instead "
                         "(with --data-dir; writes section prune-churn-brought)")
    ap.add_argument("--data-dir", type=Path, default=None, help="the run's data (with --brought)")
    ap.add_argument("--levels", default=None, help='per-layer sparsities as JSON, e.g. {"sep2": 0.3}')
    ap.add_argument("--section", default=None, help="the RESULTS.md section to write (default: by the data)")
    args = ap.parse_args(argv)
    from _results import update_section
    from _testmodels import trained_reference_cnn

    from edgekit.data.datasets import load_dataset

    table = policies()
    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in table]
    if unknown:
        ap.error(f"unknown policy {unknown[0]!r} (choose from {', '.join(table)})")
    per_layer = json.loads(args.levels) if args.levels else None
    if args.brought is not None:
        if args.data_dir is None:
            ap.error("--brought needs --data-dir (the run's data)")
        from edgekit.models.files import load_keras_file

        ds = load_dataset(data_dir=args.data_dir, seed=0)  # the splits compress made from the same file
        model = load_keras_file(args.brought / "models" / "baseline.keras")
    else:
        ds = load_dataset("fashion-mnist", seed=0, train_limit=args.train_limit)
        tag = f"-n{args.train_limit}" if args.train_limit else ""
        model = trained_reference_cnn(Path(args.work) / f"ref-e{args.epochs}{tag}.keras", ds, args.epochs)
    command = "python benchmarks/prune_churn.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    rows = []
    for seed in (int(v) for v in args.seeds.split(",")):
        for name in names:
            rows.append(measure(model, ds, name, table[name], seed, per_layer))
            print(rows[-1], flush=True)
    brought = args.brought.parent.name if args.brought is not None else None
    body = markdown(rows, command.strip(), args.epochs, ds, bool(args.train_limit), brought, per_layer)
    print(body)
    if not args.no_write:
        update_section(args.section or SECTION + ("-brought" if brought else "-small" if args.train_limit else ""),
                       body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
