"""The harmonised model, read from ``schemas/model.yaml`` and turned into pyarrow schemas.

The YAML is the single declaration: code, the generated field reference (``docs/model.md``)
and the GX suites all derive from it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pyarrow as pa
import yaml

from pipelines.resources import schemas_dir

_ARROW_TYPES = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "date32": pa.date32(),
    "list<string>": pa.list_(pa.string()),
}

RESTRICTED = "restricted"
DESCRIPTION = "description"  # the field-metadata key every written field's description is under


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    description: str
    required: bool = False
    zone: str | None = None
    code_list: str | None = None
    standard: str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]

    @property
    def restricted(self) -> bool:
        return self.zone == RESTRICTED


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    fields: tuple[Field, ...]
    field_patterns: tuple[tuple[str, str], ...] = ()  # ("gamma_{comparison}", "... {comparison} ...")

    def schema(self, *, include_restricted: bool = True) -> pa.Schema:
        """The declared schema; every field carries its description (Parquet keeps Arrow field metadata)."""
        return pa.schema(
            [
                pa.field(f.name, f.arrow_type, nullable=not f.required, metadata={DESCRIPTION: f.description})
                for f in self.fields
                if include_restricted or not f.restricted
            ],
            metadata=self.metadata(),
        )

    def metadata(self) -> dict[str, str]:
        return {"concilia.table": self.name, "concilia.model_version": model_version(),
                "concilia.description": self.description}

    def describe_field(self, name: str) -> str | None:
        """A field's description: declared, or from a pattern for fields named after settings."""
        for f in self.fields:
            if f.name == name:
                return f.description
        for pattern, text in self.field_patterns:
            head, _, rest = pattern.partition("{")
            placeholder, _, tail = rest.partition("}")
            if name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail):
                return text.replace("{" + placeholder + "}", name[len(head):len(name) - len(tail)])
        return None

    def restricted_schema(self) -> pa.Schema:
        """The restricted zone's view: identifying fields keyed by record and person."""
        keep = {"record_uid", "person_id", *self.restricted_fields}
        return pa.schema([f for f in self.schema() if f.name in keep], metadata=self.schema().metadata)

    @property
    def restricted_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.restricted]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


@functools.lru_cache(maxsize=1)
def _load() -> dict:
    with open(schemas_dir() / "model.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def model_version() -> str:
    return str(_load()["version"])


@functools.lru_cache(maxsize=None)
def table(name: str) -> Table:
    spec = _load()["tables"][name]
    fields = tuple(
        Field(name=field_name, **{k: v for k, v in attrs.items() if k in Field.__dataclass_fields__})
        for field_name, attrs in spec["fields"].items()
    )
    return Table(name=name, description=spec["description"], fields=fields,
                 field_patterns=tuple((spec.get("field_patterns") or {}).items()))


def field_description(table_name: str, name: str) -> str | None:
    """A field's description in table ``table_name``, else in the first model table that declares a
    field of that name (the model's vocabulary: sex, person_id... mean one thing everywhere)."""
    for candidate in (table_name, *table_names()):
        text = table(candidate).describe_field(name)
        if text:
            return text
    return None


def describe(schema: pa.Schema, table_name: str, run_id: str | None = None) -> pa.Schema:
    """``schema`` as written: each field with its description (:func:`field_description`; a field
    no table declares keeps what it has), the table's name, description and model version, and the
    run id."""
    declared = table(table_name)
    fields = []
    for f in schema:
        text = field_description(table_name, f.name)
        fields.append(f.with_metadata({**(f.metadata or {}), DESCRIPTION.encode(): text.encode()}) if text else f)
    extra = {**declared.metadata(), **({"concilia.run_id": run_id} if run_id else {})}
    return pa.schema(fields, metadata={**(schema.metadata or {}), **{k.encode(): v.encode() for k, v in extra.items()}})


def table_names() -> list[str]:
    return list(_load()["tables"])


def conform(data: pa.Table, target: Table, *, include_restricted: bool = True) -> pa.Table:
    """Select and cast ``data``'s columns to the declared schema; missing columns become nulls."""
    schema = target.schema(include_restricted=include_restricted)
    columns = []
    for f in schema:
        if f.name in data.column_names:
            columns.append(data.column(f.name).cast(f.type))
        else:
            columns.append(pa.nulls(data.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)
