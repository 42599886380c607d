"""``edgekit compress``: the whole pipeline from the command line.

Its flags are generated from :class:`edgekit.config.CompressConfig`'s fields (and the flags the
registered stages declare): names, types, groups and help all come from the field metadata. Every
flag defaults to "not given", so a --recipe's value stands unless the flag overrides it; flag
values then take the same checks as recipe keys (:func:`edgekit.config.make_config`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args, get_origin

from edgekit.commands import recorded_command

EXAMPLES = """\
examples:
  # the default closed loop: train, prune per layer inside a 1 pp validation-accuracy budget, int8 TFLite +
  # ONNX (guilty layers kept in float) and float16 TFLite verified against it, benchmark on this CPU, hand
  # out the smallest file that is not slower than fp32
  edgekit compress --dataset fashion-mnist --out runs/fm

  # your Keras model and data, in every quantization mode
  edgekit compress --model my.keras --data-dir data/ --quantization {modes}

  # search the recipe grid for the smallest model within 0.5 pp, also timed on emulated ARM64 (--goal smallest
  # instead: the budgeted search with longer fine-tuning and per-tensor int8, edgekit/goals.py)
  edgekit compress --dataset fashion-mnist --search --max-accuracy-drop 0.5 --targets x86-cpu,arm64-qemu

  # a recipe (flat keys or nested tables such as `prune: {sparsity: 0.5}`), one flag overriding it; an explicit
  # pruning value is honoured, and past the budget the run ends over_budget (exit 1)
  edgekit compress --recipe examples/recipes/smallest.yaml --sparsity 0.7

  # a one-minute smoke run
  edgekit compress --dataset digits --epochs 1 --train-limit 300 --no-bench --out /tmp/smoke
"""


def _csv(item: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(value: str) -> tuple[Any, ...]:
        return tuple(item(v.strip()) for v in value.split(",") if v.strip())

    parse.__name__ = f"comma-separated {item.__name__}"  # argparse names it in "invalid … value"
    return parse


def _table(item: Callable[[str], Any]) -> Callable[[str], dict[str, Any]]:
    def parse(value: str) -> dict[str, Any]:
        out = {}
        for part in (p.strip() for p in value.split(",") if p.strip()):
            name, sep, v = part.partition("=")
            if not sep:
                raise ValueError(part)
            out[name.strip()] = item(v.strip())
        return out

    parse.__name__ = f"NAME={item.__name__}[,...]"
    return parse


def _parser_for(tp: Any) -> Callable[[str], Any]:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _parser_for(next(a for a in get_args(tp) if a is not type(None)))
    if origin in (list, tuple):
        return _csv(_parser_for(get_args(tp)[0]))
    if origin is dict:
        return _table(_parser_for(get_args(tp)[1]))
    if tp in (int, float):
        return tp  # type: ignore[no-any-return]
    return str


def _metavar(f: dataclasses.Field[Any], tp: Any, choices: tuple[str, ...] | None) -> str | None:
    if choices:
        items = ",".join(choices)
        return f"{{{items}}}[,...]" if get_origin(tp) in (list, tuple) else f"{{{items}}}"
    origin = get_origin(tp)
    if origin in (list, tuple):
        return "X[,X...]"
    if origin is dict:
        return "NAME=X[,...]"
    if origin in (typing.Union, types.UnionType):
        tp = next(a for a in get_args(tp) if a is not type(None))
    return {int: "N", float: "X"}.get(tp, "VALUE")


def _help(f: dataclasses.Field[Any], tp: Any) -> str:
    text = str(f.metadata.get("help", ""))
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if default in (None, "", (), {}) or tp is bool:
        return text
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    return f"{text} (default: {shown})"


def config_flags(keys: Iterable[str] | None = None) -> list[tuple[str, dataclasses.Field[Any], Any]]:
    """(key, field, type) of every flag ``compress`` takes from the config layer, in field order.

    ``keys`` picks a subset (``edgekit tune`` shares the data and training flags).
    """
    from edgekit.config import CompressConfig, flag_owners
    from edgekit.schema import hints

    out = []
    fields = {f.name: f for f in dataclasses.fields(CompressConfig) if f.metadata.get("group")}
    for name, f in fields.items():
        out.append((name, f, hints(CompressConfig)[name]))
    for key, (stage, f) in flag_owners().items():  # flags of registered stages that have no CompressConfig field
        if key not in fields:
            meta = {**f.metadata, "group": f.metadata.get("group") or stage.group or "quantization"}
            out.append((key, dataclasses.field(default=f.default, default_factory=f.default_factory,  # type: ignore[call-overload]
                                               metadata=meta), hints(stage.config_type)[f.name]))
    wanted = set(keys) if keys is not None else None
    return [row for row in out if wanted is None or row[0] in wanted]


def add_config_arguments(p: argparse.ArgumentParser, keys: Iterable[str] | None = None,
                         groups: dict[str, Any] | None = None) -> list[str]:
    """Add the config-layer flags to ``p`` in argument groups (made here unless given, by title);
    returns their keys (the ``args`` attributes)."""
    from edgekit.config import GROUPS

    groups = groups if groups is not None else {g: p.add_argument_group(g) for g in GROUPS}
    added = []
    for key, f, tp in config_flags(keys):
        group = groups.get(f.metadata["group"]) or groups.setdefault(f.metadata["group"],
                                                                     p.add_argument_group(f.metadata["group"]))
        add_field_argument(group, key, f, tp)
        added.append(key)
    return added


def add_field_argument(group: Any, key: str, f: dataclasses.Field[Any], tp: Any) -> None:
    """One config field as a flag of ``group`` (a parser or argument group): its name, type, choices and
    help come from the field; its default is "not given" (None), so the field's own default applies."""
    from edgekit.schema import choices_of, flag_name

    if tp is bool:
        on = f.default is not True
        group.add_argument(flag_name(key) if on else flag_name(f"no_{key}"), dest=key, action="store_const",
                           const=on, default=None, help=str(f.metadata.get("help", "")) if on else
                           f"do not {f.metadata.get('help', key)}")
    elif key == "devices_dir":
        group.add_argument(flag_name(key), dest=key, action="append", default=None, metavar="DIR",
                           help=f"{f.metadata.get('help', '')} (repeatable)")
    else:
        choices = choices_of(f)
        if choices is None and get_origin(tp) is Literal:
            choices = tuple(get_args(tp))
        group.add_argument(flag_name(key), dest=key, type=_parser_for(tp), default=None,
                           metavar=_metavar(f, tp, choices), help=_help(f, tp))


def _quantization_help() -> str:
    from edgekit.stages import quant_modes

    modes = quant_modes()
    width = max(map(len, modes), default=0)
    return "\n".join(f"  {m:<{width}}  {s.description}" for m, s in modes.items())


def add_arguments(p: argparse.ArgumentParser) -> None:
    from edgekit.stages import quant_modes

    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the examples' and modes' line breaks
    p.epilog = EXAMPLES.replace("{modes}", ",".join(quant_modes()))
    p.description = f"{p.description or ''}\n\nquantization modes (--quantization):\n{_quantization_help()}".strip()
    from edgekit.config import GROUPS

    groups = {g: p.add_argument_group(g) for g in GROUPS}
    groups["output"].add_argument("--out", metavar="DIR", help="run folder (default: runs/<timestamp>)")
    groups["output"].add_argument("--force", action="store_true", help="replace an existing --out run folder")
    groups["output"].add_argument("--recipe", metavar="FILE",
                                  help="YAML recipe with the same keys as these flags (flat, or nested by stage)")
    p.set_defaults(_config_keys=add_config_arguments(p, groups=groups))


def run(args: argparse.Namespace) -> int:
    from edgekit.config import make_config
    from edgekit.console import enable_progress
    from edgekit.pipeline import compress

    overrides = {key: getattr(args, key) for key in args._config_keys if getattr(args, key) is not None}
    cfg = make_config(args.recipe, overrides)
    enable_progress(not args.quiet)
    result = compress(cfg, args.out, force=args.force, command=recorded_command(args))
    if not args.quiet:
        from edgekit.report.markdown import render_table

        print(render_table(result.report))
        print(f"\nwrote {result.out}/report.md, report.json, report.html and models/ ({result.report['status']})")
    for warning in result.report.get("warnings", []):
        print(f"edgekit: warning: {' '.join(str(warning).split())}", file=sys.stderr)
    for problem in result.report.get("problems", []):
        print(f"edgekit: {problem}", file=sys.stderr)
    status = result.report["status"]
    why = {"over_budget": f": an explicit pruning value breaks the {result.report['config']['max_accuracy_drop']:g} pp "
           "accuracy budget (see the warnings)", "failed": ": see the problems above"}.get(status, "")
    if status != "ok" or not args.quiet:
        print(f"edgekit: status {status}{why}", file=sys.stderr)
    return 0 if result.ok else 1
