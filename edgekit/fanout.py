"""Fan a plan's independent chains out over the executor (``compress --workers N`` / ``--ray-address``).

The shared prefix (the train step, and a budgeted prune when the plan has one) runs here, in the
driver, so the artifact cache holds it. Every other step belongs to one *chain*: the subtree of
steps hanging from one child of the prefix (e.g. ``structured25`` with its sparsity, exports and
int8 files). Chains share nothing but the prefix, so each is one task: the dataset goes once into
the object store (:meth:`edgekit.executor.Executor.put`), a worker finds the prefix's artifacts in
the artifact cache by id (``EDGEKIT_CACHE_DIR``, the same folder on 127.0.0.1, shared storage on a
cluster), runs its steps through that cache and returns Artifact records. The driver resolves them
again by id in its own cache: artifacts travel by content hash, never by a node-local path. A chain
whose stages are already cached is not recomputed. The workers are warmed (started, TensorFlow and the
stages imported) while the driver runs the prefix, so they wait for no import when the chains arrive. The
evaluation, benchmark and choice that follow are the driver's, exactly as without fan-out.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edgekit.analyze import parallel
from edgekit.analyze.parallel import analysis_executor
from edgekit.artifact import Artifact, ModelMeta
from edgekit.cache import ArtifactCache
from edgekit.errors import UsageError
from edgekit.executor import Shared, cache_root, open_executor
from edgekit.plan import Step

log = logging.getLogger(__name__)

PREFIX_STAGES = frozenset({"train", "prune.budgeted"})  # what every chain builds on: run once, in the driver
WORKER_MODULES = (*parallel.WORKER_MODULES, "edgekit.pipeline", "tensorflow_model_optimization", "tf2onnx",
                  "onnxruntime")
"""What a warm worker imports while the driver runs the prefix: a chain's stages, and the analysis's."""


class StepRunner(Protocol):
    """What runs one step through the cache (``edgekit.pipeline._Runner``; module-level, so it pickles by name)."""

    ctx: Any
    meta: ModelMeta
    by_step: dict[str, Artifact]
    skipped: dict[str, str]

    def __init__(self, ctx: Any, cache: ArtifactCache, staging: Path, meta: ModelMeta) -> None: ...

    def run(self, step: Step) -> Artifact | None: ...


def wanted(workers: int | None, ray_address: str | None) -> bool:
    """Whether the user asked for parallel work (``--workers`` or ``--ray-address``); else the plan runs as before."""
    return workers is not None or bool(ray_address)


def split(steps: list[Step]) -> tuple[list[Step], list[list[Step]]]:
    """(prefix, chains): the shared prefix in plan order, then one list of steps (plan order) per chain.

    The prefix is every train / budgeted-prune step and the steps they descend from; each chain is the
    subtree of one step whose input is in the prefix. Chains are ordered by their first step in the plan.
    """
    by_name = {s.name: s for s in steps}
    prefix: set[str] = set()
    for s in steps:
        if s.stage in PREFIX_STAGES:
            current: Step | None = s
            while current is not None and current.name not in prefix:
                prefix.add(current.name)
                current = by_name[current.input] if current.input else None
    root_of: dict[str, str] = {}
    chains: dict[str, list[Step]] = {}
    for s in steps:  # plan order: a step's input comes before it (plan.check_chain)
        if s.name in prefix:
            continue
        root = s.name if s.input is None or s.input in prefix else root_of[s.input]
        root_of[s.name] = root
        chains.setdefault(root, []).append(s)
    return [s for s in steps if s.name in prefix], list(chains.values())


@dataclass(frozen=True)
class ChainJob:
    """One task: the steps of a chain and what a worker needs to run them (no node-local paths)."""

    runner: type  # a StepRunner class, pickled by reference
    dataset: Shared
    meta: ModelMeta
    seed: int
    reference_val_accuracy: float | None
    reference_correct: Any  # the trained model's per-image validation correctness
    parents: tuple[tuple[str, str], ...]  # (step name, artifact id) of every prefix step
    steps: tuple[Step, ...]


def run_chain(job: ChainJob) -> list[Artifact | None]:
    """On a worker: the chain's steps through the artifact cache; the Artifact records, in step order (None for a
    step left out, :class:`edgekit.stages.Skipped`)."""
    from edgekit.stages import Context

    cache = ArtifactCache()
    with tempfile.TemporaryDirectory(prefix="edgekit-chain-") as tmp:
        ctx = Context(job.dataset.get(), workdir=Path(tmp) / "work", seed=job.seed)
        ctx.reference_val_accuracy, ctx.reference_correct = job.reference_val_accuracy, job.reference_correct
        runner = job.runner(ctx, cache, Path(tmp), job.meta)
        for name, artifact_id in job.parents:
            parent = cache.get(artifact_id)
            if parent is None:
                raise UsageError(f"{name} ({artifact_id}) is not in the artifact cache {cache.root} on this node: "
                                 "on a cluster, EDGEKIT_CACHE_DIR must be a folder every node shares")
            runner.by_step[name] = dataclasses.replace(parent, name=name)
            ctx.artifacts[artifact_id] = runner.by_step[name]
        return [runner.run(step) for step in job.steps]


def run_plan(runner: StepRunner, steps: list[Step], *, cache: bool, workers: int | None,
             ray_address: str | None) -> tuple[list[Artifact], dict[str, Any]]:
    """Run ``steps`` with the chains fanned out; (artifacts in plan order, the executor object of report.json)."""
    if not cache:
        raise UsageError("--workers/--ray-address need the artifact cache (workers read and write it): drop --no-cache")
    prefix, chains = split(steps)
    ctx = runner.ctx
    with open_executor(ray_address, workers=workers) as ex:
        ex.warm(WORKER_MODULES)  # the workers start and import while the driver trains
        with analysis_executor(ex):  # the budgeted prune's per-layer sensitivity analysis fans out too
            for step in prefix:
                runner.run(step)
        parents = tuple((s.name, runner.by_step[s.name].id) for s in prefix)
        info = ex.info()
        log.info("fan-out: %d chain(s) on %s (%d node(s), %d worker(s)), cache %s", len(chains), info["kind"],
                 info["nodes"], info["workers"], cache_root())
        data = ex.put(ctx.dataset)
        jobs = [ChainJob(type(runner), data, runner.meta, ctx.seed,
                         ctx.reference_val_accuracy, ctx.reference_correct, parents, tuple(chain)) for chain in chains]
        results = ex.map(run_chain, jobs)
    local = ArtifactCache()
    for chain, made in zip(chains, results):
        for step, remote in zip(chain, made):  # by id in this node's cache, not by the worker's path
            if remote is None:
                runner.skipped[step.name] = "left out on its worker"
                continue
            artifact = local.get(remote.id)
            if artifact is None:
                raise UsageError(f"{step.name} ({remote.id}) was made on a worker but is not in the artifact cache "
                                 f"{local.root} here: EDGEKIT_CACHE_DIR must be a folder every node shares")
            artifact = dataclasses.replace(artifact, name=step.name)
            runner.by_step[step.name] = artifact
            ctx.artifacts[artifact.id] = artifact
    return [runner.by_step[s.name] for s in steps if s.name in runner.by_step], info
