import datetime as dt

import pyarrow as pa
import pytest

from pipelines import model
from pipelines.core.settings_file import parse
from pipelines.link.linker import load_settings
from pipelines.link.prepare import comparison_table
from pipelines.link.settings import LinkageSettings


def records(rows, role="victim"):
    """Harmonised records from partial dicts (missing fields null)."""
    fields = model.table(role).schema().names
    return model.conform(pa.Table.from_pylist([{f: r.get(f) for f in fields} for r in rows]), model.table(role))


def settings_with(base: LinkageSettings | None = None, **parts) -> LinkageSettings:
    """``base`` (the shipped linkage settings) with these parts instead, written as in the YAML file:
    their keys and types are checked, not whether the names they give are compared (a test may
    guard on levels of a comparison it does not list)."""
    return parse(LinkageSettings, {**(base or load_settings()).to_dict(), **parts})


@pytest.fixture
def person():
    """One victim as the police recorded her."""
    return {"record_uid": "pnp:1", "agency": "PNP", "feed_id": "pnp_victims", "given_names": "MARÍA ELENA",
            "paternal_surname": "QUISPE", "maternal_surname": "DE LA CRUZ", "birth_date": dt.date(2001, 4, 5),
            "event_date": dt.date(2018, 5, 10), "age_at_event": 17, "sex": "FEMALE", "nationality": "PER",
            "ubigeo": "170102", "document_type": "01", "document_number": "10117410", "document_valid": True,
            "police_report_ref": "AT-2018-45"}


def pair(left: dict, right: dict):
    table = comparison_table(records([left, right]))
    return table.slice(0, 1), table.slice(1, 1)
