"""The linkage settings (schemas/linkage/settings.yaml; docs/linkage.md) as frozen objects.

``LinkageSettings.from_dict`` reads what the YAML file holds: an unknown or missing key, a value of
the wrong type, or a name that refers to no comparison is a ``SettingsError`` naming the key
(``linker.load_settings`` also checks each comparison's type and options against the comparison
library). The objects pickle (Beam ships them to its workers) and ``to_dict`` gives them back as
the file wrote them (the trained model's artefact carries them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.core.settings_file import Part, SettingsError, parse

Levels = tuple[int, ...]  # agreement levels of a comparison (pipelines/link/comparisons.py)


@dataclass(frozen=True, kw_only=True)
class Comparison(Part):
    """One comparison: its ``type`` is a function of pipelines/link/comparisons.py, whose OPTIONS say
    which of the type-specific fields (column to explains) it reads."""

    name: str
    type: str
    column: str | None = None                      # the column compared (exact, jaro_winkler, ubigeo, date_distance)
    columns: tuple[str, ...] | None = None         # any_exact: a value shared in any of these agrees
    days: tuple[int, ...] = (30, 365)              # date_distance: the windows of its levels, nearest first
    thresholds: tuple[float, ...] = (0.92, 0.8)    # jaro_winkler: the similarities of its levels
    tf_column: str | None = None                   # the top level weighed by the frequency of this column's value
    implied_by: str | None = None                  # says nothing where that comparison agrees at its top level
    for_life_types: tuple[str, ...] | None = None  # document_set: types kept for life (None: every type)
    explains: tuple[str, ...] = ()                 # aliases: the name comparisons an alias explains away


@dataclass(frozen=True, kw_only=True)
class BlockingRule(Part):
    """Records sharing the values of ``keys`` form a block; with ``tokens`` (a list column), one key
    per combination of ``choose`` of a record's first ``max_tokens`` tokens (pipelines/link/blocking.py)."""

    name: str
    tokens: str | None = None
    choose: int = 2
    max_tokens: int = 5
    keys: tuple[str, ...] = ()
    train: bool = True  # False: too loose to learn from (its pairs are almost all non-matches)
    # None: the settings' bound
    max_block_size: int | None = None
    giant_block_window: int | None = None
    giant_block_orders: tuple[tuple[str, ...], ...] | None = None

    @property
    def multi(self) -> bool:
        """A record has several keys under this rule (one per combination of its tokens)."""
        return self.tokens is not None


@dataclass(frozen=True, kw_only=True)
class Clustering(Part):
    """The clustering guard (pipelines/link/cluster.py); keys of the mappings are comparison names."""

    merge_conflicts_at: float | None = None  # None: a conflicting merge is always refused
    refuse_levels: dict[str, Levels] = field(default_factory=dict)
    refusal_lifted_when: dict[str, dict[str, Levels]] = field(default_factory=dict)
    copied_document_when: dict[str, Levels] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Training(Part):
    """u from a hash sample of the records, m by EM (pipelines/link/fellegi_sunter.py)."""

    u_sample_records: int = 4000
    u_max_pairs: int = 2_000_000
    em_max_iterations: int = 100
    em_tolerance: float = 1e-6
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class Thresholds(Part):
    match_probability: float  # pairs at or above are the same person
    review_lower: float       # pairs in [review_lower, match_probability) go to the review queue
    links_floor: float = 0.01  # pairs below are not written to links/

    @property
    def floor(self) -> float:
        """Pairs below this probability are neither links nor review candidates: not kept."""
        return min(self.links_floor, self.review_lower)


@dataclass(frozen=True, kw_only=True)
class LinkageSettings(Part):
    version: str
    comparisons: tuple[Comparison, ...]
    blocking_rules: tuple[BlockingRule, ...]
    # giant blocks (larger than max_block_size): sorted neighbourhood, unless a rule gives its own
    max_block_size: int = 2000
    giant_block_window: int = 20
    giant_block_orders: tuple[tuple[str, ...], ...] = ()
    clustering: Clustering = field(default_factory=Clustering)
    training: Training = field(default_factory=Training)
    thresholds: Thresholds

    @classmethod
    def from_dict(cls, raw) -> "LinkageSettings":
        settings = parse(cls, raw)
        settings._check_names()
        return settings

    @property
    def comparison_names(self) -> list[str]:
        return [c.name for c in self.comparisons]

    def bound(self, rule: BlockingRule, name: str):
        """A rule's own ``max_block_size``, ``giant_block_window`` or ``giant_block_orders``, else the settings'."""
        own = getattr(rule, name)
        return own if own is not None else getattr(self, name)

    def _check_names(self) -> None:
        """Names are unique, and every name that refers to a comparison names one."""
        names = set(self.comparison_names)
        for where, items in (("comparisons", self.comparisons), ("blocking_rules", self.blocking_rules)):
            seen = set()
            for i, item in enumerate(items):
                if item.name in seen:
                    raise SettingsError(f"{where}[{i}].name is the name of an earlier one")
                seen.add(item.name)
        refs = []
        for i, c in enumerate(self.comparisons):
            refs += [(f"comparisons[{i}].implied_by", c.implied_by)] if c.implied_by is not None else []
            refs += [(f"comparisons[{i}].explains[{j}]", n) for j, n in enumerate(c.explains)]
        guard = self.clustering
        for key in ("refuse_levels", "refusal_lifted_when", "copied_document_when"):
            refs += [(f"a key of clustering.{key}", n) for n in getattr(guard, key)]
        refs += [(f"a key of clustering.refusal_lifted_when.{n}", other)
                 for n, when in guard.refusal_lifted_when.items() for other in when]
        for where, name in refs:
            if name not in names:
                raise SettingsError(f"{where} names no comparison")
        for i, rule in enumerate(self.blocking_rules):
            if not rule.multi and not rule.keys:
                raise SettingsError(f"blocking_rules[{i}] has neither keys nor tokens")
