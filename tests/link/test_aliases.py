"""Offender aliases in linkage: an alias of one record against the other's name, alias against
alias, the blocking key that brings a record entered under an alias to the one entered under
that name, and a linkage where an offender known under an alias to one agency is linked to the
same person under the real name in another."""

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.link import aliases, blocking, comparisons, linker
from pipelines.link.cluster import cluster
from pipelines.link.prepare import comparison_table
from pipelines.link.settings import Comparison
from tests.link.conftest import records

SETTINGS = linker.load_settings()
ALIASES = [Comparison(name="aliases", type="aliases", explains=("surnames", "given_names"))]


def offender(uid, given, paternal, maternal=None, alias=None, **more):
    return {"record_uid": uid, "agency": uid.split(":")[0].upper(), "feed_id": "x", "given_names": given,
            "paternal_surname": paternal, "maternal_surname": maternal, "aliases": alias, **more}


def levels(left: dict, right: dict, specs=None) -> dict[str, int]:
    table = comparison_table(records([left, right], role="offender"))
    out = comparisons.compare(table.slice(0, 1), table.slice(1, 1), specs or SETTINGS.comparisons)
    return {name: int(v[0]) for name, v in out.items()}


REAL = ("JOSÉ", "QUISPE", "MAMANI")


@pytest.mark.parametrize("left_alias,right,expected", [
    (["RAMOS TORRES, LUIS"], ("LUIS", "RAMOS", "TORRES"), 5),        # the alias is the other's name, words reordered
    (["LUIS RAMOS TORRES"], ("LUIS", "RAMOS", "TORREZ"), 4),         # ... spelled otherwise, same sound
    (["LUIS RAMOS TORRES"], ("LUIZ", "RAMOS", "TORRIS"), 4),         # ... by sound (Z/S, E/I)
    (["LUIS ALBERTO RAMOS"], ("LUIS ALBERTA", "RAMOS", None), 3),    # ... a typo (Jaro-Winkler)
    (["LUIS RAMOS"], ("LUIS", "RAMOS", "TORRES"), 3),                # ... the alias without its second surname
    (["RAMOS"], ("LUIS", "RAMOS", "TORRES"), 0),                     # one word of a name is not the name
    (["EL CHATO"], ("LUIS", "RAMOS", "TORRES"), 0),                  # a nickname is not a name
    (None, ("LUIS", "RAMOS", "TORRES"), -1),                         # no aliases on either side
])
def test_an_alias_against_the_other_records_name(left_alias, right, expected):
    assert levels(offender("mp:1", *REAL, alias=left_alias), offender("pnp:1", *right), ALIASES)["aliases"] == expected


@pytest.mark.parametrize("left_alias,right_alias,expected", [
    (["PEDRO SOTO"], ["SOTO PEDRO"], 2),          # the same false identity, two agencies
    (["EL CHATO"], ["CHATO"], 1),                 # a shared nickname, with or without its article
    (["CHATO"], ["CHATU"], 1),                    # ... by sound
    (["CHATO"], ["GRINGO", "FLACO"], 0),          # aliases on both sides, none shared
])
def test_alias_against_alias(left_alias, right_alias, expected):
    left = offender("mp:1", *REAL, alias=left_alias)
    right = offender("pnp:1", "ANA", "RUIZ", alias=right_alias)
    assert levels(left, right, ALIASES)["aliases"] == expected


def test_the_strongest_agreement_of_all_names_is_the_level_and_order_does_not_matter():
    left = offender("mp:1", *REAL, alias=["CHATO", "LUIS RAMOS TORRES"])
    right = offender("pnp:1", "LUIS", "RAMOS", "TORRES", alias=["EL CHATO"])
    assert levels(left, right, ALIASES)["aliases"] == levels(right, left, ALIASES)["aliases"] == 5


def test_a_records_own_name_among_its_aliases_is_not_an_alias():
    table = comparison_table(records([offender("mp:1", *REAL, alias=["JOSE QUISPE MAMANI", "CHATO"])], "offender"))
    assert table.column("alias_names").to_pylist() == [["CHATO"]]
    assert table.column("alias_keys").to_pylist() == [["JUSI KISPI MAMANI", "CHATU"]]


def test_names_entered_under_an_alias_say_nothing_and_shared_nicknames_leave_them_alone():
    left = offender("mp:1", *REAL, alias=["LUIS RAMOS TORRES", "CHATO"])
    under_alias = levels(left, offender("pnp:1", "LUIS", "RAMOS", "TORRES"))
    assert under_alias["aliases"] == 5 and under_alias["surnames"] == under_alias["given_names"] == -1
    nickname = levels(left, offender("pnp:2", "PEDRO", "SOTO", alias=["CHATO"]))
    assert nickname["aliases"] == 1 and nickname["surnames"] == nickname["given_names"] == 0


def test_victims_carry_no_aliases_and_get_no_alias_keys():
    table = comparison_table(records([{"record_uid": "pnp:1", "given_names": "ROSA", "paternal_surname": "RUIZ"}]))
    assert table.column("alias_keys").to_pylist() == [[]] and table.column("alias_names").to_pylist() == [[]]
    assert comparisons.compare(table, table, ALIASES)["aliases"].tolist() == [-1]


def test_the_alias_rule_finds_a_record_entered_under_an_alias_that_no_other_rule_finds():
    rows = [offender("mp:1", *REAL, alias=["LUIS RAMOS TORRES"], document_type="01", document_number="41728563",
                     document_valid=True),
            offender("pnp:1", "LUIS", "RAMOS", "TORRES"),
            offender("pnp:2", "ANA", "RUIZ", "SOTO")]
    comp = linker.slim(comparison_table(records(rows, "offender")), SETTINGS)
    parts = [part for _, part in blocking.partition_by_block(comp, SETTINGS, 1)]
    found = blocking.pairs_in_partition(pa.concat_tables(parts), SETTINGS)
    uids = found.values.column("record_uid").to_pylist()
    pairs = {frozenset((uids[a], uids[b])): r for a, b, r in zip(found.left_index, found.right_index,
                                                                  found.rule.to_pylist())}
    assert pairs == {frozenset(("mp:1", "pnp:1")): "alias_names"}


GIVEN = ["JUAN", "CARLOS", "LUIS", "JORGE", "PEDRO", "MIGUEL", "VICTOR", "CESAR", "RAUL", "HUGO", "ELVIS", "WILMER"]
SURNAMES = ["QUISPE", "MAMANI", "FLORES", "HUAMAN", "RAMOS", "CHAVEZ", "TORRES", "VARGAS", "ROJAS", "CASTILLO",
            "MENDOZA", "APAZA"]
NICKNAMES = ["CHATO", "GRINGO", "FLACO", "CHINO", "LOCO", "NEGRO", "CHOLO", "GATO"]


def population(n=450, seed=7):
    """n offenders: a third recorded by the prosecutors too, with small variations; a tenth known
    to both by a nickname; and some who gave the police a false name, which the prosecutors hold
    as an alias of the name RENIEC knows (the police record has no document)."""
    rng = np.random.default_rng(seed)
    pick = lambda pool: pool[int(rng.integers(len(pool)))]  # noqa: E731
    rows, false_names = [], set()
    for i in range(n):
        birth = dt.date(1970 + int(rng.integers(30)), 1 + int(rng.integers(12)), 1 + int(rng.integers(28)))
        event = dt.date(2018, 1 + int(rng.integers(12)), 1 + int(rng.integers(28)))
        person = {"given_names": pick(GIVEN), "paternal_surname": pick(SURNAMES), "maternal_surname": pick(SURNAMES),
                  "birth_date": birth, "event_date": event, "age_at_event": event.year - birth.year - 1,
                  "sex": "MALE", "nationality": "PER", "ubigeo": f"15{int(rng.integers(40)):02d}01",
                  "document_type": "01", "document_number": f"{40000000 + i}", "document_valid": True,
                  "police_report_ref": f"{i:04d}-2018-DIRCTPTIM"}
        police = {**person, "record_uid": f"pnp:{i}", "agency": "PNP", "feed_id": "pnp_detainees"}
        prosecutors = {**person, "record_uid": f"mp:{i}", "agency": "MP", "feed_id": "mp_investigated"}
        if i % 10 == 0:
            nickname = pick(NICKNAMES)
            police["aliases"], prosecutors["aliases"] = [f"EL {nickname}"], [nickname]
        if i % 15 == 5:  # a false name at arrest, no document, an age instead of a birth date
            given, paternal, maternal = pick(GIVEN), pick(SURNAMES), pick(SURNAMES)
            while paternal in (person["paternal_surname"], person["maternal_surname"]):
                paternal = pick(SURNAMES)
            police.update(given_names=given, paternal_surname=paternal, maternal_surname=maternal,
                          document_type=None, document_number=None, document_valid=None, birth_date=None)
            prosecutors["aliases"] = (prosecutors.get("aliases") or []) + [f"{paternal} {maternal}, {given}"]
            false_names.add(str(i))
        rows.append(police)
        if i % 3 == 0 or str(i) in false_names:
            rows.append(prosecutors)
    return records(rows, role="offender"), false_names


def _linked(settings):
    table, false_names = population()
    result = linker.link_in_memory(comparison_table(table), settings)
    members, _ = cluster(result.pairs.filter(pc.greater_equal(result.pairs.column("match_probability"),
                                                              settings.thresholds.match_probability)),
                         "offender", settings=settings)
    person = dict(zip(members.column("record_uid").to_pylist(), members.column("person_id").to_pylist()))
    together = {uid.split(":")[1] for uid in person if uid.startswith("mp:")
                and person[uid] == person.get(uid.replace("mp:", "pnp:"))}
    return together, false_names, result.model


def test_an_offender_under_an_alias_in_one_feed_is_linked_to_the_real_name_in_another():
    together, false_names, model = _linked(SETTINGS)
    assert false_names <= together                     # every false name found under the real one
    twins = {str(i) for i in range(0, 450, 3)} - false_names
    assert len(twins & together) / len(twins) > 0.97  # and the others still linked as before
    weights = {c.name: c for c in model.comparisons}["aliases"]
    assert weights.m[5] / weights.u[5] > weights.m[1] / weights.u[1] > 1  # a name outweighs a nickname


def test_without_the_alias_comparison_the_false_names_stay_apart():
    settings = dataclasses.replace(SETTINGS, comparisons=tuple(c for c in SETTINGS.comparisons if c.type != "aliases"))
    together, false_names, _ = _linked(settings)
    assert not (false_names & together)


def test_a_registry_written_before_aliases_gets_their_columns():
    from pipelines.steward.registry import comparison_fields

    fields = comparison_fields("offender")
    table = comparison_table(records([offender("pnp:1", "LUIS", "RAMOS", "TORRES")], "offender")).select(
        [f for f in fields.names if f not in ("alias_names", "alias_sounds", "name_sound", "alias_keys")])
    completed = aliases.complete(table, True).select(fields.names)
    assert completed.column("alias_keys").to_pylist() == [["LUIS RAMUS TURIS"]]
    assert completed.column("alias_names").to_pylist() == [[]]
    victims = comparison_table(records([{"record_uid": "v:1", "given_names": "ROSA"}])).drop_columns(
        ["alias_names", "alias_sounds", "name_sound", "alias_keys"])
    assert aliases.complete(victims, False).column("alias_keys").to_pylist() == [[]]
