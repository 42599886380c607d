"""``edgekit tune``: search training settings with Ray Tune and ASHA, write the winner as a recipe.

Selection is on validation accuracy only: the winner is the trial that finished its
epochs with the highest final validation accuracy (ties: the earlier trial). The
test split never reaches a trial; it is evaluated once, for the winner, here.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.cache import using_cache_dir
from edgekit.config import CompressConfig
from edgekit.console import progress
from edgekit.errors import SearchError, UsageError
from edgekit.rundir import check_out, staged_run
from edgekit.schema import short, suggest
from edgekit.tuning.options import TuneOptions
from edgekit.tuning.space import Domain, load_space, max_epochs
from edgekit.tuning.trial import METRIC, MODEL_FILE, TrialSetup, run_trial

log = logging.getLogger(__name__)

# the training keys a tuned recipe may set; those CompressConfig does not know yet are written as comments
TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "lr_schedule", "warmup_epochs", "augment",
                 "augment_strength", "label_smoothing", "weight_decay", "freeze_layers", "seed")
# what the trainer does when a key is absent (the reference recipe)
TRAINING_DEFAULTS: dict[str, Any] = {"lr_schedule": "constant", "warmup_epochs": 0, "augment_strength": 1.0,
                                     "label_smoothing": 0.0, "weight_decay": 0.0, "freeze_layers": 0}


@dataclass(frozen=True)
class TuneResult:
    """What ``edgekit.tune`` returns: every trial, the best one and its recipe (CompressConfig keys)."""

    trials: list[dict[str, Any]]
    best: dict[str, Any]
    recipe: dict[str, Any]
    report: dict[str, Any]
    out: Path
    unsupported: dict[str, Any] = field(default_factory=dict)  # winner settings CompressConfig cannot express yet


def config_keys() -> set[str]:
    return {f.name for f in dataclasses.fields(CompressConfig)}


def base_training(cfg: CompressConfig) -> dict[str, Any]:
    """The training keys of ``cfg`` (the ones a trial does not vary keep these values)."""
    base = {k: getattr(cfg, k) for k in ("epochs", "batch_size", "learning_rate", "augment")}
    section = getattr(cfg, "stage_settings", {}).get("train", {})
    for k, default in TRAINING_DEFAULTS.items():
        base[k] = section.get(k, getattr(cfg, k, default))
    if not cfg.augment:
        base["augment_strength"] = 0.0
    return base


def accepted_keys() -> tuple[set[str], dict[str, str]]:
    """(keys a recipe takes at its top level, train-stage keys it takes only in their section → section)."""
    flat = config_keys()
    nested: dict[str, str] = {}
    try:  # the stage registry's config layer (edgekit.config flag_owners / nested_fields)
        from edgekit.config import flag_owners, nested_fields
        from edgekit.stages import get_stage

        flat |= set(flag_owners())
        train = get_stage("train")
        nested = {name: train.section for name in nested_fields(train)}
    except ImportError:
        pass
    return flat, nested


def recipe_of(keys: Mapping[str, Any], seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(recipe compress accepts as it is, non-default settings it cannot express yet)."""
    flat, nested = accepted_keys()
    strength = float(keys.get("augment_strength", 0.0))
    values = {**keys, "augment": strength > 0, "seed": seed}
    if strength <= 0:
        values["augment_strength"] = TRAINING_DEFAULTS["augment_strength"]
    recipe: dict[str, Any] = {}
    unsupported: dict[str, Any] = {}
    for k in TRAINING_KEYS:
        if k not in values:
            continue
        v = values[k]
        v = v.item() if isinstance(v, np.generic) else v
        if k in flat:
            recipe[k] = v
        elif k in nested:
            if v != TRAINING_DEFAULTS.get(k):  # the section holds only what differs from the reference recipe
                recipe.setdefault(nested[k], {})[k] = v
        elif v != TRAINING_DEFAULTS.get(k):
            unsupported[k] = v
    return recipe, unsupported


def _options(options: TuneOptions | None, settings: Mapping[str, Any]) -> tuple[TuneOptions, dict[str, Domain] | None]:
    """(``options`` with ``settings`` applied and checked, the search space when given as a mapping of Domain)."""
    names = [f.name for f in dataclasses.fields(TuneOptions)]
    for key in settings:
        if key not in names:
            raise UsageError(f"edgekit.tune: unknown setting {short(key)}{suggest(key, names)} "
                             f"(known: {', '.join(names)})")
    values = dict(settings)
    domains = None
    if isinstance(values.get("space"), Mapping):
        domains = dict(values.pop("space"))
    elif isinstance(values.get("space"), os.PathLike):
        values["space"] = os.fspath(values["space"])
    return dataclasses.replace(options or TuneOptions(), **values), domains


def _recorder() -> Any:
    from ray.tune import Callback

    class Recorder(Callback):
        """Driver-side record of every trial's per-epoch validation accuracy (reset when a trial restarts)."""

        def __init__(self) -> None:
            self.history: dict[str, list[float]] = {}
            self.restarts: dict[str, int] = {}
            self.bar: Any = None  # the progress bar (set while the trials run)

        def __getstate__(self) -> dict[str, Any]:  # Tune pickles its callbacks: never the progress bar
            return {**self.__dict__, "bar": None}

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            if self.bar is not None:
                self.bar.advance()

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            if self.bar is not None:
                self.bar.advance()

        def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self.restarts[trial.trial_id] = self.restarts.get(trial.trial_id, 0) + 1  # its worker died; restarted
            log.warning("trial %s failed (its worker died?); restarting it", _trial_number(trial.trial_id))

        def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                            **info: Any) -> None:
            hist = self.history.setdefault(trial.trial_id, [])
            epoch = int(result.get("epoch", len(hist) + 1))
            if epoch <= len(hist):  # the trial was restarted after a failure: its history starts again
                del hist[epoch - 1:]
            hist.append(float(result[METRIC]))
            log.debug("trial %s epoch %d: val accuracy %.4f", _trial_number(trial.trial_id), epoch, hist[-1])
            best = max(h[-1] for h in self.history.values() if h)
            if self.bar is not None:
                self.bar.update(description=f"tune (best val {best:.4f})")

    return Recorder()


@contextmanager
def _quiet_ray_tune() -> Iterator[None]:
    """Ray Tune logs each failed trial's traceback; edgekit logs one line and records the error (unless -v)."""
    tune_log = logging.getLogger("ray.tune")
    saved = tune_log.level
    if not log.isEnabledFor(logging.DEBUG):
        tune_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        tune_log.setLevel(saved)


def _trial_number(trial_id: str) -> int:
    tail = trial_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _evaluate_test(checkpoint: Any, x: np.ndarray, y: np.ndarray) -> float:
    from edgekit.models.files import load_keras_file
    from edgekit.train.trainer import predict

    with checkpoint.as_directory() as d:
        model = load_keras_file(Path(d) / MODEL_FILE)
    return float(np.mean(np.argmax(predict(model, x), axis=1) == y))


def recipe_text(recipe: Mapping[str, Any], unsupported: Mapping[str, Any], best: Mapping[str, Any], out: Path) -> str:
    """recipe.yaml: a header naming the winner, the settings compress cannot take yet as comments, the keys."""
    import yaml

    lines = [
        f"# edgekit tune: trial {best['id']} of {best['trials']}, validation accuracy {best['val_accuracy']:.4f}, "
        f"test accuracy {best['test_accuracy']:.4f}",
        f"# use: edgekit compress --recipe {out / 'recipe.yaml'} (with the same data and --model)",
    ]
    if unsupported:
        lines.append("# not yet CompressConfig keys (compress trains without them):")
        lines += [f"#   {k}: {v}" for k, v in unsupported.items()]
    return "\n".join(lines) + "\n" + yaml.safe_dump(dict(recipe), sort_keys=False)


def _write_outputs(staging: Path, out: Path, recipe_text: str, report: dict[str, Any]) -> None:
    """recipe.yaml and report.* into ``staging`` (renamed to ``out`` once complete)."""
    from edgekit.config import make_config
    from edgekit.fsutil import write_json, write_text
    from edgekit.tuning.render import render_reports

    write_text(staging / "recipe.yaml", recipe_text)
    make_config(staging / "recipe.yaml")  # the recipe must be one compress accepts as it is
    write_json(staging / "report.json", report)
    md, html = render_reports(report, out)
    write_text(staging / "report.md", md)
    write_text(staging / "report.html", html)


def tune(cfg: CompressConfig | None = None, out: str | Path | None = None, options: TuneOptions | None = None, *,
         force: bool = False, command: str = "", **settings: Any) -> TuneResult:
    """Tune the training of ``cfg``'s model on ``cfg``'s data; write recipe.yaml and report.* into ``out``.

    ``options`` (:class:`TuneOptions`), or its fields as keywords (``trials=4``, ``grace_period=2``, …);
    ``space`` may also be a mapping of :class:`Domain` (default: :func:`default_space`). The trials run
    on ``ray_address`` (else ``RAY_ADDRESS``, else a local Ray on ``workers`` cores). ``out`` follows
    compress's rules (:mod:`edgekit.rundir`): an existing folder only with ``force``, and then only an
    edgekit run; locked while the trials run; written under a temporary name and renamed into place.
    """
    cfg = cfg or CompressConfig()  # checked when built (CompressConfig.__post_init__)
    opts, domains = _options(options, settings)
    protect = (cfg.data_dir, cfg.model, opts.space, cfg.cache_dir)
    out_path = check_out(Path(out) if out else Path("runs") / time.strftime("tune-%Y%m%d-%H%M%S"), force, protect)
    if cfg.model:
        if not Path(cfg.model).is_file():
            raise UsageError(f"--model: tune needs a model file (.keras or .h5), got {cfg.model}")
        from edgekit.models.safety import check_model_file

        check_model_file(cfg.model, cfg.trust_model)  # judged from its configuration before TensorFlow is imported
    from edgekit.executor import probe_address

    probe_address(opts.ray_address)  # before any work: Ray's own connect retries for minutes, silently
    if domains is None:
        load_space(opts.space)  # a bad --space fails here, before any data or Ray (read again with the model's layers)
    with using_cache_dir(cfg.cache_dir), staged_run(out_path, force, protect) as staging:
        return _tune(cfg, opts, domains, out_path, staging, command)


def _tune(cfg: CompressConfig, opts: TuneOptions, domains: dict[str, Domain] | None, out_path: Path, staging: Path,
          command: str) -> TuneResult:
    """The trials, the winner's test accuracy and the files (written into ``staging``, reported as ``out_path``)."""
    from edgekit.data.datasets import load_dataset
    from edgekit.executor import cache_root, open_executor

    started = time.perf_counter()
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

    weighted = 0
    if cfg.model:
        from edgekit.models.loading import load_user_model
        from edgekit.train.trainer import weighted_layer_count

        weighted = weighted_layer_count(load_user_model(cfg.model, trust=cfg.trust_model).model)
    if domains is None:
        domains = load_space(opts.space, weighted_layers=weighted)
    ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, train_limit=cfg.train_limit, test_limit=cfg.test_limit,
                      seed=cfg.seed, image_size=cfg.image_size, color=cfg.color)
    base = base_training(cfg)
    searched = {k: d for k, d in domains.items() if not (d.kind == "choice" and len(d.values) == 1)}
    fixed = {k: d.values[0] for k, d in domains.items() if k not in searched}
    base.update(fixed)
    data = {"x_train": ds.x_train, "y_train": ds.y_train, "x_val": ds.x_val, "y_val": ds.y_val}

    with open_executor(opts.ray_address, workers=opts.workers) as ex:  # imports Ray once its settings are in place
        from ray import tune as rtune
        from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search import BasicVariantGenerator

        executor_info = ex.info()
        setup = TrialSetup(base=base, seed=cfg.seed, input_shape=ds.input_shape, num_classes=ds.num_classes,
                           model=ex.share(cfg.model) if cfg.model else None, trust_model=cfg.trust_model)
        trainable = rtune.with_resources(rtune.with_parameters(run_trial, data=data, setup=setup), {"cpu": 1})
        top = max_epochs(domains) if "epochs" in domains else int(base["epochs"])
        grace = min(opts.grace_period, top)
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=top, grace_period=grace,
                                  reduction_factor=opts.reduction_factor)
        recorder = _recorder()
        name = f"tune-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        storage = cache_root() / "tune-runs"
        tuner = Tuner(
            trainable,
            param_space={k: d.to_ray() for k, d in searched.items()},
            tune_config=TuneConfig(metric=METRIC, mode="max", scheduler=scheduler, num_samples=opts.trials,
                                   search_alg=BasicVariantGenerator(random_state=cfg.seed),
                                   max_concurrent_trials=ex.workers),
            run_config=RunConfig(name=name, storage_path=str(storage), verbose=0, callbacks=[recorder],
                                 failure_config=FailureConfig(max_failures=opts.max_failures),
                                 checkpoint_config=CheckpointConfig(num_to_keep=1)),
        )
        try:
            with progress("tune", opts.trials) as bar, _quiet_ray_tune():
                recorder.bar = bar
                grid = tuner.fit()
            rows, best_result = _collect(grid, recorder, base)
            if best_result is None:
                errors = [f"trial {r['id']}: {r['error']}" for r in rows if r.get("error")]
                raise SearchError(f"none of the {opts.trials} trials finished its epochs"
                                  + (f" ({len(errors)} failed; {errors[0]})" if errors else ""))
            test_accuracy = _evaluate_test(best_result.checkpoint, ds.x_test, ds.y_test)
        finally:
            shutil.rmtree(storage / name, ignore_errors=True)

    best_row = next(r for r in rows if r["id"] == _row_id(best_result))
    recipe, unsupported = recipe_of({**base, **best_row["config"]}, cfg.seed)
    best = {"id": best_row["id"], "config": best_row["config"], "val_accuracy": best_row["val_accuracy"],
            "test_accuracy": test_accuracy, "epochs_run": best_row["epochs_run"], "recipe": recipe,
            "recipe_file": "recipe.yaml", "unsupported": unsupported, "trials": len(rows)}
    seconds = time.perf_counter() - started
    report = {
        "report_version": 1, "edgekit_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command or f"edgekit.tune(trials={opts.trials}, out={str(out_path)!r})",
        "seconds": round(seconds, 1),
        "dataset": ds.summary(), "seed": cfg.seed, "config": {**base, "model": cfg.model},
        "status": "ok", "problems": [],
        "warnings": ([f"winner uses settings CompressConfig cannot express yet: {', '.join(unsupported)}"]
                     if unsupported else []),
        "tune": {"trials": rows, "best": best, "executor": executor_info, "metric": METRIC, "selection": "validation",
                 "scheduler": {"kind": "asha", "max_t": top, "grace_period": grace,
                               "reduction_factor": opts.reduction_factor},
                 "space": {k: d.to_dict() for k, d in domains.items()}, "wall_s": round(seconds, 1)},
        "out": str(out_path),
    }
    best_text = dict(best, trials=len(rows))
    _write_outputs(staging, out_path, recipe_text(recipe, unsupported, best_text, out_path), report)
    log.info("tune: best trial %s, val %.4f, test %.4f (%d trials, %.0f s)", best["id"], best["val_accuracy"],
             test_accuracy, len(rows), seconds)
    return TuneResult(rows, best, recipe, report, out_path, unsupported)


def _row_id(result: Any) -> str:
    return str(_trial_number(str(result.metrics.get("trial_id", ""))))


def _collect(grid: Any, recorder: Any, base: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    """One row per trial (report["tune"]["trials"]) and the winning Ray result (or None)."""
    rows: list[dict[str, Any]] = []
    best, best_key = None, None
    for result in grid:
        trial_id = str(result.metrics.get("trial_id", "")) if result.metrics else ""
        config = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in (result.config or {}).items()}
        hist = recorder.history.get(trial_id, [])
        wanted = int({**base, **config}["epochs"])
        status = "error" if result.error else "completed" if len(hist) >= wanted else "stopped"
        row = {"id": str(_trial_number(trial_id)), "config": config, "val_accuracy": hist[-1] if hist else None,
               "epochs_run": len(hist), "history": hist, "status": status,
               "restarts": recorder.restarts.get(trial_id, 0)}
        if result.error:
            row["error"] = str(result.error).splitlines()[0][:300] if str(result.error) else type(result.error).__name__
        rows.append(row)
        if status == "completed" and result.checkpoint is not None:
            key = (hist[-1], -_trial_number(trial_id))
            if best_key is None or key > best_key:
                best, best_key = result, key
    rows.sort(key=lambda r: int(r["id"]))
    return rows, best
