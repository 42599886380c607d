"""Typed reading of a JSON object for the report records: each error names the file and the field's path."""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, Sequence, TypeVar

from edgekit.errors import ReportError

T = TypeVar("T")
Json = Mapping[str, Any]


class Reader:
    """Typed access to one JSON object; every error names ``source`` and the field's path."""

    def __init__(self, data: Any, where: str, source: str) -> None:
        self.where, self.source = where, source
        if not isinstance(data, Mapping):
            self.fail("", f"expected an object, got {show(data)}")
        self.data: Mapping[str, Any] = data

    def fail(self, key: str, msg: str) -> None:
        name = f"{self.where}.{key}" if self.where and key else (self.where or key or "top level")
        raise ReportError(f"{self.source}: {name}: {msg}")

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.data:
            if required:
                self.fail(key, "missing")
            return None
        return self.data[key]

    def str_(self, key: str, required: bool = False) -> str | None:
        v = self._get(key, required)
        if v is None:
            if required:
                self.fail(key, "expected a string, got null")
            return None
        if not isinstance(v, str):
            self.fail(key, f"expected a string, got {show(v)}")
        return v

    def num(self, key: str) -> float | None:
        v = self._get(key, False)
        return None if v is None else self._number(key, v)

    def int_(self, key: str) -> int | None:
        v = self._get(key, False)
        return None if v is None else self._integer(key, v)

    def bool_(self, key: str) -> bool:
        v = self._get(key, False)
        if v is None:
            return False
        if not isinstance(v, bool):
            self.fail(key, f"expected true or false, got {show(v)}")
        return v

    def mapping(self, key: str) -> Mapping[str, Any] | None:
        v = self._get(key, False)
        if v is None:
            return None
        if not isinstance(v, Mapping):
            self.fail(key, f"expected an object, got {show(v)}")
        return v

    def list_(self, key: str) -> list[Any]:
        v = self._get(key, False)
        if v is None:
            return []
        if not isinstance(v, list):
            self.fail(key, f"expected a list, got {show(v)}")
        return v

    def _number(self, name: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):  # numpy scalars too (an in-memory report)
            self.fail(name, f"expected a number, got {show(v)}")
        return float(v)

    def _integer(self, name: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            self.fail(name, f"expected an integer, got {show(v)}")
        return int(v)

    def nums(self, key: str) -> tuple[float, ...]:
        """A list of numbers (absent: empty)."""
        return tuple(self._number(f"{key}[{i}]", v) for i, v in enumerate(self.list_(key)))

    def ints(self, key: str) -> tuple[int, ...]:
        """A list of integers (absent: empty)."""
        return tuple(self._integer(f"{key}[{i}]", v) for i, v in enumerate(self.list_(key)))

    def num_map(self, key: str) -> dict[str, float] | None:
        """An object whose values are numbers (absent: None)."""
        raw = self.mapping(key)
        return None if raw is None else {str(k): self._number(f"{key}.{k}", v) for k, v in raw.items()}

    def strs(self, key: str) -> tuple[str, ...]:
        items = self.list_(key)
        for i, s in enumerate(items):
            if not isinstance(s, str):
                self.fail(f"{key}[{i}]", f"expected a string, got {show(s)}")
        return tuple(items)

    def records(self, key: str, parse: Callable[[Reader], T]) -> tuple[T, ...]:
        return tuple(parse(self.child(f"{key}[{i}]", item)) for i, item in enumerate(self.list_(key)))

    def record(self, key: str, parse: Callable[[Reader], T]) -> T | None:
        v = self._get(key, False)
        return None if v is None else parse(self.child(key, v))

    def child(self, key: str, data: Any) -> Reader:
        return Reader(data, f"{self.where}.{key}" if self.where else key, self.source)

    def extra(self, known: Sequence[str]) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in known}


def show(v: Any, width: int = 40) -> str:
    """A short repr of a bad value for an error message (never the whole of a large value)."""
    text = "null" if v is None else repr(v)
    return text if len(text) <= width else text[: width - 1] + "…"


def pct(x: float | None) -> float | None:
    """A fraction as a percentage (None stays None)."""
    return None if x is None else x * 100.0


def written(values: Mapping[str, Any], present: frozenset[str]) -> dict[str, Any]:
    """The keys to write back: those the dict was read with, or (a record built in code) those that are set."""
    return {k: v for k, v in values.items() if (k in present if present else v is not None)}
