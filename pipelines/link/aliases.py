"""Offender aliases in linkage: a record's name against the other's aliases, and alias against alias.

An offender may be recorded by one agency under the name they gave at arrest and by another under
the name RENIEC knows, the first listed there as an alias ("alias", "chapa"); or two agencies may
note the same nickname ("EL CHATO"). Each record's aliases come from the harmonised ``aliases``
list (pipelines.harmonise.engine); every name (the record's own and each alias) is compared
order-free, as its sorted folded words and as its sorted phonetic tokens (pipelines.link.names.name_tokens).
Levels, strongest first:

- 5: an alias of one is the other's name (the same words, in any order);
- 4: ... the same by sound (QUISPE / QISPE);
- 3: ... close: Jaro-Winkler >= 0.92 on the sorted words, or all words (two or more) of the
  shorter among the longer's (an alias without its second surname);
- 2: a shared alias of two or more words (the same false identity), exactly or by sound;
- 1: a shared one-word alias (a nickname: many people are called CHATO, so EM weighs it apart);
- 0: a record holds aliases and none of the above holds (mostly a nickname and the other's name:
  EM learns how little that says);
- -1: neither record holds an alias.

At levels 3 and up one record was entered under a name the other holds as an alias, so their
own names differ for a reason: the comparisons the settings list under ``explains`` (surnames,
given names) then say nothing for that pair, as ``implied_by`` does for a shared case.

Blocking: ``alias_keys`` holds, for a role whose records carry aliases (offenders), each record's
phonetic name and the phonetic form of each of its aliases; a rule on it (``choose: 1``) puts a
record entered under an alias in the block of the record entered under that name. Victims' records
carry no aliases: they get no keys and the comparison is -1 for them.

Vectorised: only pairs where a side holds aliases are exploded to (pair, name of left, name of
right) rows and joined on the pair, as pipelines.link.documents does for document sets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from pipelines.link.settings import Comparison

from pipelines.core.vector import fold
from pipelines.link import arrays
from pipelines.link import names as name_words

NAME, ALIAS = 0, 1
ALIAS_FOR_NAME = 3  # levels at and above: one record's name is an alias of the other
CLOSE = 0.92

LEVELS = {5: "an alias of one is the other's name", 4: "an alias of one sounds like the other's name",
          3: "an alias of one is close to the other's name", 2: "a shared alias of two or more words",
          1: "a shared one-word alias (nickname)", 0: "aliases on a side, none agrees"}
COLUMNS = ("alias_names", "alias_sounds", "name_set", "name_sound")
OPTIONS = ("explains",)  # the name comparisons an alias of one record for the other's name explains away
KEY_COLUMN = "alias_keys"


def _articles() -> str:
    """The pattern of the words a nickname may carry or not ("EL CHATO", "CHATO"): schemas/linkage/phonetic.yaml."""
    return rf"(^|\s)({'|'.join(name_words.phonetic_rules()['alias_articles'])})(\s|$)"


def _list_of(values: pa.Array, parents: np.ndarray, n: int) -> pa.ListArray:
    counts = np.bincount(parents, minlength=n) if len(parents) else np.zeros(n, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _empty_lists(n: int) -> pa.ListArray:
    return pa.array([[]] * n, pa.list_(pa.string()))


def columns(records: pa.Table, name_tokens: pa.ListArray) -> dict[str, pa.Array]:
    """The comparison-table columns of aliases: each alias's sorted folded words (``alias_names``)
    and sorted phonetic tokens (``alias_sounds``, aligned), the record's own name by sound
    (``name_sound``) and the blocking keys (``alias_keys``)."""
    n = records.num_rows
    name_sound = name_words._null_if_empty(pc.binary_join(name_tokens, " "))
    if "aliases" not in records.column_names:  # a role without aliases (victims): nothing to meet on
        return {"alias_names": _empty_lists(n), "alias_sounds": _empty_lists(n), "name_sound": name_sound,
                KEY_COLUMN: _empty_lists(n)}
    aliases = records.column("aliases").combine_chunks()
    parents = pc.list_parent_indices(aliases).to_numpy()
    words = pc.utf8_trim_whitespace(pc.replace_substring_regex(
        fold(name_words._repair_mojibake(pc.list_flatten(aliases))), _articles(), " "))
    words = name_words._null_if_empty(words)
    sounds = name_words._null_if_empty(pc.binary_join(name_words.name_tokens(words), " "))
    keep = pc.and_(pc.is_valid(words), pc.is_valid(sounds))
    table = pa.table({"row": pa.array(parents), "name": name_words._sorted_tokens(words), "sound": sounds}).filter(keep)
    # one alias written twice is one alias; the record's own name among its aliases is not an alias
    table = table.group_by(["row", "name", "sound"], use_threads=False).aggregate([]).sort_by(
        [("row", "ascending"), ("name", "ascending")])
    rows = table.column("row").to_numpy()
    own = pc.take(name_sound, pa.array(rows))
    table = table.filter(pc.invert(pc.fill_null(pc.equal(table.column("sound"), own), False)))
    rows = table.column("row").to_numpy()
    names = _list_of(table.column("name").combine_chunks(), rows, n)
    alias_sounds = _list_of(table.column("sound").combine_chunks(), rows, n)
    # keys: the record's own name first (so a record entered under it is found), then its aliases
    own_key = pa.table({"row": np.arange(n), "key": name_sound, "at": np.zeros(n, dtype=np.int64)})
    alias_key = pa.table({"row": rows, "key": table.column("sound"), "at": np.ones(len(rows), dtype=np.int64)})
    keys = pa.concat_tables([own_key, alias_key])
    keys = keys.filter(pc.is_valid(keys.column("key")))
    keys = keys.group_by(["row", "key"], use_threads=False).aggregate([("at", "min")]).sort_by(
        [("row", "ascending"), ("at_min", "ascending"), ("key", "ascending")])
    return {"alias_names": names, "alias_sounds": alias_sounds, "name_sound": name_sound,
            KEY_COLUMN: _list_of(keys.column("key").combine_chunks(), keys.column("row").to_numpy(), n)}


def complete(registry: pa.Table, role_has_aliases: bool) -> pa.Table:
    """Registry rows written before aliases were compared, with the alias columns they lack: no
    alias, the record's name by sound from its name tokens, and that name as its one key where the
    role's records carry aliases."""
    if "name_tokens" not in registry.column_names or KEY_COLUMN in registry.column_names:
        return registry
    n = registry.num_rows
    tokens = registry.column("name_tokens").combine_chunks()
    name_sound = name_words._null_if_empty(pc.binary_join(tokens, " "))
    keys = _empty_lists(n)
    if role_has_aliases:
        valid = np.flatnonzero(pc.is_valid(name_sound).to_numpy(zero_copy_only=False))
        keys = _list_of(pc.take(name_sound, pa.array(valid)), valid, n)
    for name, values in (("alias_names", _empty_lists(n)), ("alias_sounds", _empty_lists(n)),
                         ("name_sound", name_sound), (KEY_COLUMN, keys)):
        if name not in registry.column_names:
            registry = registry.append_column(name, values)
    return registry


def _lists(table: pa.Table, column: str) -> pa.ListArray:
    return arrays.decode(arrays._col(table, column)) if column in table.column_names else _empty_lists(table.num_rows)


def _names_of(side: pa.Table, rows: np.ndarray) -> pa.Table:
    """(pair, kind, name, sound) for the record's own name and each of its aliases, ``rows`` being
    the pairs to explode (their index in ``rows`` becomes the pair number)."""
    take = pa.array(rows)
    names, sounds = pc.take(_lists(side, "alias_names"), take), pc.take(_lists(side, "alias_sounds"), take)
    own_name = arrays.decode(pc.take(arrays._col(side, "name_set"), take)).cast(pa.string())
    own_sound = arrays.decode(pc.take(arrays._col(side, "name_sound"), take)).cast(pa.string())
    parents = pc.list_parent_indices(names)
    table = pa.concat_tables([
        pa.table({"pair": pa.array(np.arange(len(rows)), pa.int64()), "kind": pa.array(np.full(len(rows), NAME), pa.int8()),
                  "name": own_name, "sound": own_sound}).filter(pc.is_valid(own_name)),
        pa.table({"pair": parents.cast(pa.int64()), "kind": pa.array(np.full(len(parents), ALIAS), pa.int8()),
                  "name": pc.list_flatten(names), "sound": pc.list_flatten(sounds)}),
    ])
    return table


def _word_count(arr: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.add(pc.count_substring(arr, " "), 1), 0).to_numpy(zero_copy_only=False)


def aliases(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    n = left.num_rows
    out = np.full(n, arrays.NULL, dtype=np.int8)
    count_l = pc.fill_null(pc.list_value_length(_lists(left, "alias_names")), 0).to_numpy(zero_copy_only=False)
    count_r = pc.fill_null(pc.list_value_length(_lists(right, "alias_names")), 0).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero((count_l > 0) | (count_r > 0))
    if not len(rows):
        return out
    joined = _names_of(left, rows).join(_names_of(right, rows), keys="pair", join_type="inner",
                                        right_suffix="_r", use_threads=False)
    kind_l, kind_r = joined.column("kind").to_numpy(), joined.column("kind_r").to_numpy()
    joined = joined.filter(pa.array((kind_l == ALIAS) | (kind_r == ALIAS)))  # own name vs own name: not ours
    kind_l, kind_r = joined.column("kind").to_numpy(), joined.column("kind_r").to_numpy()
    a, b = joined.column("name").combine_chunks(), joined.column("name_r").combine_chunks()
    same = arrays._eq(a, b)
    sound = arrays._eq(joined.column("sound").combine_chunks(), joined.column("sound_r").combine_chunks())
    words_a, words_b = _word_count(a), _word_count(b)
    shorter = np.minimum(words_a, words_b)
    for_name = kind_l != kind_r
    close = np.zeros(len(same), dtype=bool)
    # only an alias against a name that is neither the same nor alike by sound can be "close"
    maybe = np.flatnonzero(for_name & ~same & ~sound)
    if len(maybe):
        take = pa.array(maybe)
        a_maybe, b_maybe = pc.take(a, take), pc.take(b, take)
        similar = process.cpdist(arrays._py(a_maybe), arrays._py(b_maybe), scorer=JaroWinkler.normalized_similarity,
                                 score_cutoff=CLOSE, workers=1) >= CLOSE
        close[maybe] = similar
        # an alias without a word of the name: two or more words, all among the longer's
        part = np.flatnonzero((shorter[maybe] >= 2) & (words_a[maybe] != words_b[maybe]) & ~similar)
        if len(part):
            close[maybe[part]] = arrays._word_subset(pc.take(a_maybe, pa.array(part)), pc.take(b_maybe, pa.array(part)))
    level = np.select(
        [for_name & same, for_name & sound, for_name & close,
         ~for_name & (same | sound) & (shorter >= 2), ~for_name & (same | sound)],
        [5, 4, 3, 2, 1], default=0).astype(np.int8)
    best = np.full(len(rows), arrays.NULL, dtype=np.int8)
    np.maximum.at(best, joined.column("pair").to_numpy(), level)  # -1 where a side has no name at all
    out[rows] = best
    return out


def explain(levels: dict[str, np.ndarray], comparisons: Sequence[Comparison]) -> None:
    """Where one record's name is an alias of the other, the name comparisons the alias comparison
    ``explains`` say nothing: the names differ because the person gave another one."""
    for c in comparisons:
        if c.type == "aliases" and c.explains:
            entered_under_alias = levels[c.name] >= ALIAS_FOR_NAME
            for other in c.explains:
                if other in levels:
                    levels[other] = np.where(entered_under_alias, arrays.NULL, levels[other]).astype(np.int8)

