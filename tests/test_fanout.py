"""compress --workers: the plan's chains fanned out over the executor give the in-process result."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers.fanout import search_slice

from edgekit.config import CompressConfig
from edgekit.errors import UsageError
from edgekit.fanout import split, wanted
from edgekit.plan import build_plan

FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_chains_of_a_search_plan() -> None:
    cfg = CompressConfig(dataset="digits", search=True, search_structured=(0.0, 0.25), search_sparsity=(0.0, 0.8),
                         search_quantization=("ptq-int8",))
    steps = build_plan(cfg)
    prefix, chains = split(steps)
    assert [s.name for s in prefix] == ["baseline"]
    assert [[s.name for s in c] for c in chains] == [
        ["baseline-tflite"], ["baseline-onnx", "baseline-int8-onnx"], ["baseline-int8-tflite"],
        ["pruned80", "pruned80-tflite", "pruned80-onnx", "pruned80-int8-tflite", "pruned80-int8-onnx"],
        ["structured25", "structured25-tflite", "structured25-onnx", "structured25-int8-tflite",
         "structured25-int8-onnx", "structured25-pruned80", "structured25-pruned80-tflite",
         "structured25-pruned80-onnx", "structured25-pruned80-int8-tflite", "structured25-pruned80-int8-onnx"]]
    # every step exactly once; inside a chain, a step's input is in the prefix or earlier in that chain
    assert sorted(s.name for c in [prefix, *chains] for s in c) == sorted(s.name for s in steps)
    names = {s.name for s in prefix}
    for chain in chains:
        seen = set(names)
        for step in chain:
            assert step.input in seen
            seen.add(step.name)


def test_budgeted_prune_is_in_the_prefix() -> None:
    prefix, chains = split(build_plan(CompressConfig(dataset="digits")))
    assert [s.name for s in prefix] == ["baseline", "pruned"]
    assert all(s.input is not None for c in chains for s in c)
    assert ["pruned-onnx", "pruned-int8-onnx"] in [[s.name for s in c] for c in chains]


def test_only_asked_for() -> None:
    assert not wanted(None, None) and not wanted(None, "")
    assert wanted(0, None) and wanted(2, None) and wanted(None, "head:6379")
    assert CompressConfig().workers is None and CompressConfig().ray_address is None  # default: no fan-out


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.skipif(not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist package")
def test_search_on_two_workers_matches_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache-a"))  # separate caches: both runs compute
    plain = search_slice(tmp_path / "plain")
    # without --workers/--ray-address every stage ran in this process (every report records where it ran)
    assert plain["executor"] == {"kind": "inprocess", "address": "", "nodes": 1, "workers": 1}
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache-b"))
    fanned = search_slice(tmp_path / "fanned", workers=2)
    assert fanned["executor"] == {"kind": "local", "address": fanned["executor"]["address"], "nodes": 1, "workers": 2}
    assert fanned["chosen"] == plain["chosen"]
    assert fanned["files"] == plain["files"]  # same artifact ids and the same bytes


def test_fanout_needs_the_cache(tmp_path: Path) -> None:
    import edgekit

    cfg = CompressConfig(dataset="digits", train_limit=100, test_limit=50, epochs=1, bench=False, cache=False,
                         workers=0)
    with pytest.raises(UsageError, match="artifact cache"):
        edgekit.compress(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
