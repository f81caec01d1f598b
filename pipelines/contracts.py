"""Feed contracts: one YAML per feed under ``schemas/feeds/<agency>/``.

A contract declares how to read one agency's file (format, encoding, delimiter, file pattern)
and how each harmonised field is made from its columns (column, parser, lookup). The engine in
``pipelines.harmonise`` interprets it; adding a feed never needs Python.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.resources import schemas_dir

SCHEMA_FILE = "contract.schema.json"  # schemas/feeds/contract.schema.json: the contract language
# Keys of a field spec that name source columns (or paths into nested records).
COLUMN_KEYS = ("column", "given_names", "paternal_surname", "maternal_surname", "surnames",
               "type_column", "number_column")
# Fields a place parser may fill: the event place, and where the person comes from (origin_* columns).
PLACE_TARGETS = ("ubigeo", "place_of_origin")
# a reference format's placeholders (``patterns`` of a field: "AT-{number}-{year}")
_PLACEHOLDERS = {"number": r"(?P<number>\d+)", "year": r"(?P<year>(?:19|20)\d\d)", "unit": r"(?P<unit>[A-Z0-9]+)"}
_SEPARATOR_RUN = re.compile(r"[^A-Z0-9{}]+")


def _format_regex(fmt: str) -> str:
    """A format ("AT-{number}-{year}") as a regex: placeholders become groups, separators loose."""
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", fmt.upper()):
        out.append(fmt.upper()[pos:m.start()])
        out.append("\x00" + m.group(1).lower() + "\x00")
        pos = m.end()
    out.append(fmt.upper()[pos:])
    text = "".join(out)
    pieces = []
    for part in re.split(r"(\x00\w+\x00)", text):
        if part.startswith("\x00"):
            name = part.strip("\x00")
            if name not in _PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {{{name}}} in a reference format")
            pieces.append(_PLACEHOLDERS[name])
        else:
            pieces.append(r"[\s\-/_.]*".join(re.escape(w) for w in _SEPARATOR_RUN.split(part)))
    return "".join(pieces)


@functools.lru_cache(maxsize=64)
def compile_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern, ...]:
    """A field's reference ``patterns`` as compiled regexes (a format with placeholders is converted
    first): checked when a contract loads, applied by ``pipelines.harmonise.references``."""
    return tuple(re.compile(p if "(?P<" in p else _format_regex(p), re.IGNORECASE) for p in patterns)


class ContractError(ValueError):
    """A feed contract is malformed. The message names the file and the key at fault."""


@dataclass(frozen=True)
class FieldSpec:
    target: str
    parser: str
    options: dict[str, Any]

    @property
    def source_columns(self) -> list[str]:
        keys = COLUMN_KEYS
        if self.parser == "name" and self.options.get("style") in ("surnames_comma_given", "given_then_surnames"):
            keys = ("column",)
        return [self.options[k] for k in keys if isinstance(self.options.get(k), str)]

    @property
    def required(self) -> str | None:
        """quarantine, warn, or None when an empty or unknown value is simply null."""
        return self.options.get("required")


def path_root(column: str) -> str:
    """The top-level key a column path starts from ("documentos[].numero" -> "documentos")."""
    return column.split(".", 1)[0].removesuffix("[]")


#: A row-count assertion's severity when the contract gives none (docs/feed-contracts.md).
ASSERTION_SEVERITY = {"min_rows": "blocking", "max_rows": "warning"}


@dataclass(frozen=True)
class RowAssertion:
    """A bound on the feed's harmonised rows: ``min_rows`` (at least) or ``max_rows`` (at most)."""

    name: str
    bound: int
    severity: str

    def holds(self, rows: int) -> bool:
        return rows >= self.bound if self.name == "min_rows" else rows <= self.bound


def _assertions(raw: dict[str, Any]) -> tuple[RowAssertion, ...]:
    out = []
    for name, default in ASSERTION_SEVERITY.items():
        spec = (raw.get("assertions") or {}).get(name)
        if spec is None:
            continue
        spec = spec if isinstance(spec, dict) else {"value": spec}
        out.append(RowAssertion(name, int(spec["value"]), spec.get("severity", default)))
    return tuple(out)


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
    assertions: tuple[RowAssertion, ...] = ()  # row-count bounds with their severity
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def mapped_columns(self) -> set[str]:
        cols = {self.record_id}
        for spec in self.fields:
            cols.update(spec.source_columns)
        return cols

    @property
    def expected_columns(self) -> set[str]:
        return self.mapped_columns | set(self.ignore_columns) | {path_root(c) for c in self.mapped_columns}

    def missing_columns(self, header: list[str]) -> list[str]:
        """Mapped columns the header lacks: a column, or the top-level key a path starts from
        (a header that really has a dotted name, "NRO.DOC", is taken as is)."""
        have = set(header)
        return sorted(c for c in self.mapped_columns if c not in have and path_root(c) not in have)


def _parser_of(spec: dict) -> str:
    if "parse" in spec:
        return spec["parse"]
    if "value" in spec:
        return "constant"
    if "lookup" in spec:
        return "lookup"
    return "text"


@functools.lru_cache(maxsize=1)
def contract_schema() -> dict[str, Any]:
    """The contract language as JSON Schema (schemas/feeds/contract.schema.json)."""
    return json.loads((schemas_dir() / "feeds" / SCHEMA_FILE).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(contract_schema())


def _line_index(node: yaml.Node | None) -> dict[tuple, int]:
    """YAML node tree -> {path of keys: 1-based line}; a mapping key maps to the line of the key."""
    lines: dict[tuple, int] = {}

    def walk(n: yaml.Node, where: tuple) -> None:
        lines.setdefault(where, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = (*where, k.value)
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*where, i))

    if node is not None:
        walk(node, ())
    return lines


def _dotted(keys: tuple) -> str:
    return ".".join(str(k) for k in keys) or "(top level)"


def _error_at(path: str, lines: dict[tuple, int], keys: tuple, message: str) -> ContractError:
    line = next((lines[keys[:i]] for i in range(len(keys), -1, -1) if keys[:i] in lines), None)
    where = f"{path}:{line}" if line else path
    return ContractError(f"{where}: {_dotted(keys)}: {message}")


def _schema_message(error) -> tuple[tuple, str]:
    """(path of keys, one-line message) for the most telling error jsonschema found."""
    keys = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            allowed = ", ".join(sorted(error.schema.get("properties", {})))
            return (*keys, extra[0]), f"unknown key (allowed here: {allowed})"
    if error.validator == "required":
        return keys, error.message.replace("is a required property", "is required here")
    if error.validator == "enum":
        return keys, f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "pattern" and error.schema.get("description"):
        return keys, f"{error.instance!r} is not valid: {error.schema['description']}"
    return keys, error.message


def validate_contract(raw: Any, path: str = "<memory>", lines: dict[tuple, int] | None = None) -> None:
    """Check a contract against the schema and its cross-references; raise a one-line ContractError
    naming the file, the line (when known) and the key at fault."""
    import jsonschema

    lines = lines or {}
    errors = sorted(_validator().iter_errors(raw), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise _error_at(path, lines, *_schema_message(best))
    lookups = raw.get("lookups") or {}
    for name, table in lookups.items():
        for key in table or {}:
            if not isinstance(key, str):
                raise _error_at(path, lines, ("lookups", name, key),
                                f"YAML read this key as {key!r}, not as text: quote it")
    for target, spec in raw["fields"].items():
        if _parser_of(spec) == "ubigeo" and target not in PLACE_TARGETS:
            raise _error_at(path, lines, ("fields", target), f"a place must be one of {', '.join(PLACE_TARGETS)}")
        if spec.get("patterns"):
            try:
                compile_patterns(tuple(spec["patterns"]))
            except (ValueError, re.error) as exc:
                raise _error_at(path, lines, ("fields", target, "patterns"), f"not a valid pattern ({exc})") from None
        for key in ("lookup", "type_lookup"):
            if key in spec and spec[key] not in lookups:
                raise _error_at(path, lines, ("fields", target, key), f"names unknown lookup {spec[key]!r}")


def parse_contract(raw: dict[str, Any], path: str = "<memory>", lines: dict[tuple, int] | None = None) -> Contract:
    validate_contract(raw, path, lines)
    source = raw["source"]
    lookups = raw.get("lookups") or {}
    specs = tuple(
        FieldSpec(target=target, parser=_parser_of(spec), options={k: v for k, v in spec.items() if k != "parse"})
        for target, spec in raw["fields"].items()
    )
    assertions = _assertions(raw)
    bounds = {a.name: a.bound for a in assertions}
    return Contract(
        required_for_period=(raw.get("delivery") or {}).get("required", False),
        feed=raw["feed"],
        agency=raw["agency"],
        title=str(raw.get("title", "")),
        system=str(raw.get("system", "")),
        role=raw["role"],
        version=str(raw.get("version", "0")),
        files=source["files"],
        format=source["format"],
        encoding=str(source.get("encoding", "utf-8")),
        delimiter=str(source.get("delimiter", ",")),
        record_id=raw["record_id"],
        fields=specs,
        lookups={k: dict(v or {}) for k, v in lookups.items()},
        ignore_columns=tuple(raw.get("ignore_columns") or ()),
        min_rows=bounds.get("min_rows", 0),
        max_rows=bounds.get("max_rows"),
        assertions=assertions,
        path=path,
        raw=raw,
    )


def load_contract(path: str | Path) -> Contract:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ContractError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc.__class__.__name__})") from None
    return parse_contract(raw, str(path), _line_index(node))


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
