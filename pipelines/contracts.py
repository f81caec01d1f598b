"""Feed contracts: one YAML per feed under ``schemas/feeds/<agency>/``.

A contract declares how to read one agency's file (format, encoding, delimiter, file pattern)
and how each harmonised field is made from its columns (column, parser, lookup). The engine in
``pipelines.harmonise`` interprets it; adding a feed never needs Python.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.resources import schemas_dir

FORMATS = ("csv", "jsonl", "xlsx")
ROLES = ("victim", "offender")
# Parsers the engine knows, and the keys each one reads from a field spec.
PARSERS = {
    "text": {"column"},
    "reference": {"column"},
    "date": {"column", "formats"},
    "age": {"column"},
    "country": {"column"},
    "ubigeo": {"column", "list", "restore_leading_zeros"},
    "statute": {"column"},
    "name": {"style", "column", "given_names", "paternal_surname", "maternal_surname", "surnames"},
    "document": {"type_column", "number_column", "type_lookup", "type", "restore_leading_zeros"},
    "lookup": {"column", "lookup"},
    "constant": {"value"},
}
NAME_STYLES = {
    "surnames_comma_given": {"column"},
    "given_then_surnames": {"column"},
    "parts": {"given_names", "paternal_surname"},
    "given_and_surnames": {"given_names", "surnames"},
}


class ContractError(ValueError):
    """A feed contract is malformed. The message names the file and the key at fault."""


@dataclass(frozen=True)
class FieldSpec:
    target: str
    parser: str
    options: dict[str, Any]

    @property
    def source_columns(self) -> list[str]:
        keys = ("column", "given_names", "paternal_surname", "maternal_surname", "surnames",
                "type_column", "number_column")
        if self.parser == "name" and self.options.get("style") in ("surnames_comma_given", "given_then_surnames"):
            keys = ("column",)
        return [self.options[k] for k in keys if isinstance(self.options.get(k), str)]


@dataclass(frozen=True)
class Contract:
    feed: str
    agency: str
    title: str
    role: str
    version: str
    files: str
    format: str
    encoding: str
    delimiter: str
    record_id: str
    fields: tuple[FieldSpec, ...]
    lookups: dict[str, dict[str, Any]]
    ignore_columns: tuple[str, ...]
    min_rows: int
    max_rows: int | None
    path: str = ""
    system: str = ""
    required_for_period: bool = False  # delivery.required: a period runs only once this feed arrived
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def mapped_columns(self) -> set[str]:
        cols = {self.record_id}
        for spec in self.fields:
            cols.update(spec.source_columns)
        return cols

    @property
    def expected_columns(self) -> set[str]:
        return self.mapped_columns | set(self.ignore_columns)


def _parser_of(target: str, spec: dict) -> str:
    if "parse" in spec:
        return spec["parse"]
    if "value" in spec:
        return "constant"
    if "lookup" in spec:
        return "lookup"
    return "text"


def parse_contract(raw: dict[str, Any], path: str = "<memory>") -> Contract:
    def need(mapping: dict, key: str, where: str):
        if not isinstance(mapping, dict) or key not in mapping:
            raise ContractError(f"{path}: missing required key {where}{key!r}")
        return mapping[key]

    source = need(raw, "source", "")
    fmt = need(source, "format", "source.")
    if fmt not in FORMATS:
        raise ContractError(f"{path}: source.format must be one of {FORMATS}, not {fmt!r}")
    role = need(raw, "role", "")
    if role not in ROLES:
        raise ContractError(f"{path}: role must be one of {ROLES}, not {role!r}")
    lookups = raw.get("lookups") or {}
    specs = []
    for target, spec in (need(raw, "fields", "") or {}).items():
        if not isinstance(spec, dict):
            raise ContractError(f"{path}: fields.{target} must be a mapping")
        parser = _parser_of(target, spec)
        if parser not in PARSERS:
            raise ContractError(f"{path}: fields.{target}: unknown parser {parser!r}")
        options = {k: v for k, v in spec.items() if k != "parse"}
        unknown = set(options) - PARSERS[parser] - {"lookup"}
        if unknown:
            raise ContractError(f"{path}: fields.{target}: unknown keys {sorted(unknown)} for parser {parser!r}")
        if parser == "name":
            style = options.get("style")
            if style not in NAME_STYLES:
                raise ContractError(f"{path}: fields.{target}.style must be one of {sorted(NAME_STYLES)}")
            missing = NAME_STYLES[style] - set(options)
            if missing:
                raise ContractError(f"{path}: fields.{target}: style {style} needs {sorted(missing)}")
        for key in ("lookup", "type_lookup"):
            name = options.get(key)
            if name is not None and name not in lookups:
                raise ContractError(f"{path}: fields.{target}.{key} names unknown lookup {name!r}")
        if parser not in ("constant", "name", "document") and "column" not in options:
            raise ContractError(f"{path}: fields.{target} needs a column")
        if parser == "document" and "number_column" not in options:
            raise ContractError(f"{path}: fields.{target} needs a number_column")
        specs.append(FieldSpec(target=target, parser=parser, options=options))
    assertions = raw.get("assertions") or {}
    delivery = raw.get("delivery") or {}
    if not isinstance(delivery, dict) or not isinstance(delivery.get("required", False), bool):
        raise ContractError(f"{path}: delivery.required must be true or false")
    return Contract(
        required_for_period=delivery.get("required", False),
        feed=str(need(raw, "feed", "")),
        agency=str(need(raw, "agency", "")),
        title=str(raw.get("title", "")),
        system=str(raw.get("system", "")),
        role=role,
        version=str(raw.get("version", "0")),
        files=str(need(source, "files", "source.")),
        format=fmt,
        encoding=str(source.get("encoding", "utf-8")),
        delimiter=str(source.get("delimiter", ",")),
        record_id=str(need(raw, "record_id", "")),
        fields=tuple(specs),
        lookups={k: dict(v or {}) for k, v in lookups.items()},
        ignore_columns=tuple(raw.get("ignore_columns") or ()),
        min_rows=int(assertions.get("min_rows", 0)),
        max_rows=int(assertions["max_rows"]) if assertions.get("max_rows") is not None else None,
        path=path,
        raw=raw,
    )


def load_contract(path: str | Path) -> Contract:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    return parse_contract(raw, str(path))


@functools.lru_cache(maxsize=None)
def _load_dir(root: str) -> tuple[Contract, ...]:
    contracts = [load_contract(p) for p in sorted(Path(root).glob("*/*.yaml"))]
    seen: dict[str, str] = {}
    for c in contracts:
        if c.feed in seen:
            raise ContractError(f"{c.path}: feed id {c.feed!r} already declared in {seen[c.feed]}")
        seen[c.feed] = c.path
    return tuple(contracts)


def load_contracts(*extra_dirs: str | Path) -> list[Contract]:
    """All contracts shipped under ``schemas/feeds`` plus those in ``extra_dirs`` (same layout)."""
    contracts = list(_load_dir(str(schemas_dir() / "feeds")))
    for d in extra_dirs:
        contracts.extend(_load_dir(str(Path(d))))
    ids = [c.feed for c in contracts]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ContractError(f"feed ids declared twice: {sorted(dupes)}")
    return contracts
