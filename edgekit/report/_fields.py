"""Report records declared once: each field's JSON key, type and rules live on the dataclass field.

A record's fields are its report.json keys, in the order they are written. :func:`key` puts a
field's rules in its metadata; :class:`Record` reads a record with :func:`edgekit.schema.from_mapping`
(the one typed reader: every error names the field's path) and writes it back with :meth:`Record.to_dict`,
both walking ``dataclasses.fields()``. Renderers and the benchmark runner take their field lists
from the same declarations (:meth:`Record.keys`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from edgekit.errors import ConfigError, ReportError
from edgekit.schema import from_mapping

R = TypeVar("R", bound="Record")
Json = Mapping[str, Any]

WRITE = ("always", "set")
"""When ``to_dict`` writes a field: ``always`` (null included), or ``set`` (only when not null, "" or empty), so a
report written before the field existed reads and writes back unchanged."""


def key(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, write: str = "always",
        group: str = "", fraction: bool = False, size: bool = False, choices: tuple[str, ...] | None = None,
        read: Callable[[Any, str], Any] | None = None, measured: bool = False,
        absent: Any = dataclasses.MISSING) -> Any:
    """A report field. ``group`` names the fields a producer adds together (``edgekit.bench.peak``'s ``peak``);
    ``fraction``/``size``/``choices`` are checked on reading; ``read(value, label)`` reads a field whose JSON
    shape its type does not say; ``measured`` marks a benchmark figure a failed cell has none of; ``absent`` is
    the value of a field code must pass but a report may leave out."""
    assert write in WRITE, write
    meta: dict[str, Any] = {"write": write, "group": group}
    for name, value in (("fraction", fraction), ("size", size), ("choices", choices), ("read", read),
                        ("measured", measured)):
        if value:
            meta[name] = value
    if absent is not dataclasses.MISSING:
        meta["absent"] = absent
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def rest() -> Any:
    """The field that keeps the keys a record does not know (written back after its own)."""
    return dataclasses.field(default_factory=dict, metadata={"rest": True})


def present() -> Any:
    """The field that records which keys the dict had: ``to_dict`` writes those back (records built in code:
    those that are set)."""
    return dataclasses.field(default=frozenset(), compare=False, repr=False, metadata={"keys": True})


def whole() -> Any:
    """The field that keeps the whole mapping as read (a record written back as it came)."""
    return dataclasses.field(default_factory=dict, metadata={"whole": True})


def _plain(v: Any) -> Any:
    """A field's value as JSON-ready data: records as dicts, tuples as lists, mappings as dicts."""
    if isinstance(v, Record):
        return v.to_dict()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _empty(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, (tuple, list, Mapping)) and not v)


class Record:
    """Base of the report records (frozen dataclasses): reading, checking and writing from the field declarations.

    A record that a report.json may extend has a :func:`rest` field, so keys a later edgekit writes are kept.
    """

    NULL_MEANS_DEFAULT: ClassVar[bool] = True  # report.json writes null for a value it does not have

    @classmethod
    def keys(cls, group: str | None = None) -> tuple[str, ...]:
        """The record's JSON keys in written order (only ``group``'s when given)."""
        return tuple(f.name for f in dataclasses.fields(cls) if "write" in f.metadata  # type: ignore[arg-type]
                     and (group is None or f.metadata["group"] == group))

    @classmethod
    def measured_keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("measured"))  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[R], data: Any, source: str = "report") -> R:
        """Check and type one record; a bad field raises ReportError naming ``source`` and the field."""
        return read(cls, data, source)

    def validate(self, where: str) -> None:
        """The checks a type does not say: fractions in [0, 1], sizes >= 0, one of the choices."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v, m = getattr(self, f.name), f.metadata
            if v is None:
                continue
            if m.get("fraction") and not 0.0 <= v <= 1.0:
                fail(where, f.name, f"expected a fraction in [0, 1], got {v}")
            if m.get("size") and v < 0:
                fail(where, f.name, f"expected a size >= 0, got {v}")
            if m.get("choices") and v not in m["choices"]:
                fail(where, f.name, f"expected one of {', '.join(m['choices'])}, got {show(v)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the record's keys in order (see :data:`WRITE`), then the keys it did not know."""
        out: dict[str, Any] = {}
        extra: Mapping[str, Any] = {}
        had: frozenset[str] | None = None
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if f.metadata.get("rest"):
                extra = v
            elif f.metadata.get("keys"):
                had = v
            elif "write" in f.metadata:
                out[f.name] = v
        if had is not None:  # a record that writes back the keys it was read with
            if had:
                return {**{k: _plain(v) for k, v in out.items() if k in had}, **extra}
            return {**{k: _plain(v) for k, v in out.items() if not (v is None or self._skip(k, v))}, **extra}
        return {**{k: _plain(v) for k, v in out.items() if not self._skip(k, v)}, **extra}

    def _skip(self, name: str, v: Any) -> bool:
        return self.__dataclass_fields__[name].metadata["write"] == "set" and _empty(v)  # type: ignore[attr-defined]


def read(cls: type[R], data: Any, source: str, where: str = "",
         reader: Callable[[Any, str], R] | None = None) -> R:
    """``cls`` from ``data`` (a record's dict; ``reader(data, where)`` for a record stored in another shape);
    errors are ReportError lines naming ``source`` and the field."""
    if not isinstance(data, Mapping):
        raise ReportError(f"{source}: {where or 'top level'}: expected an object, got {show(data)}")
    try:
        return reader(data, where) if reader else from_mapping(cls, data, where)
    except ConfigError as e:
        raise ReportError(f"{source}: {e}") from None


def path(where: str, key: str) -> str:
    """The name errors give field ``key`` of the record at ``where`` (``artifacts[2].bytes``)."""
    return f"{where}.{key}" if where and key else (where or key or "top level")


def fail(where: str, key: str, msg: str) -> None:
    """Raise the error of field ``key`` of the record at ``where`` (:func:`read` names the file)."""
    raise ConfigError(f"{path(where, key)}: {msg}")


def show(v: Any, width: int = 40) -> str:
    """A short repr of a bad value for an error message (never the whole of a large value)."""
    text = "null" if v is None else repr(v)
    return text if len(text) <= width else text[: width - 1] + "…"


def pct(x: float | None) -> float | None:
    """A fraction as a percentage (None stays None)."""
    return None if x is None else x * 100.0
