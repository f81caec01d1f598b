"""Settings files (YAML) read into frozen dataclasses, checked against what the classes declare.

``parse(cls, mapping)`` builds ``cls`` from what ``yaml.safe_load`` gave: a key the class does not
declare, a required key missing or a value of the wrong type is a :class:`SettingsError` that names
the key (``thresholds.review_lower``, ``comparisons[3].column``), never the value. Lists become
tuples; the classes' type hints say what each value must be. A :class:`Part` remembers which keys
its file wrote, in their order: ``as_dict`` gives it back as written (the linkage model artefact
carries its settings so).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any


class SettingsError(ValueError):
    """A settings file that does not say what its classes declare (the message names the key)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Part:
    """A part of a settings file; ``_given``: the keys the file wrote, in its order."""

    _given: tuple[str, ...] = dataclasses.field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict:
        return as_dict(self)


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _at(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _declared(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.name != "_given"}


def parse(cls, raw: Any, where: str = ""):
    """``raw`` (a mapping from a YAML file) as a ``cls``; ``where``: the key it was read under."""
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where or 'the settings'} must be a mapping of keys")
    declared, hints = _declared(cls), typing.get_type_hints(cls)
    for key in raw:
        if key not in declared:
            raise SettingsError(f"unknown key {_at(where, key)}")
    for name, f in declared.items():
        if name not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SettingsError(f"missing key {_at(where, name)}")
    values = {key: _value(hints[key], value, _at(where, key)) for key, value in raw.items()}
    if issubclass(cls, Part):
        values["_given"] = tuple(raw)
    return cls(**values)


def _value(hint, value: Any, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return _value(hint, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise SettingsError(f"{where} must be a list")
        return tuple(_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise SettingsError(f"{where} must be a mapping")
        return {_value(args[0], k, f"a key of {where}"): _value(args[1], v, _at(where, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise SettingsError(f"{where} must be {_KINDS.get(hint, hint.__name__)}")


def written(part: Part) -> tuple[str, ...]:
    """The keys the file wrote for ``part`` (none for a part made in code)."""
    return part._given


def as_dict(part) -> dict:
    """A settings object as plain data: the keys its file wrote, in the file's order, then every
    other field whose value is not its default (changed in code)."""
    declared = _declared(part)
    given = [n for n in getattr(part, "_given", ()) if n in declared]
    names = given + [n for n, f in declared.items() if n not in given and getattr(part, n) != _default(f)]
    return {n: _plain(getattr(part, n)) for n in names}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING  # required: always written


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return as_dict(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
