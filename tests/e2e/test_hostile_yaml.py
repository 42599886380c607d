"""Recipes are read within bounds: alias bombs, depth, size, encoding."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edgekit.config import make_config
from edgekit.errors import ConfigError
from edgekit.safe_yaml import load_yaml_bounded


def alias_bomb(key: str = "sparsity", levels: int = 9) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} [{refs}]")
    lines.append(f"{key}: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, data: str | bytes) -> Path:
    p = tmp_path / "recipe.yaml"
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


@pytest.mark.parametrize(("data", "words"), [
    (alias_bomb(), "alias bomb"),
    ("a: &a [*a]\n", "recursive"),
    ("sparsity: " + "[" * 200 + "]" * 200 + "\n", "nested"),
    (b"sparsity: 0.5\nname: \xff\xfe\n", "not UTF-8"),
    ("sparsity: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ("sparsity: [\n", "line 2"),
])
def test_hostile_recipe(tmp_path: Path, data: str | bytes, words: str) -> None:
    path = _write(tmp_path, data)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        make_config(path)
    assert time.perf_counter() - t0 < 5
    msg = str(e.value)
    assert words in msg and str(path) in msg and len(msg) < 300


def test_alias_bomb_under_a_known_key_is_not_expanded_into_the_message(tmp_path: Path) -> None:
    """The error message names the key; it never repr()s the expanded bomb (GBs)."""
    with pytest.raises(ConfigError) as e:
        make_config(_write(tmp_path, alias_bomb("quantization", levels=12)))
    assert len(str(e.value)) < 300


def test_too_large(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="larger than"):
        load_yaml_bounded(_write(tmp_path, "# pad\n" * 100), max_bytes=100)


def test_small_alias_use_is_fine(tmp_path: Path) -> None:
    data = load_yaml_bounded(_write(tmp_path, "a: &q [ptq-int8]\nquantization: *q\n"))
    assert data == {"a": ["ptq-int8"], "quantization": ["ptq-int8"]}
