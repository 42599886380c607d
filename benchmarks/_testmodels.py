"""The test suite's model builders (``tests/helpers/models.py``: the compact BatchNorm + depthwise model and its
trainer; ``tests/helpers/zoo.py``: the model zoo), loaded by path for the benchmarks that train them; one loader
instead of a copy per script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def test_models() -> ModuleType:
    """``tests/helpers/models.py`` as a module (registered in ``sys.modules``: its dataclasses look it up)."""
    return _helper("edgekit_test_models", "models.py")


def zoo() -> ModuleType:
    """``tests/helpers/zoo.py`` (the model zoo and its offline data) as a module."""
    return _helper("edgekit_test_zoo", "zoo.py")


def _helper(name: str, file: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "helpers" / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
