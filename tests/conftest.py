"""Shared fixtures: no network, a private cache, small real data; the fast tier trains nothing.

Test tiers: ``python -m pytest -m "not slow"`` is the fast tier. A test that trains a model (Keras
``fit``, QAT or pruning fine-tuning, an ``edgekit compress``/``tune`` run with epochs ≥ 1) carries
``@pytest.mark.slow``. For every other test, ``fit`` of tf_keras and Keras 3 models raises
:class:`TrainingInFastTier` during the test's set-up (session fixtures included) and call. The guard
covers this process only: training in a subprocess shows up in ``--durations``. Each test's set-up and
call start from seed 0 (see :func:`_seed`).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

os.environ["EDGEKIT_OFFLINE"] = "1"  # tests never touch the network
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The test session gets its own artifact cache (set before any module-scoped fixture runs); under
    pytest-xdist the workers share one (the cache locks each entry), so a model one worker trained is reused."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    os.environ["EDGEKIT_CACHE_DIR"] = str(shared / "edgekit-cache")


@pytest.fixture(autouse=True)
def _log_levels() -> Iterator[None]:
    """The root and ``edgekit`` loggers' levels as each test found them: the command line run in process (``-q``
    sets ERROR) must not hide a later test's warnings from ``caplog``, whatever order the workers run the files in."""
    import logging

    loggers = (logging.getLogger(), logging.getLogger("edgekit"))
    levels = [lg.level for lg in loggers]
    yield
    for lg, level in zip(loggers, levels):
        lg.setLevel(level)


class TrainingInFastTier(RuntimeError):
    """A test without ``@pytest.mark.slow`` trained a model."""


_TRAINING: dict[str, str | None] = {"forbidden_in": None}  # node id of the running fast-tier test

# Module that defines the training entry point -> class whose ``fit`` is guarded.
_FIT_OWNERS = {
    "tf_keras.src.engine.training": "Model",  # tf_keras (Keras 2): edgekit's trainer, QAT, pruning
    "keras.src.backend.tensorflow.trainer": "TensorFlowTrainer",  # Keras 3 models (test_user_model)
}


def _guard_fit(module: ModuleType, cls_name: str) -> None:
    cls = getattr(module, cls_name, None)
    original: Callable[..., Any] | None = getattr(cls, "fit", None)
    if cls is None or original is None or getattr(original, "_fast_tier_guard", False):
        return

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        test = _TRAINING["forbidden_in"]
        if test is not None:
            raise TrainingInFastTier(f"{test} trains a model ({cls_name}.fit) but is not marked "
                                     "@pytest.mark.slow; the fast tier (-m 'not slow') trains nothing")
        return original(self, *args, **kwargs)

    fit._fast_tier_guard = True  # type: ignore[attr-defined]
    cls.fit = fit


class _GuardFitOnImport(importlib.abc.MetaPathFinder):
    """Wrap ``fit`` as soon as the module defining it is imported (TensorFlow is imported lazily)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _FIT_OWNERS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            _guard_fit(module, _FIT_OWNERS[fullname])

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _GuardFitOnImport())
for _name, _cls in _FIT_OWNERS.items():  # already imported (e.g. by a plugin)
    if _name in sys.modules:
        _guard_fit(sys.modules[_name], _cls)


def _seed() -> None:
    """Every test starts from the same random state (Python, NumPy and, once imported, TensorFlow), so a
    model or data set a test builds without its own seed is still seeded."""
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    if "tf_keras" in sys.modules:
        sys.modules["tf_keras"].utils.set_random_seed(0)


def _during(item: pytest.Item) -> Iterator[None]:
    """Around a test's set-up or call: training is refused unless it is slow, and the random state is reset."""
    _TRAINING["forbidden_in"] = None if item.get_closest_marker("slow") else item.nodeid
    _seed()
    try:
        yield
    finally:
        _TRAINING["forbidden_in"] = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _during(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _during(item)
