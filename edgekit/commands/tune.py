"""``edgekit tune``: search training settings on Ray Tune, write DIR/recipe.yaml for ``compress --recipe``."""

from __future__ import annotations

import argparse
import sys

from edgekit.commands import recorded_command

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

# the CompressConfig keys tune shares with compress (data, model, training, cache): their flags, help,
# defaults and checks come from the config layer, as compress's do
CONFIG_KEYS = ("dataset", "data_dir", "image_size", "color", "train_limit", "test_limit", "seed", "epochs",
               "batch_size", "learning_rate", "augment", "model", "trust_model", "cache_dir")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgekit.commands.compress import add_config_arguments, add_field_argument
    from edgekit.schema import hints
    from edgekit.tuning.options import GROUP, TuneOptions, cli_fields

    groups = {g: p.add_argument_group(g) for g in (GROUP, "data", "training", "output")}
    for f in cli_fields():  # tune's own options: TuneOptions' fields
        add_field_argument(groups[GROUP], f.name, f, hints(TuneOptions)[f.name])
    p.set_defaults(_tune_keys=[f.name for f in cli_fields()])
    groups["output"].add_argument("--out", metavar="DIR",
                                  help="output folder for recipe.yaml and report.* (default: runs/tune-<timestamp>)")
    groups["output"].add_argument("--force", action="store_true", help="replace an existing --out run folder")
    groups["output"].add_argument("--recipe", metavar="FILE",
                                  help="YAML recipe with compress's keys: the fixed settings trials start from")
    p.set_defaults(_config_keys=add_config_arguments(p, CONFIG_KEYS, groups=groups))


def run(args: argparse.Namespace) -> int:
    from edgekit.config import make_config
    from edgekit.console import enable_progress
    from edgekit.tuning import TuneOptions, tune

    overrides = {key: getattr(args, key) for key in args._config_keys if getattr(args, key) is not None}
    cfg = make_config(args.recipe, overrides)
    options = TuneOptions(**{key: getattr(args, key) for key in args._tune_keys if getattr(args, key) is not None})
    enable_progress(not args.quiet)
    result = tune(cfg, args.out, options, force=args.force, command=recorded_command(args))
    if not args.quiet:
        from edgekit.tuning.render import trials_markdown

        print(trials_markdown(result.report))
        print(f"wrote {result.out}/recipe.yaml and report.md, report.json, report.html")
        print(f"next: edgekit compress --recipe {result.out}/recipe.yaml")
    for warning in result.report.get("warnings", []):
        print(f"edgekit: warning: {warning}", file=sys.stderr)
    return 0
