"""``edgekit tune``: search training settings on Ray Tune, write DIR/recipe.yaml for ``compress --recipe``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

EXAMPLES = """\
examples:
  # tune the reference CNN on Fashion-MNIST on this machine's cores, then compress from the winner
  edgekit tune --dataset fashion-mnist --trials 12 --out runs/tuned
  edgekit compress --recipe runs/tuned/recipe.yaml --dataset fashion-mnist

  # your own search space (keys replace the default's), ASHA stops no trial before epoch 3
  edgekit tune --dataset fashion-mnist --space space.yaml --grace-period 3 --out runs/tuned

  # fine-tune your model (which layers to freeze is searched too)
  edgekit tune --model my.keras --data-dir data/ --trials 8 --out runs/tuned-mine

  # on an existing Ray cluster (`ray start --head` there), with a cache folder every node shares
  edgekit tune --dataset fashion-mnist --ray-address 10.0.0.5:6379 --cache-dir /shared/edgekit --out runs/tuned
"""

# flag → (config key, type): the data, model and training options shared with ``compress``;
# help texts come from CompressConfig's field metadata.
FLAGS: list[tuple[str, str, type]] = [
    ("--dataset", "dataset", str), ("--data-dir", "data_dir", str), ("--image-size", "image_size", int),
    ("--color", "color", str), ("--train-limit", "train_limit", int), ("--test-limit", "test_limit", int),
    ("--seed", "seed", int), ("--epochs", "epochs", int), ("--batch-size", "batch_size", int),
    ("--learning-rate", "learning_rate", float), ("--model", "model", str),
]
SWITCHES: list[tuple[str, str]] = [("--augment", "augment"), ("--trust-model", "trust_model")]


def _help(key: str) -> str:
    import dataclasses

    from edgekit.config import CompressConfig

    for f in dataclasses.fields(CompressConfig):
        if f.name == key:
            return str(f.metadata.get("help", ""))
    return ""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trials", type=int, default=8, help="how many trials to run (default 8)")
    p.add_argument("--out", help="output folder for recipe.yaml and report.* (default: runs/tune-<timestamp>)")
    p.add_argument("--force", action="store_true", help="replace an existing recipe/report in --out")
    p.add_argument("--recipe", help="YAML recipe with compress's keys: the fixed settings trials start from")
    p.add_argument("--space", help="YAML search space (keys replace the default space's)")
    p.add_argument("--grace-period", type=int, default=1,
                   help="epochs every trial runs before ASHA may stop it (default 1; larger favours long schedules)")
    p.add_argument("--ray-address", help="HOST:PORT of an existing Ray cluster (default: RAY_ADDRESS, else a local Ray)")
    p.add_argument("--workers", type=int, help="local Ray: CPUs to use (default: all cores)")
    p.add_argument("--cache-dir", help="shared cache folder every node reads (sets EDGEKIT_CACHE_DIR)")
    for flag, key, typ in FLAGS:
        p.add_argument(flag, dest=key, type=typ, default=None, help=_help(key))
    for flag, key in SWITCHES:
        p.add_argument(flag, dest=key, action="store_const", const=True, default=None, help=_help(key))


def run(args: argparse.Namespace) -> int:
    from edgekit.config import make_config
    from edgekit.console import enable_progress

    if args.cache_dir:
        os.environ["EDGEKIT_CACHE_DIR"] = os.path.abspath(args.cache_dir)
    from edgekit.tuning import tune

    overrides = {key: getattr(args, key) for _, key, *_ in FLAGS + SWITCHES if getattr(args, key) is not None}
    cfg = make_config(args.recipe, overrides)
    enable_progress(not args.quiet)
    command = "edgekit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = tune(cfg, args.out, trials=args.trials, space=args.space, ray_address=args.ray_address,
                  workers=args.workers, force=args.force, command=command, grace_period=args.grace_period)
    if not args.quiet:
        from edgekit.tuning.render import trials_markdown

        print(trials_markdown(result.report))
        print(f"wrote {result.out}/recipe.yaml and report.md, report.json, report.html")
        print(f"next: edgekit compress --recipe {result.out}/recipe.yaml")
    for warning in result.report.get("warnings", []):
        print(f"edgekit: warning: {warning}", file=sys.stderr)
    return 0
