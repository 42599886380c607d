"""Shared fixtures: no network, a private cache, small real data."""

from __future__ import annotations

import os

os.environ["EDGEKIT_OFFLINE"] = "1"  # tests never touch the network
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The test session gets its own artifact cache (set before any module-scoped fixture runs)."""
    os.environ["EDGEKIT_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "edgekit-cache")
