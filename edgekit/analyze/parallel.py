"""Which executor the per-layer analysis fans out over (``--workers N`` / ``--ray-address``).

``edgekit analyze`` passes its executor to :func:`edgekit.analyze.sensitivity.analyze_model`
explicitly. Inside ``compress`` the analysis is called from stages that do not know about
executors, so :func:`edgekit.fanout.run_plan` sets the run's executor here for the steps it
runs in the driver (``with analysis_executor(ex): ...``). Nothing is set on a Ray worker, so a
stage running there analyses in its own process (no nested fan-out), and without those flags
nothing is set at all: the analysis runs in process, as before. No TensorFlow, no Ray import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgekit.executor import Executor

WORKER_MODULES = ("edgekit._tf", "tensorflow", "tf_keras", "tensorflow_model_optimization",
                  "edgekit.analyze.sensitivity", "edgekit.analyze.fakequant", "edgekit.compression.structured",
                  "edgekit.models.files", "edgekit.train.trainer")
"""What a warm worker imports before it measures layers (:meth:`edgekit.executor.Executor.warm`): edgekit._tf first
(it forces Keras 2), then TensorFlow itself (edgekit's modules import it lazily), and TFMOT, which loading a
``.keras`` file imports for its quantize scope (about 2 s of imports on the first task otherwise)."""

_CURRENT: ContextVar[Executor | None] = ContextVar("edgekit_analysis_executor", default=None)


def current_executor() -> Executor | None:
    """The executor set by :func:`analysis_executor` around this call, or None (analyse in process)."""
    return _CURRENT.get()


@contextmanager
def analysis_executor(ex: Executor | None) -> Iterator[None]:
    """Fan the per-layer analyses made inside this block out over ``ex`` (None: in process)."""
    token = _CURRENT.set(ex)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def fans_out(ex: Executor | None) -> bool:
    """Whether ``ex`` runs tasks outside this process (an in-process executor analyses as without one)."""
    return ex is not None and ex.kind != "inprocess"
