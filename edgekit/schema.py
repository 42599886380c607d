"""Typed, frozen dataclasses from plain mappings (TOML, YAML, JSON, flags), rejecting
unknown keys and bad values with one-line errors that name the file and field.

One mechanism validates device profiles, recipes, flags and stage configs:

- :func:`option` declares a field with its help, range, choices and CLI flag in its metadata;
- :class:`Checked` is a base whose ``__post_init__`` coerces every field to its declared type and
  checks every declared range, so a dataclass built from Python is checked exactly like one
  built from a recipe or the command line (:func:`from_mapping`).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import math
import numbers
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

from edgekit.errors import ConfigError, FieldError

T = TypeVar("T")

MAX_SEED = 2**32 - 1
"""Largest seed: NumPy's global seeding (and so training) takes seeds in [0, 2**32)."""


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (error messages never echo a huge value)."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > 20:
        return f"{type(value).__name__} of {len(value)} items"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def suggest(value: Any, choices: Iterable[Any], cutoff: float = 0.5) -> str:
    """'; did you mean X?' for the closest of ``choices`` to ``value`` (difflib ratio), or '' when none
    reaches ``cutoff``. Ratios under 1/3 count as no likeness, so nonsense gets the first choice (the default)."""
    def score(c: str) -> float:
        r = difflib.SequenceMatcher(None, str(value), c).ratio()
        return r if r >= 1 / 3 else 0.0

    scored = [(score(str(c)), -i, str(c)) for i, c in enumerate(choices)]
    best = max(scored, default=None)
    return f"; did you mean {best[2]}?" if best is not None and best[0] >= cutoff else ""


def option(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
           ge: float | None = None, gt: float | None = None, le: float | None = None, lt: float | None = None,
           choices: tuple[str, ...] | Callable[[], Iterable[str]] | None = None, flag: str | None = None,
           key: str | None = None, group: str | None = None, runtime: bool = False, pattern: str | None = None) -> Any:
    """A dataclass field with everything the config layer needs in its metadata.

    ``ge``/``gt``/``le``/``lt``: bounds of a number (or of every item of a list/table of numbers);
    floats must also be finite. ``pattern``: a regular expression a string (or every string of a list)
    must match whole (a value handed to a tool, e.g. a compiler's -mcpu). ``choices``: allowed strings
    (a tuple, or a callable for choices known only at run time, such as the registered quantization
    modes). For stage configs:
    ``flag`` makes this field the owner of a ``CompressConfig`` key / ``edgekit compress`` flag of
    that name (its default, help and range are the flag's); ``key`` makes it follow a key owned
    elsewhere; ``runtime`` marks a value the pipeline fills in (not a user setting). ``group`` is
    the ``--help`` section of the flag.
    """
    meta: dict[str, Any] = {"help": help}
    for name, value in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt), ("choices", choices), ("flag", flag),
                        ("key", key), ("group", group), ("pattern", pattern)):
        if value is not None:
            meta[name] = value
    if runtime:
        meta["runtime"] = True
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def flag_name(key: str) -> str:
    """``calibration_samples`` → ``--calibration-samples``."""
    return "--" + key.replace("_", "-")


def choices_of(f: dataclasses.Field[Any]) -> tuple[str, ...] | None:
    c = f.metadata.get("choices")
    if c is None:
        return None
    return tuple(c() if callable(c) else c)


def range_text(meta: Mapping[str, Any]) -> str:
    """'in [0, 1)', 'at least 1', '> 0' … for a field's bounds ('' when unbounded)."""
    lo, hi = ("[", meta["ge"]) if "ge" in meta else ("(", meta["gt"]) if "gt" in meta else (None, None)
    up, cl = (meta["le"], "]") if "le" in meta else (meta["lt"], ")") if "lt" in meta else (None, None)
    if hi is not None and up is not None:
        return f"in {lo}{_num(hi)}, {_num(up)}{cl}"
    if hi is not None:
        return f"at least {_num(hi)}" if lo == "[" else f"> {_num(hi)}"
    if up is not None:
        return f"at most {_num(up)}" if cl == "]" else f"< {_num(up)}"
    return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def check_number(meta: Mapping[str, Any], value: Any) -> str | None:
    """The problem with one number under a field's bounds, as 'must be …, got X'; None when fine."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    bounded = any(k in meta for k in ("ge", "gt", "le", "lt"))
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be finite{' and ' + range_text(meta) if bounded else ''}, got {value}"
    ok = (("ge" not in meta or value >= meta["ge"]) and ("gt" not in meta or value > meta["gt"])
          and ("le" not in meta or value <= meta["le"]) and ("lt" not in meta or value < meta["lt"]))
    return None if ok else f"must be {range_text(meta)}, got {short(value)}"


def check_pattern(meta: Mapping[str, Any], value: Any) -> str | None:
    """The problem with one string under a field's ``pattern``, as 'must match …, got X'; None when fine."""
    pattern = meta.get("pattern")
    if pattern is None or not isinstance(value, str) or re.fullmatch(pattern, value):
        return None
    return f"must match {pattern}, got {short(value)}"


def value_problem(f: dataclasses.Field[Any], value: Any) -> str | None:
    """The problem with one value (or one item of a list/table) of field ``f``: its bounds, pattern and choices."""
    allowed = choices_of(f)
    return (check_number(f.metadata, value) or check_pattern(f.metadata, value)
            or (check_choice(allowed, value) if allowed is not None else None))


def check_choice(allowed: tuple[Any, ...], value: Any) -> str | None:
    if value in allowed:
        return None
    return f"{short(value)} is not one of {', '.join(str(a) for a in allowed)}{suggest(value, allowed, cutoff=0)}"


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple):
        return f"list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return "table"
    return getattr(tp, "__name__", str(tp))


def coerce(tp: Any, value: Any, where: str) -> Any:
    """``value`` as type ``tp`` (lists become tuples, ints floats), or a ConfigError naming ``where``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:  # X | None: X's own message ("expected an integer", not "int or NoneType")
            return coerce(others[0], value, where)
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(a, value, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {short(value)}")
    if origin is Literal:
        problem = check_choice(get_args(tp), value)
        if problem:
            raise ConfigError(f"{where}: {problem}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {short(value)}")
        (item,) = get_args(tp)[:1]
        return tuple(coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {short(value)}")
        _, vt = get_args(tp)
        return {str(k): coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {short(value)}")
        return from_mapping(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {short(value)}")
        return value
    if tp is int:  # numpy integers too (an in-memory report)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"{where}: expected an integer, got {short(value)}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{where}: expected a number, got {short(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {short(value)}")
        return value
    raise ConfigError(f"{where}: unsupported field type {tp!r}")  # pragma: no cover - programming error


_HINTS: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    """``get_type_hints(cls)``, computed once per class."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _items(label: str, value: Any) -> list[tuple[str, Any]]:
    """(label, value) of a field's value, or of each item of a list (``--x[0]``) or table (``--x.name``)."""
    if isinstance(value, Mapping):
        return [(f"{label}.{k}", v) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [(f"{label}[{i}]", v) for i, v in enumerate(value)]
    return [(label, value)]


class Checked:
    """Base of a config dataclass: ``__post_init__`` coerces every field and checks its range and choices.

    A bad value raises :class:`FieldError` naming the field.
    Subclasses add cross-field rules in ``check()``.
    """

    def __post_init__(self) -> None:
        types_ = hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            label = self.label(f)
            try:
                coerced = coerce(types_[f.name], value, label)
            except ConfigError as e:
                raise FieldError(label, str(e).removeprefix(f"{label}: ")) from None
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)
            for where, v in _items(label, coerced):
                problem = value_problem(f, v)
                if problem:
                    raise FieldError(where, problem)
        self.check()

    @classmethod
    def label(cls, f: dataclasses.Field[Any]) -> str:
        """How errors name field ``f`` (its name; ``CompressConfig`` names its flag)."""
        return f.name

    def check(self) -> None:
        """Cross-field rules (raise :class:`FieldError`)."""


def from_mapping(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    """Instantiate dataclass ``cls`` from ``data``; ``where`` prefixes error messages (file and table).

    Field metadata adapts it to JSON records (the report): ``rest`` collects the keys no field has
    (instead of rejecting them), ``keys`` receives the set of keys ``data`` had, ``whole`` the whole
    mapping, ``read(value, label)`` reads a field whose JSON shape its type does not say, and ``absent``
    is the value of a required field the mapping left out. A class
    with ``NULL_MEANS_DEFAULT`` takes a null as an absent key (the field's default).
    """
    types_ = hints(cls)
    all_fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    special = {m: f.name for f in all_fields for m in ("rest", "keys", "whole") if f.metadata.get(m)}
    fields = {f.name: f for f in all_fields if f.init and f.name not in special.values()}
    unknown = [k for k in data if str(k).replace("-", "_") not in fields]
    if unknown and not ({"rest", "whole"} & special.keys()):
        raise ConfigError(f"{where}: unknown key {short(unknown[0])}{suggest(unknown[0], fields)} "
                          f"(known: {', '.join(sorted(fields))})")
    lenient = getattr(cls, "NULL_MEANS_DEFAULT", False)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in fields or (value is None and lenient):
            continue
        label = f"{where}.{key}" if where else str(key)
        read = fields[name].metadata.get("read")
        kwargs[name] = read(value, label) if read else coerce(types_[name], value, label)
    for n, f in fields.items():  # a key the mapping may leave out that code must pass (a positional field)
        if n not in kwargs and "absent" in f.metadata:
            kwargs[n] = f.metadata["absent"]
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{where + '.' if where else ''}{missing[0]}: missing (a required key)")
    if "rest" in special:
        kwargs[special["rest"]] = {k: data[k] for k in unknown}
    if "keys" in special:
        kwargs[special["keys"]] = frozenset(k for k in data if k in fields)
    if "whole" in special:
        kwargs[special["whole"]] = dict(data)
    try:
        obj = cls(**kwargs)
    except FieldError as e:
        raise ConfigError(f"{where}.{e}" if where else str(e)) from None
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]  # the declared bounds, patterns and choices
        for label, v in _items(f"{where}.{f.name}" if where else f.name, getattr(obj, f.name)):
            problem = value_problem(f, v)
            if problem:
                raise ConfigError(str(FieldError(label, problem)))
    check = getattr(obj, "validate", None)
    if callable(check):
        check(where)
    return obj


def to_mapping(obj: Any) -> Any:
    """The inverse of :func:`from_mapping`: plain dicts/lists for JSON or hashing."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj
