"""YAML recipes say what the flags say; bad keys and values are named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.config import make_config
from edgekit.errors import ConfigError, UsageError
from edgekit.plan import build_plan

RECIPES = sorted((Path(__file__).resolve().parent.parent / "examples" / "recipes").glob("*.yaml"))


def test_there_are_example_recipes() -> None:
    assert {p.stem for p in RECIPES} >= {"smallest", "fastest-x86", "fastest-arm64", "balanced"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_example_recipes_load_and_plan(recipe: Path) -> None:
    cfg = make_config(recipe)
    steps = build_plan(cfg)
    assert steps[0].stage == "train" and len({s.name for s in steps}) == len(steps)


def test_the_reference_cnn_smallest_recipe_prunes_its_layers_and_quantizes_per_tensor() -> None:
    cfg = make_config(Path(__file__).resolve().parent.parent / "examples" / "recipes" / "smallest-reference-cnn.yaml")
    stages = [s.stage for s in build_plan(cfg)]
    assert "prune.structured" in stages and "prune.budgeted" not in stages and "quantize.ptq_int8" in stages
    structured = cfg.stage_config("prune.structured")
    assert structured.per_layer["dense1"] > 0.8 and structured.lr_schedule == "cosine" and structured.distill == 0.3
    assert cfg.stage_config("quantize.ptq_int8").per_channel is False


def test_flags_override_the_recipe(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("sparsity: 0.5\nquantization: [ptq-int8, qat]\nstructured: 0.25\n")
    cfg = make_config(f, {"sparsity": 0.7})
    assert cfg.sparsity == 0.7 and cfg.quantization == ("ptq-int8", "qat") and cfg.structured == 0.25
    stages = [s.stage for s in build_plan(cfg)]
    assert stages.count("prune.structured") == 1 and "quantize.qat" in stages


@pytest.mark.parametrize("text, expected", [
    ("sparsity: 0.5\nsparsityy: 0.2\n", "unknown key 'sparsityy'"),
    ("quantization: [int4]\n", "quantization[0]"),
    ("epochs: many\n", "epochs: expected an integer"),
    ("sparsity: 1.5\n", "--sparsity must be in [0, 1)"),
    ("- a\n- b\n", "must be a mapping"),
    ("a: [\n", "not valid YAML"),
])
def test_bad_recipes_are_named(tmp_path: Path, text: str, expected: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises((ConfigError, UsageError)) as e:
        make_config(f)
    assert expected in str(e.value) and "\n" not in str(e.value)
