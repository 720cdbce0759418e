"""Typed configuration records: checked values, and plain data (TOML, JSON) read into them and back.

A configuration is a frozen dataclass whose fields are numbers, flags, names, tuples, optional
values and nested configurations. :func:`from_data` reads plain data over a base instance: a
field it does not name keeps the base's value, a nested table is read over the nested
configuration, a list of tables over the list at the same positions; a value of the wrong type
is refused with the field's dotted name (``prealign.starts``, ``levels[2].width``), never
converted silently (``"false"`` is not False, 2.5 is not a whole number). In TOML, which has no
null, ``"none"`` stands for None and ``false`` for an optional configuration switched off.
:func:`to_data` and :func:`to_toml` write a configuration back so that :func:`from_data` reads
the same one.

The ``check_*`` helpers are the range checks of the dataclasses' ``__post_init__``: each error
names the field and says what is allowed (:class:`ConfigError`, a ValueError).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any

__all__ = ["ConfigError", "fail", "check_int", "check_float", "check_choice", "check_bool", "from_data", "to_data",
           "to_toml"]


class ConfigError(ValueError):
    """A configuration value of the wrong type or out of range; the message names the field."""


def fail(name: str, message: str) -> None:
    raise ConfigError(f"{name}: {message}")


def check_int(name: str, value, lo: int, hi: int, *, none: bool = False) -> None:
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(name, f"must be a whole number{' or None' if none else ''}; got {value!r}")
    if not lo <= value <= hi:
        fail(name, f"must be between {lo} and {hi:,}; got {value}")


def check_float(name: str, value, lo: float, hi: float = math.inf, *, none: bool = False, open_lo: bool = False
                 ) -> None:
    if value is None and none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        fail(name, f"must be a finite number{' or None' if none else ''}; got {value!r}")
    if value < lo or (open_lo and value == lo) or value > hi:
        lower = f"> {lo:g}" if open_lo else f">= {lo:g}"
        fail(name, f"must be {lower}" + (f" and <= {hi:g}" if hi < math.inf else "") + f"; got {value}")


def check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        fail(name, f"must be one of {', '.join('none' if c is None else repr(c) for c in choices)}; got {value!r}")


def check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        fail(name, f"must be true or false; got {value!r}")


# ------------------------------------------------------------------------------------ reading
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _optional(tp) -> tuple[Any, bool]:
    """(the type inside ``X | None``, whether None is allowed)."""
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return inner[0], len(inner) < len(args)
    return tp, False


def from_data(base, data: dict, path: str = ""):
    """``base`` (a configuration dataclass) with the fields of ``data`` (plain data, or values of
    the fields' types) read over it; ``path`` prefixes the field names in errors ("prealign.").

    Raises
    ------
    ConfigError
        An unknown field, a value of the wrong type, or one the dataclass refuses (its range).
    """
    if dataclasses.is_dataclass(data) and type(data) is type(base):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{path.rstrip('.') or 'configuration'}: expected a table of fields; got {data!r}")
    hints = _hints(type(base))
    known = [f.name for f in dataclasses.fields(base)]
    changes = {}
    for key, value in data.items():
        if key not in hints:
            raise ConfigError(f"{path}{key}: unknown field; {type(base).__name__} has {', '.join(known)}")
        changes[key] = _read(hints[key], value, getattr(base, key), f"{path}{key}")
    try:
        return dataclasses.replace(base, **changes)
    except ConfigError as exc:  # a range check of the dataclass: name the field by its full path
        raise ConfigError(f"{path}{exc}") from None


def _read(tp, value, current, name: str):
    """``value`` (plain data) read as a value of type ``tp``, over the ``current`` value."""
    inner, nullable = _optional(tp)
    if nullable and (value is None or value is False or (isinstance(value, str) and value.lower() == "none")):
        return None
    if dataclasses.is_dataclass(inner):
        if isinstance(value, inner):
            return value
        if value is True:
            value = {}
        start = current if isinstance(current, inner) else inner()
        return from_data(start, value, f"{name}.")
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if origin is tuple:
        return _read_tuple(args[0], value, current, name)
    return _scalar(inner, value, name)


def _read_tuple(item, value, current, name: str) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name}: expected a list; got {value!r}")
    if dataclasses.is_dataclass(item):  # levels: each table over the level at its place
        current = tuple(current or ())
        out = []
        for i, v in enumerate(value):
            start = current[i] if i < len(current) else (current[-1] if current else item())
            out.append(v if isinstance(v, item) else from_data(start, v, f"{name}[{i}]."))
        return tuple(out)
    return tuple(_scalar(item, v, f"{name}[{i}]") for i, v in enumerate(value))


def _scalar(tp, value, name: str):
    """A bool, int, float or str of the right kind; no silent conversion ("false" is not False)."""
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false; got {value!r}")
        return value
    if tp is int:
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
                and float(value).is_integer():
            return int(value)
        raise ConfigError(f"{name}: expected a whole number; got {value!r}")
    if tp is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{name}: expected a number; got {value!r}")
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a name; got {value!r}")
        return value
    raise ConfigError(f"{name}: cannot read a {tp}")


# ------------------------------------------------------------------------------------ writing
def to_data(value):
    """A configuration as plain data: nested dicts, lists, numbers, names, None."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [to_data(v) for v in value]
    return value


def _toml_value(value) -> str:
    import json

    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def to_toml(data: dict, title: str) -> str:
    """TOML of a configuration's plain data: scalars first, then a table per nested
    configuration (``[a]``, ``[a.b]``), then an array of tables per list of them (``[[a.levels]]``);
    None is written "none"."""
    lines = [f"# {title}", '# lengths are fractions of the scale (RMS radius of the source); "none" is None']
    lines += _toml_table(data, "")
    return "\n".join(lines) + "\n"


def _toml_table(data: dict, prefix: str) -> list[str]:
    lines, tables, arrays = [], [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            arrays.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        lines += ["", f"[{prefix}{key}]", *_toml_table(table, f"{prefix}{key}.")]
    for key, rows in arrays:
        for row in rows:
            lines += ["", f"[[{prefix}{key}]]", *_toml_table(row, f"{prefix}{key}.")]
    return lines
