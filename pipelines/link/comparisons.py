"""Comparison library: each comparison turns aligned record pairs into agreement levels.

A comparison takes the left and right comparison tables of N pairs (row i of each is pair i) and
returns an int8 array of levels: the highest level is the strongest agreement, 0 is disagreement
and -1 means a side is unknown (the comparison then contributes nothing to the match weight).
Levels are computed on whole arrays (rapidfuzz's cpdist, numpy, pyarrow.compute): no Python
loop per pair. Each comparison type documents its levels in LEVELS for the model artefact.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import process
from rapidfuzz.distance import OSA

from pipelines.core.settings_file import SettingsError, written
from pipelines.link import aliases as _aliases
from pipelines.link import documents as _documents
from pipelines.link.arrays import (  # noqa: F401  (NULL, decode, encode_strings: read from here by the linker)
    NULL, _codes, _col, _derived, _differing, _edits, _eq, _initials, _jaro_winkler, _per_row, _per_value, _prefix,
    _py, _select, _valid, _word_subset, decode, encode_strings, kept_per_value,
)
from pipelines.link.settings import Comparison

# the lowest level of a name comparison that still says the names agree (below: what siblings or
# strangers look like)
AGREEING_FROM = {"surnames": 1, "given_names": 2}
CROSSED_AT = 1.7  # the two cross-field similarities together: a swap with a typo or a missing surname in it


def surnames(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    """Both surnames, by spelling and by sound; one surname against two; swapped; typos."""
    p1, p2 = _col(left, "paternal"), _col(right, "paternal")
    m1, m2 = _col(left, "maternal"), _col(right, "maternal")
    sp1, sp2 = _col(left, "paternal_sound"), _col(right, "paternal_sound")
    sm1, sm2 = _col(left, "maternal_sound"), _col(right, "maternal_sound")
    vp1, vp2, vm1, vm2 = _valid(p1), _valid(p2), _valid(m1), _valid(m2)
    both_m = vm1 & vm2
    p_eq, m_eq = _eq(p1, p2), _eq(m1, m2)
    sp_eq, sm_eq = _eq(sp1, sp2), _eq(sm1, sm2)
    swapped = _eq(sp1, sm2) & _eq(sm1, sp2)
    # one side has one surname only, and it is either of the other side's two
    one_of_two = ((~vm2 & vm1 & (_eq(sp2, sp1) | _eq(sp2, sm1))) | (~vm1 & vm2 & (_eq(sp1, sp2) | _eq(sp1, sm2)))
                  | (~vm1 & ~vm2 & sp_eq))
    same_set = _eq(_col(left, "name_set"), _col(right, "name_set"))
    jw_p = _jaro_winkler(p1, p2)
    jw_m = _jaro_winkler(m1, m2)
    # one surname against two, with a typo: the single one close to either of the other two
    single = np.nonzero(vm1 ^ vm2)[0]
    one_of_two_typo = np.zeros(len(vm1), dtype=bool)
    if len(single):
        take = pa.array(single)
        one, p_two, m_two = (pc.if_else(pa.array(vm1[single]), pc.take(decode(x), take), pc.take(decode(y), take))
                             for x, y in ((p2, p1), (p1, p2), (m1, m2)))
        one_of_two_typo[single] = np.maximum(_jaro_winkler(one, p_two), _jaro_winkler(one, m_two)) >= 0.92
    jw_all = _jaro_winkler(_col(left, "surname_set"), _col(right, "surname_set"))
    return _select(
        [
            (p_eq & m_eq, 6),
            ((sp_eq & sm_eq & both_m) | (swapped & both_m), 5),
            (one_of_two | same_set, 4),
            (((jw_p >= 0.92) & ((jw_m >= 0.92) | ~both_m)) | one_of_two_typo, 3),
            (sp_eq | (sm_eq & (jw_p >= 0.8)), 2),
            (jw_all >= 0.8, 1),
        ],
        known=(vp1 | vm1) & (vp2 | vm2),
    )


WORDS_MATCHED = 5  # the words of a given name matched one by one: a whole name in one field has up to five


def _word(values: pa.Array, k: int) -> pa.Array:
    """The k-th word of each value (null where there is none)."""
    return pc.struct_field(pc.extract_regex(values, rf"^(?:\S+ ){{{k}}}(?P<w>\S+)"), [0])


def _first_letters(values: pa.Array) -> np.ndarray:
    """A bit per first letter (its code point modulo 63) of each value's words, 0 for a null."""
    words = pc.utf8_split_whitespace(pc.fill_null(values, ""))
    initials = _initials(pc.list_flatten(words))
    bits = np.where(initials > 0, np.left_shift(1, initials % 63), 0)  # 0: the empty ends of a split
    out = np.zeros(len(values), dtype=np.int64)
    np.bitwise_or.at(out, pc.list_parent_indices(words).to_numpy(), bits)
    return out


class _Words:
    """What matching word by word reads of each distinct value of a dictionary: its word count (its
    spaces and one), first letters, and per position up to WORDS_MATCHED the word; of each
    word its text, first letter, length, gendered stem and endings, computed once over all the
    words (``at[k]``: the k-th word of each value among them, -1 for none, which reads the empty
    word appended last). Computed once per dictionary (arrays._per_value keeps it for the
    dictionary's next slice of pairs)."""

    def __init__(self, values: pa.Array):
        from pipelines.link.names import phonetic_rules

        ending = phonetic_rules()["gendered_ending"]
        self.count = pc.fill_null(pc.count_substring(values, " "), -1).to_numpy(zero_copy_only=False) + 1
        self.letters = _first_letters(values)
        words, self.at = _positions(values)
        words = pa.concat_arrays([words, pa.array([None], pa.string())])
        stems = pc.replace_substring_regex(words, ending, "")
        ends = lambda x, pattern: pc.fill_null(pc.match_substring_regex(x, pattern), False).to_numpy(zero_copy_only=False)
        self.text, self.stem = _py(words), _py(stems)
        self.initial = _initials(words)
        self.length = pc.fill_null(pc.utf8_length(words), 0).to_numpy(zero_copy_only=False)
        self.gendered, self.consonant_stem = ends(words, ending), ends(stems, "[^AEIOU]$")


def _positions(values: pa.Array) -> tuple[pa.Array, list[np.ndarray]]:
    """The words of ``values`` (as _word reads them) and, per position, where each value's is
    among them (-1: none). Split once on the spaces where no value has other white space, an
    empty word or a leading or trailing space (always, for names as prepared); else _word's
    expression per position."""
    if not pc.any(pc.match_substring_regex(values, r"^\s|\s$|\s\s|[^\S ]")).as_py():
        split = pc.split_pattern(values, " ")
        words = pc.list_flatten(split)
        lengths = pc.fill_null(pc.list_value_length(split), 0).to_numpy(zero_copy_only=False)
        starts = np.cumsum(lengths) - lengths
        # a word there, and not the empty one of the value ""
        word = pc.greater(pc.utf8_length(words), 0).to_numpy(zero_copy_only=False)
        at = [np.where(lengths > k, starts + k, -1) for k in range(WORDS_MATCHED)]
        return words, [np.where((a >= 0) & word[np.maximum(a, 0)], a, -1) if len(words) else a for a in at]
    per_position = [_word(values, k) for k in range(WORDS_MATCHED)]
    valid = [pc.is_valid(w).to_numpy(zero_copy_only=False) for w in per_position]
    offsets = np.cumsum([0] + [len(w) for w in per_position])
    return (pa.concat_arrays(per_position),
            [np.where(v, offsets[k] + np.arange(len(values)), -1) for k, v in enumerate(valid)])


def _words_of(arr: pa.Array) -> tuple[_Words, np.ndarray]:
    """The word table of a dictionary array's dictionary and each row's code in it (-1: null)."""
    return _per_value(arr.dictionary, "words", _Words), _codes(arr)


def _words_close(a: pa.Array, b: pa.Array, rows: np.ndarray, same_sex: np.ndarray) -> np.ndarray:
    """For ``rows``: whether each word of the side with fewer words (either when as many) is at
    most one edit from some word of the other with the same first letter, or its initial, by
    spelling or by sound columns as given (a compound name shortened with a typo in it: SONIA of
    SONAI JESSICA, ROAS of KARINA ROSA; a name written as its initial: MARIA E. of MARIA ELENA).
    Only rows whose short side's first letters are all among the other's are looked at (a
    necessary condition, a few bit operations per row). Words are read from per-value tables by
    code, and the word pairs of all positions are compared at once."""
    out = np.zeros(len(rows), dtype=bool)
    if not len(rows):
        return out
    (ta, ca), (tb, cb) = (_words_of(x if pa.types.is_dictionary(x.type) else pc.dictionary_encode(x)) for x in (a, b))
    ca, cb, same_sex = ca[rows], cb[rows], same_sex[rows]
    wa, wb = np.where(ca >= 0, ta.count[ca], 0), np.where(cb >= 0, tb.count[cb], 0)
    la, lb = np.where(ca >= 0, ta.letters[ca], 0), np.where(cb >= 0, tb.letters[cb], 0)
    short_is_a = wa <= wb
    letters_in = np.where(short_is_a, (la & ~lb) == 0, (lb & ~la) == 0)
    n_short = np.where(short_is_a, wa, wb)
    look = np.nonzero(letters_in & (n_short >= 1) & (n_short <= WORDS_MATCHED))[0]
    if not len(look):
        return out
    ca, cb, short_is_a, n_short, same_sex = ca[look], cb[look], short_is_a[look], n_short[look], same_sex[look]
    # every (row, short word i, long word j) with both words there and the same first letter
    found = []
    for tx, ty, cx, cy, short in ((ta, tb, ca, cb, short_is_a), (tb, ta, cb, ca, ~short_is_a)):
        at = np.nonzero(short)[0]
        for i in range(int(n_short.max())):
            fx = tx.initial[tx.at[i][cx[at]]]
            for j in range(WORDS_MATCHED):
                hit = at[(fx > 0) & (fx == ty.initial[ty.at[j][cy[at]]])]
                if len(hit):
                    found.append((hit, i, j, tx, ty, tx.at[i][cx[hit]], ty.at[j][cy[hit]]))
    if not found:
        return out
    row = np.concatenate([f[0] for f in found])
    pos = np.concatenate([np.full(len(f[0]), f[1]) for f in found])
    gather = lambda attr, side: np.concatenate([getattr(f[3 + side], attr)[f[5 + side]] for f in found])
    xw, yw = gather("text", 0), gather("text", 1)
    # one edit apart but a gendered ending apart, records not of the same sex: a brother and a
    # sister (_gendered), unless one is the other's initial. Told by the words' text: MARIA of
    # MARIA ELENA and of MARIA ROSA ELNA is one word, whatever the names' codes
    gendered = ((gather("stem", 0) == gather("stem", 1)) & (xw != yw) & ~same_sex[row]
                & ((gather("gendered", 0) & gather("gendered", 1)) | gather("consonant_stem", 0)))
    edits = process.cpdist(xw, yw, scorer=OSA.distance, score_cutoff=1, workers=1)
    initial = (gather("length", 0) == 1) | (gather("length", 1) == 1)
    close = ((edits <= 1) & ~gendered) | initial
    matched = np.zeros((len(look), WORDS_MATCHED), dtype=bool)
    matched[row[close], pos[close]] = True
    needed = np.arange(WORDS_MATCHED)[None, :] < n_short[:, None]
    out[look] = np.all(matched | ~needed, axis=1)
    return out


def _gendered(a: pa.Array, b: pa.Array, same_sex: np.ndarray) -> np.ndarray:
    """Whether two names differ only in a gendered ending (JUAN / JUANA, MARIO / MARIA) and the
    records do not say the same sex: a brother and a sister, not a typo (ROSA keyed ROS, ERIKA
    keyed ERIK, of one woman). Endings: schemas/linkage/phonetic.yaml."""
    from pipelines.link.names import phonetic_rules

    ending = phonetic_rules()["gendered_ending"]
    stem = lambda x: _derived(x, lambda v: pc.replace_substring_regex(v, ending, ""), key=("stem", ending))
    ends = lambda x, pattern: _per_row(x, lambda v: pc.match_substring_regex(v, pattern), ("ends", pattern), False)
    sa = stem(a)
    # both end in a gendered vowel (MARIO / MARIA), or the ending was added to a consonant (JUAN /
    # JUANA); MARI of MARIA is a letter dropped
    form = (ends(a, ending) & ends(b, ending)) | ends(sa, "[^AEIOU]$")
    return _eq(sa, stem(b)) & ~_eq(a, b) & form & ~same_sex


def given_names(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    """Given names: exact, by sound, a compound name shortened, a typo, shortened with a typo, the
    first name only. Levels 1 and 0 are what siblings look like (clustering.refuse_levels)."""
    g1, g2 = _col(left, "given"), _col(right, "given")
    s1, s2 = _col(left, "given_sound"), _col(right, "given_sound")
    f1, f2 = _col(left, "given1"), _col(right, "given1")
    known = _valid(g1) & _valid(g2)
    same_sex = _eq(_col(left, "sex"), _col(right, "sex")) if "sex" in left.column_names else np.zeros(len(known), bool)
    exact, sound = _eq(g1, g2), _eq(s1, s2)
    subset = _word_subset(s1, s2)  # a compound given name shortened (CARMEN of MARIA DEL CARMEN)
    # a typo (ANA / AFA, ANA / AA: one edit by sound or as written)
    typo = (_jaro_winkler(g1, g2) >= 0.9) | _close(s1, s2) | _close(g1, g2)
    rows = np.nonzero(typo & ~exact)[0]
    if len(rows):
        take = pa.array(rows)
        typo[rows] &= ~_gendered(pc.take(g1, take), pc.take(g2, take), same_sex[rows])
    rest = np.nonzero(known & ~(exact | sound | subset | typo))[0]
    close = np.zeros(len(known), dtype=bool)
    close[rest] = _words_close(s1, s2, rest, same_sex) | _words_close(g1, g2, rest, same_sex)
    return _select(
        [
            (exact, 6), (sound, 5), (subset, 4), (typo, 3), (close, 2),
            (_jaro_winkler(f1, f2) >= 0.8, 1),  # the first names alike, the others different
        ],
        known=known,
    )


def document(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    d1, d2 = _col(left, "document_core"), _col(right, "document_core")
    same_length = _eq(_derived(d1, pc.utf8_length, key="length"), _derived(d2, pc.utf8_length, key="length"))
    return _select([(_eq(d1, d2), 3), (same_length & (_edits(d1, d2) <= 1), 2)],
                   known=_valid(d1) & _valid(d2))


def _ints(table: pa.Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    arr = table.column(column).combine_chunks()
    valid = pc.is_valid(arr).to_numpy(zero_copy_only=False)
    if pa.types.is_date32(arr.type):
        arr = arr.cast(pa.int32())  # days since the epoch
    return pc.fill_null(arr.cast(pa.int64()), 0).to_numpy(zero_copy_only=False), valid


def birth_date(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    """Exact, day/month swapped, year off by one (or day typo), else the age implied at the event."""
    b1, k1 = _ints(left, "birth_date")  # date32 -> days since epoch
    b2, k2 = _ints(right, "birth_date")
    parts = []
    for table in (left, right):
        dates = table.column("birth_date").combine_chunks()
        parts.append([pc.fill_null(f(dates), 0).to_numpy(zero_copy_only=False) for f in (pc.year, pc.month, pc.day)])
    (y1, mo1, d1), (y2, mo2, d2) = parts
    by1, vy1 = _ints(left, "birth_year")
    by2, vy2 = _ints(right, "birth_year")
    both_known = k1 & k2
    return _select(
        [
            (both_known & (b1 == b2), 4),
            (both_known & (y1 == y2) & (mo1 == d2) & (d1 == mo2), 3),
            (both_known & (((mo1 == mo2) & (d1 == d2) & (np.abs(y1 - y2) == 1)) | ((y1 == y2) & (mo1 == mo2))
                           | ((y1 == y2) & (((mo1 == 1) & (d1 == 1)) | ((mo2 == 1) & (d2 == 1))))), 2),
            (np.abs(by1 - by2) <= 1, 1),
        ],
        known=vy1 & vy2,
    )


def exact(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    a, b = _col(left, spec.column), _col(right, spec.column)
    return _select([(_eq(a, b), 1)], known=_valid(a) & _valid(b))


def jaro_winkler(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    """Generic text comparison: exact, then Jaro-Winkler similarity at or above each threshold."""
    a, b = _col(left, spec.column), _col(right, spec.column)
    thresholds = sorted(spec.thresholds, reverse=True)
    similarity = _jaro_winkler(a, b)
    conditions = [(_eq(a, b), len(thresholds) + 1)]
    conditions += [(similarity >= t, len(thresholds) - i) for i, t in enumerate(thresholds)]
    return _select(conditions, known=_valid(a) & _valid(b))


def ubigeo(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    a, b = _col(left, spec.column), _col(right, spec.column)
    return _select(
        [(_eq(a, b), 3), (_eq(_prefix(a, 4), _prefix(b, 4)), 2), (_eq(_prefix(a, 2), _prefix(b, 2)), 1)],
        known=_valid(a) & _valid(b),
    )


def date_distance(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    a, va = _ints(left, spec.column)
    b, vb = _ints(right, spec.column)
    gap = np.abs(a - b)
    days = sorted(spec.days)
    conditions = [(gap <= d, len(days) - i) for i, d in enumerate(days)]
    return _select(conditions, known=va & vb)


def any_exact(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    """1 when any listed reference is shared; 0 when some reference is on both sides and none is shared."""
    agree = np.zeros(left.num_rows, dtype=bool)
    comparable = np.zeros(left.num_rows, dtype=bool)
    for column in spec.columns:
        a, b = _col(left, column), _col(right, column)
        comparable |= _valid(a) & _valid(b)
        agree |= _eq(a, b)
    return _select([(agree, 1)], known=comparable)


COMPARISONS: dict[str, Callable[[pa.Table, pa.Table, Comparison], np.ndarray]] = {
    "surnames": surnames, "given_names": given_names, "document": document, "birth_date": birth_date,
    "exact": exact, "jaro_winkler": jaro_winkler, "ubigeo": ubigeo, "date_distance": date_distance, "any_exact": any_exact,
}

LEVELS: dict[str, dict[int, str]] = {
    "surnames": {6: "both surnames exact", 5: "both surnames alike by sound, or swapped",
                 4: "one surname against two (the other missing), or the same name words in any field",
                 3: "both surnames Jaro-Winkler >= 0.92, or one against two with a typo", 2: "one surname alike by sound, the other different",
                 1: "surnames Jaro-Winkler >= 0.8", 0: "different"},
    "given_names": {6: "exact", 5: "alike by sound", 4: "the words of one among the other's (compound name shortened)",
                    3: "Jaro-Winkler >= 0.9, or one edit apart by sound or as written",
                    2: "each word of one within one edit of a word of the other, or its initial (shortened, with a typo)",
                    1: "first given names Jaro-Winkler >= 0.8, the others different", 0: "different"},
    "document": {3: "same number", 2: "one edit or transposition apart", 0: "different"},
    "birth_date": {4: "exact", 3: "day and month swapped",
                   2: "year off by one, or same year and month, or same year with one date a 1 January (the year only)",
                   1: "ages at the events consistent (birth years within one)", 0: "different"},
    "exact": {1: "equal", 0: "different"},
    "jaro_winkler": {3: "exact", 2: "Jaro-Winkler >= first threshold", 1: "Jaro-Winkler >= second threshold",
                     0: "different"},
    "ubigeo": {3: "same district", 2: "same province", 1: "same department", 0: "different"},
    "date_distance": {2: "within the first window", 1: "within the second window", 0: "further apart"},
    "any_exact": {1: "a shared reference", 0: "references on both sides, none shared"},
}

# functions(levels, comparisons) run on every comparison's levels, in order, before they are returned
LEVEL_HOOKS: list[Callable[[dict[str, np.ndarray], Sequence[Comparison]], None]] = []

# columns each comparison type reads (so blocks ship only what the comparisons need)
NAME_COLUMNS = ("given", "given1", "given_sound", "given1_sound", "given_rest_sound", "paternal", "maternal",
                "paternal_sound", "maternal_sound", "surnames_sound", "surname_set", "name_set")
# blocking columns derived from others: a rule keyed on them constrains what they are made of
DERIVED = {"name_tokens": NAME_COLUMNS, "name_token_years": NAME_COLUMNS + ("birth_date", "birth_year")}
COLUMNS: dict[str, tuple[str, ...]] = {
    "surnames": NAME_COLUMNS,
    "given_names": NAME_COLUMNS + ("sex",),
    "document": ("document_core",),
    "birth_date": ("birth_date", "birth_year"),
}


# the options of a Comparison (pipelines/link/settings.py) that a type reads besides those every
# comparison has (COMMON_OPTIONS); the column or columns it compares are required
COMMON_OPTIONS = ("name", "type", "tf_column", "implied_by")
OPTIONS: dict[str, tuple[str, ...]] = {
    "exact": ("column",), "jaro_winkler": ("column", "thresholds"), "ubigeo": ("column",),
    "date_distance": ("column", "days"), "any_exact": ("columns",),
}


def check_options(comparisons: Sequence[Comparison]) -> None:
    """Each comparison is of a known type, and sets only the options its type reads and the
    column(s) it compares (a ``SettingsError`` names the key)."""
    for i, c in enumerate(comparisons):
        if c.type not in COMPARISONS:
            raise SettingsError(f"comparisons[{i}].type is none of the comparison types: "
                                f"{', '.join(sorted(COMPARISONS))}")
        reads = OPTIONS.get(c.type, ())
        for option in written(c):
            if option not in COMMON_OPTIONS and option not in reads:
                raise SettingsError(f"comparisons[{i}].{option} is not read by its type")
        for option in ("column", "columns"):
            if option in reads and getattr(c, option) is None:
                raise SettingsError(f"missing key comparisons[{i}].{option}")


def columns_for(spec: Comparison) -> tuple[str, ...]:
    if spec.type in COLUMNS:
        return COLUMNS[spec.type]
    return tuple(spec.columns or [spec.column])


def compared_columns(comparisons: Sequence[Comparison]) -> list[str]:
    """Every column compare() reads for these comparisons (the records of pairs are gathered with
    these only: a partition also carries blocking keys and token lists)."""
    columns = {c for spec in comparisons for c in columns_for(spec)}
    if any(spec.type in ("surnames", "given_names") for spec in comparisons):
        columns.update(NAME_COLUMNS)  # crossed names (_crossed, _realigned)
    return sorted(columns)


def _similarity(a: pa.Array, b: pa.Array) -> np.ndarray:
    """1 where the words of one are among the other's (one surname of two), or each within one
    edit of a word of the other (a typo in it), else Jaro-Winkler."""
    close = _word_subset(a, b) | _words_close(a, b, np.arange(len(a)), np.ones(len(a), dtype=bool))
    return np.where(close, 1.0, _jaro_winkler(a, b))


def _close(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Equal, or one edit apart with the first letter kept (computed only where it is kept)."""
    out = _eq(a, b)
    rows = np.nonzero(~out & _eq(_prefix(a, 1), _prefix(b, 1)))[0]
    if len(rows):
        take = pa.array(rows)
        out[rows] = _edits(pc.take(a, take), pc.take(b, take)) <= 1
    return out


def _crossed(left: pa.Table, right: pa.Table) -> np.ndarray:
    """Pairs whose given names and surnames were entered in each other's fields: where both
    differ as recorded and a first given name sounds like a surname of the other side (or is one
    edit from it: a typo), the given names of each are closer (by sound: the same words, each
    within one edit, or Jaro-Winkler) to the surnames of the other than to its given names."""
    out = np.zeros(left.num_rows, dtype=bool)
    if "given_sound" not in left.column_names:
        return out
    g1, g2 = _col(left, "given_sound"), _col(right, "given_sound")
    s1, s2 = _col(left, "surnames_sound"), _col(right, "surnames_sound")
    rows = np.nonzero(_differing(g1, g2) & _differing(s1, s2))[0]
    if not len(rows):
        return out
    take = pa.array(rows)
    sounds = ["given_sound", "surnames_sound", "given1_sound", "paternal_sound", "maternal_sound"]
    left, right = left.select(sounds).take(take), right.select(sounds).take(take)
    # worth a look only where a first given name sounds like a surname of the other side
    f1, f2 = _col(left, "given1_sound"), _col(right, "given1_sound")
    hint = (_close(f1, _col(right, "paternal_sound")) | _close(f1, _col(right, "maternal_sound"))
            | _close(f2, _col(left, "paternal_sound")) | _close(f2, _col(left, "maternal_sound")))
    rows, at = rows[hint], pa.array(np.nonzero(hint)[0])
    if len(rows):
        g1, g2, s1, s2 = (pc.take(_col(t, c), at) for t, c in ((left, "given_sound"), (right, "given_sound"),
                                                                  (left, "surnames_sound"), (right, "surnames_sound")))
        straight = _similarity(g1, g2) + _similarity(s1, s2)
        crossed = _similarity(g1, s2) + _similarity(s1, g2)
        out[rows] = (crossed >= CROSSED_AT) & (crossed > straight)
    return out


def _realigned(side: pa.Table) -> pa.Table:
    """A record's name fields put back in place: its given names field held the surnames and its
    surname fields the given names."""
    text = {c: decode(_col(side, c)).cast(pa.string()) for c in NAME_COLUMNS}
    given = pc.utf8_trim_whitespace(pc.binary_join_element_wise(
        text["paternal"], pc.fill_null(text["maternal"], ""), " "))
    rest = pc.replace_substring_regex(text["given"], r"^\S+\s*", "")
    swapped = {
        "given": given, "given1": text["paternal"], "given_sound": text["surnames_sound"],
        "given1_sound": text["paternal_sound"], "given_rest_sound": text["maternal_sound"],
        "paternal": text["given1"], "maternal": pc.if_else(pc.equal(rest, ""), pa.scalar(None, pa.string()), rest),
        "paternal_sound": text["given1_sound"], "maternal_sound": text["given_rest_sound"],
        "surnames_sound": text["given_sound"], "surname_set": text["given"],
    }
    for name, values in swapped.items():
        side = side.set_column(side.column_names.index(name), name, values)
    return side


def compare(left: pa.Table, right: pa.Table, comparisons: Sequence[Comparison]) -> dict[str, np.ndarray]:
    """Every comparison's levels. Name comparisons see a record whose given names and surnames
    were entered in each other's fields with its names put back in place; a comparison with
    ``implied_by`` says nothing where that comparison agrees at its top level (records of one
    case share a district and a date because they share the case: counted once)."""
    with kept_per_value():
        return _compare(left, right, comparisons)


def _compare(left: pa.Table, right: pa.Table, comparisons: Sequence[Comparison]) -> dict[str, np.ndarray]:
    levels = {c.name: COMPARISONS[c.type](left, right, c) for c in comparisons}
    names = [c for c in comparisons if c.type in ("surnames", "given_names")]
    crossed = np.nonzero(_crossed(left, right))[0] if names else np.zeros(0, dtype=np.int64)
    if len(crossed):
        # which of the two was entered crossed is not known from the pair: each is put back in
        # turn. The right one put back is kept unless only the left one put back gives given names
        # and surnames that both agree (else the given names comparison would compare the surnames
        # of both and the sibling guard see strangers); where neither reading agrees on both, as
        # for a brother and sister of whom one was entered crossed, the given names disagree.
        take = pa.array(crossed)
        sub_left, sub_right = left.take(take), right.take(take)
        readings = [{c.name: COMPARISONS[c.type](a, b, c) for c in names}
                    for a, b in ((sub_left, _realigned(sub_right)), (_realigned(sub_left), sub_right))]
        agree = [np.ones(len(crossed), dtype=bool) for _ in readings]
        for c in names:
            for reading, ok in zip(readings, agree):
                ok &= reading[c.name] >= AGREEING_FROM[c.type]
        second = agree[1] & ~agree[0]
        for c in names:
            levels[c.name][crossed] = np.where(second, readings[1][c.name], readings[0][c.name])
    for c in comparisons:
        if c.implied_by:
            implied = levels[c.implied_by] == _top(c.implied_by, comparisons)
            levels[c.name] = np.where(implied, NULL, levels[c.name]).astype(np.int8)
    for hook in LEVEL_HOOKS:  # comparisons that explain away others (pipelines/link/aliases.py)
        hook(levels, comparisons)
    return levels


def _top(name: str, comparisons: Sequence[Comparison]) -> int:
    kind = next(c.type for c in comparisons if c.name == name)
    return max(LEVELS[kind])


# several documents per record: pipelines/link/documents.py
COMPARISONS["document_set"] = _documents.document_set
LEVELS["document_set"] = _documents.LEVELS
COLUMNS["document_set"] = _documents.COLUMNS
OPTIONS["document_set"] = _documents.OPTIONS

# offenders' aliases: pipelines/link/aliases.py
COMPARISONS["aliases"] = _aliases.aliases
LEVELS["aliases"] = _aliases.LEVELS
COLUMNS["aliases"] = _aliases.COLUMNS
OPTIONS["aliases"] = _aliases.OPTIONS
DERIVED[_aliases.KEY_COLUMN] = NAME_COLUMNS + _aliases.COLUMNS  # each record's name and aliases by sound
LEVEL_HOOKS.append(_aliases.explain)
