"""The models benchmarks train: the test suite's builders (``tests/helpers/models.py``: the compact BatchNorm +
depthwise model and its trainer; ``tests/helpers/zoo.py``: the model zoo), loaded by path, and the reference CNN
trained by the default recipe; one place instead of a copy per script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def test_models() -> ModuleType:
    """``tests/helpers/models.py`` as a module (registered in ``sys.modules``: its dataclasses look it up)."""
    return _helper("edgekit_test_models", "models.py")


def zoo() -> ModuleType:
    """``tests/helpers/zoo.py`` (the model zoo and its offline data) as a module."""
    return _helper("edgekit_test_zoo", "zoo.py")


def trained_reference_cnn(path: Path, ds: Any, epochs: int) -> Any:
    """The reference CNN trained on ``ds`` by the default recipe (seed 0, ``epochs``), kept at ``path`` and loaded
    from there when it exists."""
    from edgekit._tf import keras
    from edgekit.models.reference import build_reference_cnn
    from edgekit.train.trainer import FitSettings, fit, seed_everything

    if path.exists():
        return keras().models.load_model(path)
    seed_everything(0)
    model = build_reference_cnn(ds.input_shape, ds.num_classes)
    fit(model, ds.x_train, ds.y_train, FitSettings(epochs=epochs))
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def _helper(name: str, file: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "helpers" / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
