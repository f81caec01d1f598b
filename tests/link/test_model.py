"""The Fellegi-Sunter model: training sessions, the prior, term frequencies, the JSON artefact."""

import datetime as dt
import json

import apache_beam as beam
import numpy as np
import pytest
import pyarrow as pa
from apache_beam.testing.util import assert_that, equal_to

from pipelines.link import linker
from pipelines.link.transform import LinkPersons
from pipelines.link.fellegi_sunter import LinkageModel
from pipelines.link.prepare import comparison_table
from tests.conftest import TEST_RUNNER
from tests.link.conftest import records

SETTINGS = linker.load_settings()
SURNAMES = ["QUISPE", "MAMANI", "FLORES", "HUAMAN", "RAMOS", "CHAVEZ", "TORRES", "VARGAS", "ROJAS", "CASTILLO"]
GIVEN = ["MARIA", "ROSA", "LUZ", "ANA", "CARMEN", "JUANA", "ELENA", "SONIA", "DIANA", "PAOLA", "LUCIA", "NORMA"]


def population(n=600, seed=1):
    """n people, a third of them recorded twice by another agency with small variations."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        person = {"given_names": GIVEN[rng.integers(len(GIVEN))], "paternal_surname": SURNAMES[rng.integers(10)],
                  "maternal_surname": SURNAMES[rng.integers(10)] + ("" if i % 2 else "A"),
                  "birth_date": dt.date(1980 + int(rng.integers(25)), 1 + int(rng.integers(12)), 1 + int(rng.integers(28))),
                  "event_date": dt.date(2018, 1 + int(rng.integers(12)), 1), "sex": "FEMALE", "nationality": "PER",
                  "ubigeo": f"15{int(rng.integers(10)):02d}01",
                  "document_type": "01", "document_number": f"{40000000 + i}", "document_valid": True}
        rows.append({**person, "record_uid": f"pnp:{i}", "agency": "PNP", "feed_id": "pnp_victims"})
        if i % 3 == 0:
            twin = {**person, "record_uid": f"mp:{i}", "agency": "MP", "feed_id": "mp_victims"}
            if i % 2:
                twin["document_number"] = None
                twin["document_type"] = None
            if i % 5 == 0:
                twin["maternal_surname"] = None
            rows.append(twin)
    return records(rows)


def test_training_separates_matches_and_recovers_them():
    result = linker.link_in_memory(comparison_table(population()), SETTINGS)
    model = result.model
    accepted = result.pairs.filter(pa.compute.greater_equal(result.pairs.column("match_probability"),
                                                            SETTINGS.thresholds.match_probability))
    found = {(a.split(":")[1], b.split(":")[1]) for a, b in zip(accepted.column("left_uid").to_pylist(),
                                                                 accepted.column("right_uid").to_pylist())}
    truth = {(str(i), str(i)) for i in range(0, 600, 3)}
    assert len(found & truth) / len(truth) > 0.97 and len(found - truth) <= 2
    surnames = {c.name: c for c in model.comparisons}["surnames"]
    assert surnames.m[6] > 0.5 and surnames.u[6] < 0.2  # agreement far likelier among matches
    assert 0 < model.prior < 0.01
    assert model.trained["expected_matches"] == pytest_approx(200, 0.1)


def pytest_approx(value, rel):
    import pytest

    return pytest.approx(value, rel=rel)


def test_term_frequency_adjustment_discounts_common_surnames():
    model = linker.link_in_memory(comparison_table(population()), SETTINGS).model
    gammas = {name: np.array([-1, -1], dtype=np.int8) for name in SETTINGS.comparison_names}
    gammas["surnames"] = np.array([6, 6], dtype=np.int8)
    common, rare = model.score(gammas, {"surnames": np.array([0.2, 0.0005])})["w_surnames"]
    assert rare > common + 5


def test_name_agreement_is_weighed_by_the_frequency_of_the_whole_value_agreed_on():
    # MARIA is common, MARIA KARELYS rare; QUISPE is everyone's, QUISPE CONDORI half of them
    names = [("MARIA", "MAMANI"), ("MARIA", "MAMANI"), ("MARIA", "CONDORI"), ("MARIA KARELYS", "CONDORI")]
    comp = comparison_table(records([{"record_uid": str(k), "given_names": g, "paternal_surname": "QUISPE",
                                      "maternal_surname": m} for k, (g, m) in enumerate(names)]))
    tf = linker.term_frequencies(comp, SETTINGS)
    assert tf["given_names"]["MARIA"] == 3 and tf["given_names"]["MARIA KARELYS"] == 1
    assert tf["surnames"] == {"MAMANI QUISPE": 2, "CONDORI QUISPE": 2}


def test_term_frequencies_merge_across_batches_and_are_shares_of_the_known_values():
    batches = [comparison_table(records([{"record_uid": f"{b}-{k}", "given_names": g, "paternal_surname": "QUISPE",
                                          "maternal_surname": None} for k, g in enumerate(names)]))
               for b, names in enumerate([["MARIA", "MARIA", None], ["MARIA", "ROSA"]])]
    merged = linker.merge_counts([linker.term_frequencies(t, SETTINGS) for t in batches])
    assert merged["given_names"] == {"MARIA": 3, "ROSA": 1}  # no count for an unknown name
    table = linker.frequency_table(merged)
    keys, freqs = linker._frequencies(table, "given_names")
    assert dict(zip(keys.to_pylist(), freqs.to_pylist())) == {"MARIA": 0.75, "ROSA": 0.25}
    assert linker._frequencies(table, "given_names")[0] is keys  # built once per table
    other = linker.frequency_table({"given_names": {"MARIA": 1, "ROSA": 3}})
    assert linker._frequencies(other, "given_names")[1].to_pylist() == [0.25, 0.75]  # never another table's
    assert table.schema == linker.TF_SCHEMA and linker.frequency_table(None).num_rows == 0


def test_a_shared_case_reference_weighs_less_the_more_records_the_case_has():
    model = linker.link_in_memory(comparison_table(population()), SETTINGS).model
    assert {c.name: c.tf_column for c in SETTINGS.comparisons}["case_reference"] == "police_report_ref"
    gammas = {name: np.array([-1, -1], dtype=np.int8) for name in SETTINGS.comparison_names}
    gammas["case_reference"] = np.array([1, 1], dtype=np.int8)
    n = 1000  # a case of 2 records against a case of 40 records among n
    small, large = model.score(gammas, {"case_reference": np.array([2 / n, 40 / n])})["w_case_reference"]
    assert small - large == pytest_approx(np.log2(20), 1e-6)


def test_model_artefact_round_trips_and_reads_well():
    model = linker.link_in_memory(comparison_table(population(200)), SETTINGS).model
    text = json.dumps(model.to_json())
    again = LinkageModel.from_json(json.loads(text))
    assert again.prior == model.prior and [c.m for c in again.comparisons] == [c.m for c in model.comparisons]
    doc = json.loads(text)
    assert doc["format"].startswith("concilia-fellegi-sunter") and doc["comparisons"][0]["levels"][0]["label"]


def test_pinned_model_links_a_later_run_the_same_way():
    table = population(300)
    model = linker.link_in_memory(comparison_table(table), SETTINGS).model.to_json()
    with beam.Pipeline(runner=TEST_RUNNER) as p:
        out = p | beam.Create([table.slice(0, 150), table.slice(150)]) | LinkPersons("victim", pinned_model=model,
                                                                                     partitions=4)
        pairs = (out["linked"]
                 | beam.FlatMap(lambda t: zip(t.column("record_uid").to_pylist(), t.column("person_id").to_pylist()))
                 | beam.combiners.ToList()
                 | beam.Map(lambda rows: sum(1 for uid, pid in rows if uid.startswith("mp:")
                                             and pid == dict(rows)[uid.replace("mp:", "pnp:")])))
        assert_that(pairs, equal_to([100]))


def test_u_from_a_sample_too_small_for_any_pair_is_uniform():
    comp = linker.slim(comparison_table(population(1).slice(0, 1)), SETTINGS)
    u = linker.u_from_sample(comp, SETTINGS)
    assert set(u) == set(SETTINGS.comparison_names)
    for levels in u.values():
        assert len(set(levels.values())) == 1


def test_a_model_trained_with_other_comparison_levels_is_refused():
    import pytest

    from pipelines.link.fellegi_sunter import LinkageModel, LinkageModelError

    data = {"format": "concilia-fellegi-sunter/1", "prior_match_probability": 0.01, "settings": {},
            "comparisons": [{"name": "given_names", "type": "given_names", "levels": [
                {"level": lvl, "m": 0.2, "u": 0.2} for lvl in range(5, -1, -1)]}]}
    with pytest.raises(LinkageModelError, match="train a new model"):
        LinkageModel.from_json(data)


@pytest.mark.parametrize("handoff", [False, True], ids=["in-memory", "handoff"])
def test_the_beam_transform_scores_the_pairs_the_in_memory_linker_scores(handoff, tmp_path):
    """LinkPersons (partitions, pairs compared once and scored after training, tables passed
    between stages by ArrowTableCoder, or through files in a work folder) gives the in-memory
    linker's links exactly, and a person to every record."""
    work = str(tmp_path / "handoff") if handoff else None
    table = population(300)
    expected = linker.link_in_memory(comparison_table(table), SETTINGS).pairs
    floor = SETTINGS.thresholds.links_floor
    expected = linker.keep_above(expected, floor)
    assert expected.num_rows >= 90  # the twins recorded by two agencies
    columns = ["left_uid", "right_uid", "rule", "match_probability"]
    rows = lambda t: sorted(zip(*(t.column(c).to_pylist() for c in columns)))
    with beam.Pipeline(runner=TEST_RUNNER) as p:
        out = p | beam.Create([table.slice(0, 150), table.slice(150)]) | LinkPersons("victim", partitions=4, work=work)
        links = out["links"] | beam.combiners.ToList() | beam.Map(lambda ts: rows(pa.concat_tables(ts)))
        assert_that(links, equal_to([rows(expected)]))
        records = (out["linked"] | "Records" >> beam.combiners.ToList()
                   | beam.Map(lambda ts: pa.concat_tables(ts).num_rows))
        assert_that(records, equal_to([table.num_rows]), label="AllRecords")
    if handoff:  # the tables went through files: records, comparison rows, blocks, compared pairs, clusters
        assert {p.name for p in (tmp_path / "handoff").iterdir()} == {"records", "comparison", "blocks", "pairs",
                                                                     "clusters", "frequencies"}


def test_the_review_queue_of_a_table_decoded_from_an_empty_stream_is_empty():
    from pipelines.link import review
    from pipelines.link.transform import ArrowTableCoder

    empty = pa.table({"left_uid": pa.array([], pa.string()), "right_uid": pa.array([], pa.string())})
    coder = ArrowTableCoder()
    decoded = coder.decode(coder.encode(empty))
    assert decoded.column("left_uid").num_chunks == 0  # what the runner hands the next stage
    assert review.uids_of(decoded).to_pylist() == []


def test_merging_tables_in_few_steps_gives_what_one_merge_of_all_gives(monkeypatch):
    """The combines of block sizes, samples and pattern counts let inputs wait and merge them in
    steps; any grouping of the inputs, and any split over accumulators, gives the single merge's
    table."""
    from pipelines.link import blocking, transform

    monkeypatch.setattr(transform, "MERGE_AFTER_BYTES", 200)  # merge often: every path is taken
    rng = np.random.default_rng(5)
    tables = [pa.table({"rule": pa.array(rng.integers(0, 3, 6), pa.int8()),
                        "key": pa.array([f"k{v}" for v in rng.integers(0, 8, 6)]),
                        "records": pa.array(rng.integers(1, 5, 6), pa.int64())}) for _ in range(9)]
    fn = transform._MergeTablesFn(blocking.merge_block_sizes)

    def as_dict(t):
        return dict(zip(zip(t.column("rule").to_pylist(), t.column("key").to_pylist()), t.column("records").to_pylist()))

    accs = []
    for part in (tables[:4], tables[4:5], tables[5:]):
        acc = fn.create_accumulator()
        for t in part:
            acc = fn.add_input(acc, t)
        accs.append(fn.compact(acc))
        assert accs[-1][1] == []  # an accumulator leaves its bundle merged: nothing waiting
    stepped = fn.extract_output(fn.merge_accumulators([*accs, fn.create_accumulator()]))
    assert as_dict(stepped) == as_dict(blocking.merge_block_sizes(tables))
    assert fn.extract_output(fn.merge_accumulators([fn.create_accumulator()])) is None  # an empty role
