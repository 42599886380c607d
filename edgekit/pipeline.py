"""``edgekit.compress``: data → train → prune → quantize → export → verify → benchmark → report.

Everything is validated before any heavy work; every stage output is named by
its content hash and cached; the run folder is assembled under a temporary
name and renamed into place at the end, so a failed or interrupted run leaves
nothing half-written and never touches an existing folder without ``force``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import fanout, interrupts
from edgekit.artifact import SUFFIXES, Artifact, ModelMeta, artifact_id
from edgekit.audit import audit_model
from edgekit.cache import ArtifactCache, using_cache_dir
from edgekit.config import CompressConfig
from edgekit.errors import EdgekitError
from edgekit.export.metadata import embed_metadata
from edgekit.fsutil import sha256_file
from edgekit.plan import Step, build_plan
from edgekit.rundir import check_out, staged_run
from edgekit.schema import to_mapping
from edgekit.targets import Target, default_target_name, get_target

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """The outcome of one compress run."""

    out: Path
    report: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report.get("status") == "ok"


def default_out_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def prepare_out(out: str | Path | None, force: bool, protect: tuple[str | None, ...] = ()) -> Path:
    """Resolve the run folder and refuse an unusable one before any work (see :func:`edgekit.rundir.check_out`)."""
    return check_out(Path(out) if out is not None else default_out_dir(), force, protect)


def resolve_targets(cfg: CompressConfig) -> list[Target]:
    names = list(cfg.targets) or [default_target_name()]
    if cfg.target and cfg.target not in names:
        names.append(cfg.target)
    return [get_target(n, list(cfg.devices_dir)) for n in names]


class _Runner:
    """Executes a plan's steps with caching; holds the artifacts made so far, and the steps left out (a stage
    that had nothing to add, :class:`edgekit.stages.Skipped`, and every step made from it) with why."""

    def __init__(self, ctx: Any, cache: ArtifactCache, staging: Path, meta: ModelMeta) -> None:
        self.ctx, self.cache, self.staging, self.meta = ctx, cache, staging, meta
        self.by_step: dict[str, Artifact] = {}
        self.skipped: dict[str, str] = {}

    def run(self, step: Step) -> Artifact | None:
        from edgekit.stages import Skipped, get_stage

        if step.input in self.skipped:
            self.skipped[step.name] = f"made from {step.input}, which was left out"
            return None
        stage = get_stage(step.stage)
        parent = self.by_step[step.input] if step.input else None
        config = to_mapping(step.config)
        a_id = artifact_id(parent.id if parent else None, stage.name, config)
        cached = self.cache.get(a_id)
        if cached is not None:
            log.info("%-24s %s (cached %s)", step.name, stage.name, a_id)
            artifact = dataclasses.replace(cached, name=step.name)
        else:
            log.info("%-24s %s …", step.name, stage.name)
            fmt = stage.output_format(parent.format if parent else None)
            staged = self.ctx.workdir / a_id
            shutil.rmtree(staged, ignore_errors=True)
            staged.mkdir(parents=True)
            path = staged / f"model{SUFFIXES[fmt]}"
            t0 = time.perf_counter()
            try:
                output = stage.run(parent, step.config, self.ctx, path)
            except Skipped as e:
                shutil.rmtree(staged, ignore_errors=True)
                self.skipped[step.name] = str(e)
                log.info("%-24s left out: %s", step.name, e)
                return None
            interrupts.check()  # a Ctrl-C that a library swallowed still stops the run here
            metrics = {**output.metrics, "stage_seconds": round(time.perf_counter() - t0, 2)}
            meta = dataclasses.replace(self.meta, output=str(metrics.get("output", self.meta.output)))
            if fmt != "keras":  # labels and preprocessing travel inside the exported file
                embed_metadata(path, meta, a_id)
            precision = str(metrics.get("precision") or stage.output_precision(parent))  # a stage may say (int8/mixed)
            made_from = output.made_from or parent
            artifact = Artifact(a_id, stage.name, fmt, precision, path,  # type: ignore[arg-type]
                                made_from.id if made_from else None, config, metrics, meta, step.name)
            artifact = self.cache.put(artifact, staged, into=self.staging / ".stages")
            if output.model is not None:
                self.ctx.models[a_id] = output.model
        self.by_step[step.name] = artifact
        self.ctx.artifacts[artifact.id] = artifact
        if stage.name == "train":  # the budget's reference: later stages measure their drop against it. With
            # --model it is the model as brought, or the fine-tuned one only when that was better on validation
            # (the train stage decides, edgekit.train.keep), so nothing is judged against a model made worse.
            from edgekit.compression.budget import val_correct

            self.ctx.reference_correct = val_correct(self.ctx.keras_model(artifact), self.ctx.dataset)
            self.ctx.reference_val_accuracy = float(self.ctx.reference_correct.mean())
        return artifact


def _copy_into_run(artifacts: list[Artifact], models_dir: Path) -> list[Artifact]:
    models_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for a in artifacts:
        dst = models_dir / f"{a.name}{SUFFIXES[a.format]}"
        shutil.copy2(a.path, dst)
        out.append(a.with_path(dst))
    return out


def _evaluate(artifacts: list[Artifact], ctx: Any) -> dict[str, dict[str, np.ndarray]]:
    """Validation (selection), test and certification scores of every artifact, and its scores on the unlabelled
    certification images where its certificate needs them (:func:`_unlabelled_ids`)."""
    from edgekit.console import progress
    from edgekit.evaluate import predict_artifact

    ds = ctx.dataset
    unlabelled = _unlabelled_images(ds)
    wanted = _unlabelled_ids(artifacts) if len(unlabelled) else set()
    scores: dict[str, dict[str, np.ndarray]] = {}
    with progress("evaluating", len(artifacts)) as bar:
        for a in artifacts:
            model = ctx.keras_model(a) if a.format == "keras" else None
            scores[a.id] = {"val": predict_artifact(a, ds.x_val, model), "test": predict_artifact(a, ds.x_test, model)}
            if len(ds.x_cert):
                scores[a.id]["cert"] = predict_artifact(a, ds.x_cert, model)
            if a.id in wanted:
                scores[a.id]["unlabelled"] = predict_artifact(a, unlabelled, model)
            bar.advance()
    return scores


def _unlabelled_images(ds: Any) -> np.ndarray:
    """Images no step trained, calibrated or chose on: the certification split and the extra unlabelled images."""
    parts = [x for x in (ds.x_cert, ds.x_extra) if len(x)]
    return np.concatenate(parts) if parts else np.empty((0,), np.float32)


def _anchors(artifacts: list[Artifact]) -> dict[str, str]:
    """Deployable file id → the trained model it was made from by steps that train nothing (conversions and
    post-training quantization, the stages checked against their parent), for files made that way."""
    from edgekit.formats import deployable_formats
    from edgekit.stages import parity_stages

    untrained, by_id, out = parity_stages(), {a.id: a for a in artifacts}, {}
    for a in artifacts:
        if a.format not in deployable_formats() or a.stage not in untrained:
            continue
        up = by_id.get(a.parent_id or "")
        while up is not None and up.stage in untrained:
            up = by_id.get(up.parent_id or "")
        if up is not None:
            out[a.id] = up.id
    return out


def _unlabelled_ids(artifacts: list[Artifact]) -> set[str]:
    anchors = _anchors(artifacts)
    return set(anchors) | set(anchors.values())


def _verify(artifacts: list[Artifact], scores: dict[str, dict[str, np.ndarray]], y_test: np.ndarray) -> dict[str, Any]:
    from edgekit.rules.parity import check_parity
    from edgekit.stages import parity_stages

    checked = parity_stages()  # conversions and post-training quantization must follow their parent
    results: dict[str, Any] = {}
    for a in artifacts:
        if a.stage in checked and a.parent_id in scores:
            results[a.id] = check_parity(scores[a.id]["test"], scores[a.parent_id]["test"], y_test, a.precision,
                                         a.parent_id).to_dict()
    return results


def _audit(artifacts: list[Artifact]) -> dict[str, Any]:
    out = {}
    for a in artifacts:
        try:
            out[a.id] = audit_model(a.path)
        except EdgekitError as e:
            log.warning("audit of %s failed: %s", a.name, e)
            out[a.id] = {"error": str(e)}
    return out


def compress(cfg: CompressConfig | None = None, out: str | Path | None = None, *, force: bool = False,
             command: str = "") -> RunResult:
    """Run the whole pipeline and write the models and report.{json,md,html} into ``out``."""
    cfg = cfg or CompressConfig()  # checked when built (CompressConfig.__post_init__)
    with using_cache_dir(cfg.cache_dir):  # --cache-dir: the stages, the fan-out and its workers use it
        return _compress(cfg, out, force=force, command=command)


def _compress(cfg: CompressConfig, out: str | Path | None, *, force: bool, command: str) -> RunResult:
    from edgekit.data.datasets import load_dataset

    protect = (cfg.data_dir, cfg.model)
    out_path = prepare_out(out, force, protect)
    targets = resolve_targets(cfg)
    if fanout.wanted(cfg.workers, cfg.ray_address):
        from edgekit.executor import probe_address

        probe_address(cfg.ray_address)  # before any work: Ray's own connect retries for minutes, silently
    if cfg.model:  # judged from its configuration before any data is loaded or TensorFlow imported
        from edgekit.models.safety import check_model_file

        check_model_file(cfg.model, cfg.trust_model)
    model_sha = sha256_file(cfg.model) if cfg.model and Path(cfg.model).is_file() else ""
    build_plan(cfg)  # checks the chain before data is loaded or TensorFlow imported
    started = time.time()
    if not command:  # called from Python: record the call
        defaults = to_mapping(CompressConfig())
        changed = ", ".join(f"{k}={v!r}" for k, v in to_mapping(cfg).items() if defaults.get(k) != v)
        command = f"edgekit.compress(edgekit.CompressConfig({changed}), out={str(out_path)!r})"
    dataset = load_dataset(cfg.dataset, data_dir=cfg.data_dir, train_limit=cfg.train_limit, test_limit=cfg.test_limit,
                           seed=cfg.seed, image_size=cfg.image_size, color=cfg.color)
    if cfg.unlabeled_dir:
        from edgekit.data.datasets import load_unlabeled

        dataset = load_unlabeled(cfg.unlabeled_dir, dataset, image_size=cfg.image_size, color=cfg.color)
    steps = build_plan(cfg, dataset_fingerprint=dataset.fingerprint(), model_sha256=model_sha)

    with staged_run(out_path, force, protect) as staging:
        result = _run(cfg, steps, dataset, targets, staging, out_path, command, started)
    return RunResult(out_path, result.report,
                     [a.with_path(out_path / a.path.relative_to(staging)) for a in result.artifacts])


def _run(cfg: CompressConfig, steps: list[Step], dataset: Any, targets: list[Target], staging: Path, out_path: Path,
         command: str, started: float) -> RunResult:
    from edgekit.bench.api import Timing, benchmark
    from edgekit.report.build import build_report
    from edgekit.report.write import write_reports
    from edgekit.search import certification_order
    from edgekit.stages import Context

    ctx = Context(dataset, workdir=staging / ".work", seed=cfg.seed)
    meta = ModelMeta(labels=dataset.labels, input_shape=dataset.input_shape, color=cfg.color, dataset=dataset.name)
    runner = _Runner(ctx, ArtifactCache(enabled=cfg.cache), staging, meta)
    executor: dict[str, Any] | None = None  # where the chains ran: only with --workers/--ray-address (else in process)
    if fanout.wanted(cfg.workers, cfg.ray_address):
        made, executor = fanout.run_plan(runner, steps, cache=cfg.cache, workers=cfg.workers,
                                         ray_address=cfg.ray_address)
    else:
        made = [a for a in (runner.run(step) for step in steps) if a is not None]
    # Keras models made in this run are in memory; cached ones load from the cache copy.
    artifacts = _copy_into_run(made, staging / "models")
    scores = _evaluate(made, ctx)
    y_val, y_test = dataset.y_val, dataset.y_test
    verification = _verify(made, scores, y_test)
    audits = _audit(artifacts)
    bench_rows: list[dict[str, Any]] = []
    if cfg.bench:
        refs = {a.id: scores[a.parent_id]["test"].argmax(1) for a in artifacts if a.parent_id in scores}
        bench_rows = benchmark(artifacts, dataset.x_test, y_test, targets, references=refs,
                               timing=Timing(min_runs=cfg.bench_min_runs, min_seconds=cfg.bench_min_seconds))
    shutil.rmtree(staging / ".work", ignore_errors=True)
    shutil.rmtree(staging / ".stages", ignore_errors=True)
    measured = [a.with_metrics(accuracy=float((scores[a.id]["test"].argmax(1) == y_test).mean()),
                               val_accuracy=float((scores[a.id]["val"].argmax(1) == y_val).mean()))
                for a in artifacts]
    if cfg.bench:
        failed = {aid for aid, v in verification.items() if v.get("status") not in (None, "ok")}
        measured = _retime_slower(cfg, measured, bench_rows, targets, dataset, failed)
    counts = _selection_counts(measured, scores, y_val)
    predicted = _predicted_bounds(measured, counts, len(y_val), len(dataset.y_cert),
                                  len(dataset.y_cert) + len(dataset.x_extra), cfg.confidence)
    order = certification_order(cfg, measured, bench_rows, targets, verification, predicted)
    bounds = _drop_bounds(measured, scores, dataset.y_cert, cfg.max_accuracy_drop, cfg.confidence, order,
                          counts, len(y_val))
    final = [a.with_metrics(**bounds[a.id]) if a.id in bounds else a for a in measured]
    search = _choose(cfg, final, bench_rows, targets, verification)
    chosen = search["chosen_id"]
    report = build_report(cfg=cfg, dataset=dataset, artifacts=final, run_dir=staging, verification=verification,
                          audits=audits, benchmarks=bench_rows, targets=targets, search=search if cfg.search else None,
                          chosen_id=chosen, command=command, seconds=time.time() - started,
                          analysis=_analysis(final, ctx))
    _judge(report, cfg, final, verification, search)
    report["out"] = str(out_path)
    if executor is not None:
        report["executor"] = executor
    write_reports(staging, report, force=True)
    return RunResult(staging, report, final)



def _retime_slower(cfg: CompressConfig, artifacts: list[Artifact], rows: list[dict[str, Any]], targets: list[Target],
                   dataset: Any, failed: set[str]) -> list[Artifact]:
    """The files the benchmark found slower than a file they should beat, timed again in turns with it
    (:mod:`edgekit.bench.retime`): smaller files against the fp32 baseline of their format on the choice target
    (the chooser judges speed on these), and files against their parent's file of the same format on every target
    that times real hardware (the report flags on these). Files that ``failed`` verification are left out; the
    timings go in each file's ``speed_checks`` metric."""
    from edgekit.bench.api import Timing
    from edgekit.bench.retime import retime
    from edgekit.rules import SPEED_CHECKS
    from edgekit.search import choice_target, parent_speed_suspects, speed_suspects, speed_unchecked

    timed = [t.name for t in targets if not t.emulated and speed_unchecked(True, t.name, targets) is None]
    target = choice_target(cfg, targets)
    pairs = speed_suspects(artifacts, rows, target, failed) if target in timed else []
    seen = {(p.file_id, p.baseline_id, p.target, p.threads) for p in pairs}
    pairs += [p for p in parent_speed_suspects(artifacts, rows, timed, failed)
              if (p.file_id, p.baseline_id, p.target, p.threads) not in seen]
    if not pairs:
        return artifacts
    checks: dict[str, list[dict[str, Any]]] = {}
    for check in retime(pairs, artifacts, dataset.x_test, dataset.y_test, targets,
                        Timing(min_runs=cfg.bench_min_runs, min_seconds=cfg.bench_min_seconds)):
        checks.setdefault(check.file_id, []).append(check.to_dict())
    return [a.with_metrics(**{SPEED_CHECKS: checks[a.id]}) if a.id in checks else a for a in artifacts]


def _selection_counts(artifacts: list[Artifact], scores: dict[str, dict[str, np.ndarray]],
                      y_val: np.ndarray) -> dict[str, tuple[int, int, int]]:
    """Deployable file id → (lost, gained, changed) selection images against the trained model: right for it and
    wrong for the file, the other way round, and any prediction changed."""
    from edgekit.formats import deployable_formats

    train = next((a for a in artifacts if a.stage == "train"), None)
    if train is None or train.id not in scores:
        return {}
    ref_pred = scores[train.id]["val"].argmax(1)
    ref_ok = ref_pred == y_val
    out = {}
    for a in artifacts:
        if a.format in deployable_formats() and a.id in scores:
            pred = scores[a.id]["val"].argmax(1)
            ok = pred == y_val
            out[a.id] = (int((ref_ok & ~ok).sum()), int((~ref_ok & ok).sum()), int((pred != ref_pred).sum()))
    return out


def _predicted_bounds(artifacts: list[Artifact], counts: dict[str, tuple[int, int, int]], n_val: int,
                      n_cert: int, n_unlabelled: int, confidence: float) -> dict[str, float]:
    """Deployable file id → the certificate the selection images predict for it
    (:func:`edgekit.rules.predicted_bound_pp`): a file that churns many predictions is predicted to fail even when
    its selection drop is small."""
    from edgekit.rules import predicted_bound_pp

    train = next((a for a in artifacts if a.stage == "train"), None)
    anchors = _anchors(artifacts)
    return {aid: predicted_bound_pp(lost, gained, changed, n_val, n_cert,
                                    n_unlabelled if train is not None and anchors.get(aid) == train.id else 0,
                                    confidence)
            for aid, (lost, gained, changed) in counts.items()}


def _drop_bounds(artifacts: list[Artifact], scores: dict[str, dict[str, np.ndarray]], y_cert: np.ndarray,
                 budget_pp: float, confidence: float, order: list[str], counts: dict[str, tuple[int, int, int]],
                 n_val: int) -> dict[str, dict[str, Any]]:
    """Deployable file id → ``{"val_drop_bound": ...}``: its certificate against the trained model on the
    certification images, which chose nothing (:func:`edgekit.rules.certify`, all files jointly at ``confidence``,
    the chooser's preferred files, ``order``, spending the larger shares of the error, recycled within the budget;
    ``counts``: each file's selection counts, from which its labelled bound is chosen)."""
    from edgekit.formats import deployable_formats
    from edgekit.rules import certify

    train = next((a for a in artifacts if a.stage == "train"), None)
    if train is None or len(y_cert) == 0:
        return {}
    files = [a.id for a in artifacts if a.format in deployable_formats()]
    correct = {aid: s["cert"].argmax(1) == y_cert for aid, s in scores.items() if "cert" in s}
    predictions = {aid: s["unlabelled"].argmax(1) for aid, s in scores.items() if "unlabelled" in s}
    selection = {aid: (lost, gained) for aid, (lost, gained, _) in counts.items()}
    certs = certify(correct[train.id], correct, files, _anchors(artifacts), predictions, train.id, confidence, order,
                    selection, n_val, budget_pp)
    return {aid: {"val_drop_bound": {**c.to_dict(), "verdict": c.verdict(budget_pp)}} for aid, c in certs.items()}


def _choose(cfg: CompressConfig, final: list[Artifact], rows: list[dict[str, Any]], targets: list[Target],
            verification: dict[str, Any]) -> dict[str, Any]:
    """The chosen artifact: smaller than, and not slower than, the fp32 baseline of its format on the target, inside
    the budget, verified (:func:`edgekit.search.choose`; with ``search`` off the candidates are the plan's files)."""
    from edgekit.search import choose

    return choose(cfg, final, rows, targets, verification=verification)


def _analysis(final: list[Artifact], ctx: Any) -> dict[str, Any] | None:
    """Per-layer sensitivity for the report: the budgeted prune's analysis, or one made now of the trained model;
    with the layers each int8 file kept out of int8, and why (``protected``)."""
    pruned = next((a for a in final if a.stage == "prune.budgeted" and "analysis" in a.metrics), None)
    if pruned is not None:
        analysis = dict(pruned.metrics["analysis"])
    else:
        train = next((a for a in final if a.stage == "train"), None)
        if train is None:
            return None
        from edgekit.analyze.sensitivity import analyze_dataset

        analysis = analyze_dataset(ctx.keras_model(train), ctx.dataset)
    kept: dict[str, list[str]] = {}  # layer → "file: precision (why)" for every int8 file that kept it out of int8
    for a in final:
        for r in a.metrics.get("int8", {}).get("layers", []):
            if r["precision"] not in ("int8", "unknown"):
                kept.setdefault(r["name"], []).append(f"{a.name}: {r['precision']} ({r['reason']})")
    rows = []
    for row in analysis.get("layers", []):
        row = {**row, "simulated_protection": bool(row.get("protected"))}
        row["protected"] = row["name"] in kept
        if kept.get(row["name"]):
            row["reason"] = "; ".join(kept[row["name"]])
        rows.append(row)
    return {**analysis, "layers": rows}


def _judge(report: dict[str, Any], cfg: CompressConfig, final: list[Artifact], verification: dict[str, Any],
           search: dict[str, Any]) -> None:
    """The run's status: a candidate that failed verification leaves the choice (a warning, not a failed run);
    nothing eligible hands out the fp32 baseline (a warning); an explicit pruning value that breaks the budget
    makes the run 'over_budget'. Also the 'budget' section: what each budgeted stage decided, and why."""
    from edgekit.bench.peak import over_peak_warnings
    from edgekit.compression.budget import explicit_value_note
    from edgekit.rules import within_budget
    from edgekit.search import verification_outcome

    names = {a.id: a.name for a in final}
    problems, warnings = verification_outcome(verification, names, {**search, "excluded": {
        aid: v for aid, v in verification.items() if v.get("status") not in (None, "ok")}}, search["chosen_id"])
    problems += [search["reason"]] if search["status"] == "failed" else []
    if search.get("fallback"):
        warnings.append(f"{search['reason']} ({names.get(search['chosen_id'] or '', '?')})")
    ref = next((float(a.metrics["val_accuracy"]) for a in final if a.stage == "train"), None)
    over: list[str] = []
    budget: dict[str, Any] = {"budget_pp": cfg.max_accuracy_drop, "explicit": [], "pruning": {}, "int8": {}}
    budget["excluded"] = {names.get(k, k): v for k, v in search.get("excluded", {}).items()}
    budget.update(_budget_checks(report, final, cfg.max_accuracy_drop, cfg.confidence))
    log.info("budget: %s", budget["margin"]["statement"])
    if search.get("fallback"):  # why nothing compressed was certified, and what would help
        warnings.append(budget["margin"]["statement"])
    train = next((a for a in final if a.stage == "train"), None)
    if train is not None:
        budget["reference"] = reference_record(train)
    for a in final:
        if a.stage == "prune.budgeted":
            budget["pruning"][a.name] = a.metrics.get("budget", {})
            for kind, d in a.metrics.get("budget", {}).items():
                if d.get("action") in ("backed_off", "dropped"):
                    warnings.append(f"{a.name}: {kind} pruning {d['action'].replace('_', ' ')}: {d.get('reason', '')}")
        if a.stage == "prune.budgeted" and "lighter" not in a.metrics and cfg.stage_config(a.stage).lighter:
            from edgekit.stages.prune import NO_LIGHTER

            budget["pruning"][f"{a.name}-lighter"] = {"fallback": {"action": "left out", "reason": NO_LIGHTER}}
        if a.stage == "prune.lighter" and ref is not None and "val_accuracy" in a.metrics:
            budget["pruning"][a.name] = {"fallback": {
                "action": "exported", "drop_pp": round((ref - float(a.metrics["val_accuracy"])) * 100.0, 3),
                "reason": f"{a.metrics.get('lighter', '')}, for certification to fall back to"}}
        if "int8" in a.metrics:
            rec = a.metrics["int8"]
            budget["int8"][a.name] = {k: rec.get(k) for k in ("precision", "action", "reason", "drop_pp")}
            if rec.get("action") not in (None, "applied"):
                warnings.append(f"{a.name}: int8 {str(rec['action']).replace('_', ' ')}: {rec.get('reason', '')}")
    if ref is not None and not cfg.search:  # a search's grid values are its own candidates, not the user's
        for a in final:
            if a.stage not in ("prune.magnitude", "prune.structured") or "val_accuracy" not in a.metrics:
                continue
            drop = round((ref - float(a.metrics["val_accuracy"])) * 100.0, 3)
            what, value = _explicit_value(cfg, a)
            note = explicit_value_note(what, value, drop, cfg.max_accuracy_drop)
            budget["explicit"].append({"step": a.name, "what": what, "value": value, "drop_pp": drop, "note": note})
            if not within_budget(drop, cfg.max_accuracy_drop):
                over.append(f"{a.name}: {note}")
    report["budget"] = budget
    warnings += over_peak_warnings(report.get("benchmarks", []), names)
    report["warnings"] = list(report.get("warnings", [])) + warnings + over
    report["problems"] = problems
    report["status"] = "failed" if problems else "over_budget" if over else "ok"


def reference_record(train: Artifact) -> dict[str, Any]:
    """The budget's reference in report.json: which model it is (``trained`` from scratch, ``as brought``, or
    ``fine-tuned`` when fine-tuning was kept because it was better on validation), its accuracies, the model as
    brought and what fine-tuning did (:class:`edgekit.train.keep.FineTuneDecision`)."""
    fine = train.metrics.get("fine_tuning")
    model = "trained" if fine is None else "fine-tuned" if fine.get("action") == "kept" else "as brought"
    record: dict[str, Any] = {"model": model, "val_accuracy": train.metrics.get("val_accuracy"),
                              "accuracy": train.metrics.get("accuracy")}
    if "as_brought" in train.metrics:
        record["as_brought"] = train.metrics["as_brought"]
    if fine is not None:
        record["fine_tuning"] = fine
    return record


def _budget_checks(report: dict[str, Any], final: list[Artifact], budget_pp: float,
                   confidence: float) -> dict[str, Any]:
    """The budget record's margin (:func:`edgekit.rules.margin`), per-file certificates and notes: each deployable
    file's certified drop against the trained model (``val_drop_bound``), whether its bound is within the budget,
    and the within-budget test-accuracy drops against parents (notes, not flags)."""
    from edgekit.report.model import ArtifactRecord, BenchRow
    from edgekit.report.regressions import judge
    from edgekit.rules import margin, within_budget

    checks = {a.name: {**a.metrics["val_drop_bound"], "within_budget": within_budget(
        float(a.metrics["val_drop_bound"]["bound_pp"]), budget_pp)} for a in final if "val_drop_bound" in a.metrics}
    _, notes = judge([ArtifactRecord.from_dict(r) for r in report.get("artifacts", [])],
                     [BenchRow.from_dict(b) for b in report.get("benchmarks", [])], budget_pp=budget_pp)
    return {"margin": margin(checks, budget_pp, confidence), "checks": checks,
            "notes": [message for _, message in notes]}


def _explicit_value(cfg: CompressConfig, a: Artifact) -> tuple[str, float]:
    if a.stage == "prune.structured":
        if cfg.mac_budget:
            return ("MAC budget", float(cfg.mac_budget))
        if cfg.per_layer_structured and not cfg.structured:
            return ("per-layer structured pruning, largest fraction", max(cfg.per_layer_structured.values()))
        return ("structured ratio", float(cfg.structured or 0))
    if cfg.sparsity_pattern:
        return f"sparsity pattern {cfg.sparsity_pattern}, sparsity", float(a.metrics.get("sparsity", 0.0))
    if cfg.per_layer_sparsity:
        return "per-layer sparsity, overall", float(a.metrics.get("sparsity", 0.0))
    return "sparsity", float(cfg.sparsity or 0.0)
