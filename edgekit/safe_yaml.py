"""Bounded YAML reading for recipes: size, node count (aliases expanded) and depth are checked
before anything is built, so an alias bomb or a deeply nested file fails with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.errors import ConfigError

MAX_BYTES = 1 << 20
MAX_NODES = 20_000
MAX_DEPTH = 32


def _expanded_size(node: Any, what: str, max_nodes: int, max_depth: int) -> int:
    """Nodes in the document once aliases are expanded (memoised per node, so a bomb costs little)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def walk(n: Any, depth: int) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{what}: recursive YAML alias (line {n.start_mark.line + 1})")
        if depth > max_depth:
            raise ConfigError(f"{what}: nested more than {max_depth} levels deep (line {n.start_mark.line + 1})")
        active.add(key)
        total = 1
        if isinstance(n.value, list):
            for item in n.value:
                for child in (item if isinstance(item, tuple) else (item,)):
                    total += walk(child, depth + 1)
                    if total > max_nodes:
                        raise ConfigError(f"{what}: more than {max_nodes} values once YAML aliases are expanded "
                                          "(an alias bomb?)")
        active.discard(key)
        sizes[key] = total
        return total

    return walk(node, 0)


def load_yaml_bounded(path: str | Path, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES,
                      max_depth: int = MAX_DEPTH) -> Any:
    """Parse a YAML file with the safe loader after bounding its size, node count and depth.

    Raises ConfigError (one line naming the file) for an unreadable, oversized, non-UTF-8,
    invalid, too deep or alias-bomb file; ``!!python`` tags are refused by the safe loader.
    """
    import yaml

    p = Path(path)
    try:
        with open(p, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise ConfigError(f"{p}: cannot read ({e.strerror})") from None
    if len(raw) > max_bytes:
        raise ConfigError(f"{p}: larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {e.start})") from None
    try:
        loader = yaml.SafeLoader(text)  # the reader already refuses control characters
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0][:100]})") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, str(p), max_nodes, max_depth)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = str(getattr(e, "problem", None) or "")[:100]
        raise ConfigError(f"{p}: not valid YAML{where}{': ' + problem if problem else ''}") from None
    except RecursionError:
        raise ConfigError(f"{p}: nested too deeply") from None
    finally:
        loader.dispose()
