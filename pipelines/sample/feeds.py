"""One builder per agency feed: which persons the agency registered, and how it wrote each of them.

A builder returns a `FeedData`: the feed's columns (in the contract's column names, file order) for the
valid rows, the person behind each row and the figures measured on the written values under the
pipeline's counting rule. Values are str, int or None (None = empty cell / JSON null).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import variation as var
from .world import (DOC_CODES, EXPLOITATION, NATIONALITIES, NICKNAMES, OFFENCES, YEAR_END, World, completed_years,
                    rng_for, ymd)

NAT_NAME = ["PERU", "VENEZUELA", "COLOMBIA", "ECUADOR", "BOLIVIA", "REPUBLICA DOMINICANA", "BRASIL", "ARGENTINA"]
NAT_TITLE = ["Perú", "Venezuela", "Colombia", "Ecuador", "Bolivia", "República Dominicana", "Brasil", "Argentina"]
NAT_DEMONYM = ["PERUANA", "VENEZOLANA", "COLOMBIANA", "ECUATORIANA", "BOLIVIANA", "DOMINICANA", "BRASILEÑA",
               "ARGENTINA"]


@dataclass(frozen=True)
class FeedSpec:
    feed_id: str
    path: str                    # relative to the feeds root
    fmt: str                     # csv | jsonl
    encoding: str
    delimiter: str
    lineterminator: str
    columns: tuple
    id_col: str
    id_prefix: str
    event_col: str
    date_fmt: str                # strftime-like, only %d %m %Y
    bd_col: str | None
    age_col: str
    role: str


SPECS = {
    "pnp_victims": FeedSpec(
        "pnp_victims", "pnp/victimas_2018.csv", "csv", "latin-1", ";", "\r\n",
        ("NRO_REGISTRO", "NRO_ATESTADO", "FECHA_HECHO", "DEPENDENCIA_POLICIAL", "APELLIDOS_NOMBRES", "SEXO",
         "FECHA_NACIMIENTO", "EDAD", "TIPO_DOC", "NRO_DOC", "NACIONALIDAD", "UBIGEO_HECHO",
         "MODALIDAD_EXPLOTACION", "DELITO"),
        "NRO_REGISTRO", "RETA-V-2018-", "FECHA_HECHO", "%d/%m/%Y", "FECHA_NACIMIENTO", "EDAD", "victim"),
    "pnp_detainees": FeedSpec(
        "pnp_detainees", "pnp/detenidos_2018.csv", "csv", "latin-1", ";", "\r\n",
        ("NRO_REGISTRO", "NRO_ATESTADO", "FECHA_DETENCION", "DEPENDENCIA_POLICIAL", "APELLIDOS_NOMBRES", "ALIAS",
         "SEXO", "FECHA_NACIMIENTO", "EDAD", "TIPO_DOC", "NRO_DOC", "NACIONALIDAD", "UBIGEO_HECHO", "DELITO"),
        "NRO_REGISTRO", "RETA-D-2018-", "FECHA_DETENCION", "%d/%m/%Y", "FECHA_NACIMIENTO", "EDAD", "offender"),
    "mp_victims": FeedSpec(
        "mp_victims", "mp/agraviados_2018.jsonl", "jsonl", "utf-8", "", "\n",
        ("id_agraviado", "carpeta_fiscal", "nro_atestado_policial", "fecha_hecho", "nombres", "apellido_paterno",
         "apellido_materno", "sexo", "fecha_nacimiento", "edad", "documento",
         "pais_nacionalidad", "ubigeo_hecho", "finalidad_explotacion", "articulo"),
        "id_agraviado", "AGR-2018-", "fecha_hecho", "%Y-%m-%d", "fecha_nacimiento", "edad", "victim"),
    "mp_investigated": FeedSpec(
        "mp_investigated", "mp/investigados_2018.jsonl", "jsonl", "utf-8", "", "\n",
        ("id_investigado", "carpeta_fiscal", "nro_atestado_policial", "fecha_hecho", "nombres",
         "apellido_paterno", "apellido_materno", "alias", "sexo", "fecha_nacimiento", "edad", "documento",
         "pais_nacionalidad", "ubigeo_hecho", "articulo", "situacion"),
        "id_investigado", "INV-2018-", "fecha_hecho", "%Y-%m-%d", "fecha_nacimiento", "edad", "offender"),
    "mimp_child_victims": FeedSpec(
        "mimp_child_victims", "mimp/ninos_victimas_2018.csv", "csv", "utf-8", ",", "\n",
        ("CODIGO_CASO", "NRO_ATESTADO_REFERENCIA", "FECHA_INGRESO", "SERVICIO", "NOMBRES", "APELLIDOS", "SEXO",
         "FECHA_NAC", "EDAD", "DNI", "NACIONALIDAD", "UBIGEO", "TIPO_CASO", "PROCEDENCIA"),
        "CODIGO_CASO", "UPE-2018-", "FECHA_INGRESO", "%d-%m-%Y", "FECHA_NAC", "EDAD", "victim"),
    "sunafil_findings": FeedSpec(
        "sunafil_findings", "sunafil/hallazgos_2018.csv", "csv", "utf-8-sig", ",", "\r\n",
        ("ID_HALLAZGO", "ORDEN_INSPECCION", "FECHA_INSPECCION", "INTENDENCIA", "NOMBRES_APELLIDOS", "SEXO",
         "EDAD", "TIPO_DOCUMENTO", "NRO_DOCUMENTO", "NACIONALIDAD", "UBIGEO", "SECTOR", "DERIVADO_PNP"),
        "ID_HALLAZGO", "H-2018-", "FECHA_INSPECCION", "%d/%m/%Y", None, "EDAD", "victim"),
    "pj_convictions": FeedSpec(
        "pj_convictions", "pj/sentencias_2018.csv", "csv", "utf-8", ",", "\n",
        ("NRO_REGISTRO", "EXPEDIENTE", "CARPETA_FISCAL", "DISTRITO_JUDICIAL", "FECHA_SENTENCIA", "SENTENCIADO",
         "SEXO", "EDAD", "DNI", "DELITO"),
        "NRO_REGISTRO", "SIJ-2018-", "FECHA_SENTENCIA", "%Y-%m-%d", None, "EDAD", "offender"),
}


@dataclass
class FeedData:
    spec: FeedSpec
    columns: dict
    persons: np.ndarray
    figures: dict = field(default_factory=dict)
    victim_nat: np.ndarray | None = None   # nationality index written per row (-1 = blank), victims only

    @property
    def n(self) -> int:
        return len(self.persons)


def fmt_dates(y: np.ndarray, m: np.ndarray, d: np.ndarray, fmt: str, present=None) -> list:
    if fmt == "%d/%m/%Y":
        f = "{2:02d}/{1:02d}/{0:04d}"
    elif fmt == "%d-%m-%Y":
        f = "{2:02d}-{1:02d}-{0:04d}"
    else:
        f = "{0:04d}-{1:02d}-{2:02d}"
    ff = f.format
    out = [ff(a, b, c) for a, b, c in zip(y.tolist(), m.tolist(), d.tolist())]
    if present is not None:
        out = [s if p else None for s, p in zip(out, present.tolist())]
    return out


def _rows(w: World, rng, in_mask: np.ndarray, dup_mask: np.ndarray, date_fn):
    idx = np.arange(w.n)
    persons = np.r_[idx[in_mask], idx[in_mask & dup_mask]]
    ev = date_fn(persons)
    order = np.lexsort((rng.random(len(persons)), ev))
    return persons[order], ev[order]


def _ages(w: World, rng, persons, ev, p_bd, p_swap=0.03, p_noise=0.05, p_age_blank=0.02, unknown=None):
    """Birth date / age as written, with the counting-rule status guaranteed to equal the truth."""
    n = len(persons)
    by, bm, bd = ymd(w.arrays["birth"][persons])
    ey, em, ed = ymd(ev)
    true_age = completed_years(by, bm, bd, ey, em, ed)
    has_bd = rng.random(n) < p_bd
    if unknown is not None:
        has_bd &= ~unknown
    swap = has_bd & (rng.random(n) < p_swap) & (bd <= 12) & (bd != bm)
    wm, wd = np.where(swap, bd, bm), np.where(swap, bm, bd)
    a_sw = completed_years(by, wm, wd, ey, em, ed)
    revert = swap & ((a_sw < 18) != (true_age < 18))
    wm, wd = np.where(revert, bm, wm), np.where(revert, bd, wd)
    u = rng.random(n)
    age = true_age.copy()
    noisy = has_bd & (u < p_noise)
    age[noisy] += np.where(rng.random(int(noisy.sum())) < 0.5, -1, 1)
    age = np.maximum(age, 0)
    age_blank = has_bd & (u > 1 - p_age_blank)
    if unknown is not None:
        age_blank |= unknown
    counted = np.where(has_bd, completed_years(by, wm, wd, ey, em, ed), np.where(age_blank, -1, age))
    known = counted >= 0
    child = known & (counted < 18)
    assert not np.any(known & (child != (true_age < 18))), "written age contradicts the truth"
    ages = [None if b else a for a, b in zip(age.tolist(), age_blank.tolist())]
    return (by, wm, wd, has_bd), ages, child, known


def _names(w: World, rng, persons, st: var.NameStyle):
    A, pool = w.arrays, w.strings["names"]
    U = rng.random((len(persons), var.N_NAME_U))
    out = []
    for p, u in zip(persons.tolist(), U):
        g2 = A["g2"][p]
        given = [pool[A["g1"][p]]] + ([pool[g2]] if g2 >= 0 else [])
        m = A["mat"][p]
        out.append(var.garble_name(given, pool[A["pat"][p]], pool[m] if m >= 0 else "", u, st))
    return out


def _documents(w: World, rng, persons, p_missing, p_typo=0.02, p_check=0.0, cedula_style=True):
    """(type index into DOC_CODES or -1, number or None) per row."""
    A, docs = w.arrays, w.strings["doc"]
    n = len(persons)
    t = A["doc_type"][persons].copy()
    u = rng.random((n, 5))
    t[u[:, 0] < p_missing] = -1
    dni = A["dni"][persons]
    digit_c, letter_c = var.dni_check_chars(np.maximum(dni, 0))
    nums = []
    for i, p in enumerate(persons.tolist()):
        ti = t[i]
        if ti < 0:
            nums.append(None)
            continue
        s = docs[p]
        if u[i, 1] < p_typo:
            s = var.digit_typo(s, u[i, 2], u[i, 3])
        if ti == 0 and u[i, 4] < p_check:
            s = s + "-" + (digit_c[i] if u[i, 4] < p_check / 2 else letter_c[i])
        elif ti == 4 and cedula_style and A["nat"][p] == 1:
            s = var.venezuelan_cedula(s, u[i, 2])
        nums.append(s)
    return t, nums


def _nat(w, rng, persons, labels, p_blank_pe):
    nat = w.arrays["nat"][persons].copy()
    nat[(nat == 0) & (rng.random(len(persons)) < p_blank_pe)] = -1
    return nat, [labels[k] if k >= 0 else None for k in nat.tolist()]


def _blank(values, rng, p):
    u = rng.random(len(values))
    return [None if x < p else v for v, x in zip(values, u.tolist())]


def _expl_labels(w, rng, persons, mapping, p_unknown, unknown_label):
    e = w.arrays["expl"][persons]
    u = rng.random(len(persons))
    out = []
    for k, x in zip(e.tolist(), u.tolist()):
        opts = mapping[EXPLOITATION[k]]
        if x < p_unknown:
            out.append(unknown_label)
        elif isinstance(opts, str):
            out.append(opts)
        else:
            out.append(opts[int(x * 1000) % len(opts)])
    return out


def _offences(w, rng, persons):
    u = rng.random(len(persons))
    return [var.offence_variant(OFFENCES[k], x) for k, x in zip(w.arrays["offence"][persons].tolist(), u.tolist())]


def _refs(values, rng, p_present):
    u = rng.random(len(values))
    v = rng.random(len(values))
    return [var.reference_variant(r, b) if (r and a < p_present) else None
            for r, a, b in zip(values, u.tolist(), v.tolist())]


def full_name(w: World, p: int, surnames_of: int | None = None) -> tuple[str, str, str]:
    """A person's (given names, paternal, maternal surname) as RENIEC knows them; with
    ``surnames_of``, that person's surnames instead."""
    A, pool = w.arrays, w.strings["names"]
    s = p if surnames_of is None else surnames_of
    given = pool[A["g1"][p]] + (" " + pool[A["g2"][p]] if A["g2"][p] >= 0 else "")
    return given, pool[A["pat"][s]], pool[A["mat"][s]] if A["mat"][s] >= 0 else ""


def false_name(w: World, p: int) -> tuple[str, str, str] | None:
    """The name an offender gave the police at arrest, None for none."""
    given, surnames = int(w.arrays["false_given"][p]), int(w.arrays["false_surnames"][p])
    return full_name(w, given, surnames) if given >= 0 else None


def _under_false_names(w: World, persons, names, dt, nums):
    """The police write the name an offender gave at arrest and no document: the prosecutors
    later identify them and keep that name as an alias."""
    for i in np.flatnonzero(w.arrays["false_given"][persons] >= 0).tolist():
        names[i] = tuple(var.strip_accents(x) for x in false_name(w, int(persons[i])))
        dt[i], nums[i] = -1, None


def _nicknames(w: World, rng, persons, p_written: float, article: float) -> list:
    """The nickname each row notes ("EL CHATO" or "CHATO"), None for none."""
    nick = w.arrays["nick"][persons]
    u = rng.random((len(persons), 2))
    return [None if k < 0 or a >= p_written else ("EL " if b < article else "") + NICKNAMES[k]
            for k, a, b in zip(nick.tolist(), u[:, 0].tolist(), u[:, 1].tolist())]


def _surnames(pat, mat):
    return pat + (" " + mat if mat else "")


PNP_EXPL = {"SEXUAL_EXPLOITATION": "EXPLOTACION SEXUAL", "FORCED_LABOUR": ["EXPLOTACION LABORAL", "EXPLOTACION LABORAL", "TRABAJO FORZOSO"],
            "DOMESTIC_SERVITUDE": "TRABAJO DOMESTICO", "FORCED_BEGGING": "MENDICIDAD",
            "FORCED_CRIMINALITY": "ACTIVIDADES DELICTIVAS", "OTHER": "OTRO", "UNKNOWN": "NO DETERMINADO"}
MP_EXPL = {"SEXUAL_EXPLOITATION": "SEXUAL", "FORCED_LABOUR": "LABORAL", "DOMESTIC_SERVITUDE": "DOMESTICA",
           "FORCED_BEGGING": "MENDICIDAD", "FORCED_CRIMINALITY": "ACTIVIDAD DELICTIVA", "OTHER": "OTRA",
           "UNKNOWN": "SIN DATO"}
MIMP_EXPL = {"SEXUAL_EXPLOITATION": ["ESCNNA", "ESCNNA", "ESCNNA", "TRATA SEXUAL"],
             "FORCED_LABOUR": ["TRATA LABORAL", "TRABAJO INFANTIL"], "DOMESTIC_SERVITUDE": "TRABAJO INFANTIL",
             "FORCED_BEGGING": "MENDICIDAD", "FORCED_CRIMINALITY": "OTRO", "OTHER": "OTRO", "UNKNOWN": "OTRO"}
PNP_DOC = {0: "DNI", 1: "CE", 2: "PASAPORTE", 3: "PTP", 4: "CEDULA", 5: "RUC"}
MP_DOC = {0: "DNI", 1: "CE", 2: "PASAPORTE", 3: "PTP", 4: "CEDULA", 5: "RUC"}


def _person_dates(w, persons):
    return w.arrays["d0"][persons]


def _cap(d):
    return np.minimum(d, YEAR_END)


def build_pnp(w: World, seed: int, offenders: bool) -> FeedData:
    fid = "pnp_detainees" if offenders else "pnp_victims"
    rng = rng_for(seed, fid)
    A, C = w.arrays, w.cases
    role = ~A["victim"] if offenders else A["victim"]
    if offenders:
        persons, ev = _rows(w, rng, role & A["in_pnp"], A["dup_pnp"],
                            lambda p: _cap(A["d0"][p] + rng.integers(0, 3, len(p))))
    else:
        persons, ev = _rows(w, rng, role & A["in_pnp"], A["dup_pnp"], lambda p: A["d0"][p])
    n = len(persons)
    case = A["case"][persons]
    (by, bm, bd, has_bd), ages, child, known = _ages(w, rng, persons, ev, 0.75 if offenders else 0.65)
    names = _names(w, rng, persons, var.NameStyle(strip=0.85, typo=0.04, no_maternal=0.05, short_given=0.25))
    dt, nums = _documents(w, rng, persons, p_missing=0.06 if offenders else 0.12, p_check=0.08)
    u = rng.random((n, 3))
    if offenders:  # drawn apart (rng_for): every other value of the feed stays as it was
        _under_false_names(w, persons, names, dt, nums)
        aliases = _nicknames(w, rng_for(seed, fid + "/aliases"), persons, 0.85, 0.5)
    doc_lab = [None if t < 0 else ("PAS" if (t == 2 and x < 0.5) else PNP_DOC[t]) for t, x in zip(dt.tolist(), u[:, 0].tolist())]
    nat, nat_lab = _nat(w, rng, persons, NAT_NAME, 0.05)
    female = A["female"][persons]
    sex = [("F" if f else "M") if x < 0.1 else ("FEMENINO" if f else "MASCULINO") for f, x in zip(female.tolist(), u[:, 1].tolist())]
    ub = _blank(C["ub_inei"][case].tolist(), rng, 0.04)
    cols = {
        "NRO_ATESTADO": [a or None for a in C["atestado"][case].tolist()],
        ("FECHA_DETENCION" if offenders else "FECHA_HECHO"): fmt_dates(*ymd(ev), "%d/%m/%Y"),
        "DEPENDENCIA_POLICIAL": [f"DEPINCRI {d}" for d in C["dept_name"][case].tolist()],
        "APELLIDOS_NOMBRES": [f"{_surnames(p, m)}, {g}" for g, p, m in names],
        **({"ALIAS": aliases} if offenders else {}),
        "SEXO": sex,
        "FECHA_NACIMIENTO": fmt_dates(by, bm, bd, "%d/%m/%Y", has_bd),
        "EDAD": ages,
        "TIPO_DOC": doc_lab,
        "NRO_DOC": nums,
        "NACIONALIDAD": nat_lab,
        "UBIGEO_HECHO": ub,
    }
    if not offenders:
        cols["MODALIDAD_EXPLOTACION"] = _expl_labels(w, rng, persons, PNP_EXPL, 0.03, "NO DETERMINADO")
    cols["DELITO"] = _offences(w, rng, persons)
    fd = FeedData(SPECS[fid], cols, persons)
    fd.figures = {"rows": n}
    if not offenders:
        atest = C["atestado"][w.la_pampa_case]
        fd.figures.update(children=int(child.sum()), adults=int((known & ~child).sum()),
                          unknown_age=int((~known).sum()),
                          la_pampa=int(sum(1 for a in cols["NRO_ATESTADO"] if a == atest)))
        fd.victim_nat = nat
    return fd


def build_mp(w: World, seed: int, offenders: bool) -> FeedData:
    fid = "mp_investigated" if offenders else "mp_victims"
    rng = rng_for(seed, fid)
    A, C = w.arrays, w.cases
    role = ~A["victim"] if offenders else A["victim"]
    persons, ev = _rows(w, rng, role & A["in_mp"], A["dup_mp"], lambda p: A["d0"][p])
    n = len(persons)
    case = A["case"][persons]
    unknown = None if offenders else ~A["mp_known"][persons]
    (by, bm, bd, has_bd), ages, child, known = _ages(w, rng, persons, ev, 0.6 if offenders else 0.55,
                                                     unknown=unknown)
    names = _names(w, rng, persons, var.NameStyle(strip=0.3, add=0.04, typo=0.04, no_maternal=0.08,
                                                  short_given=0.2, swap_surnames=0.03))
    dt, nums = _documents(w, rng, persons, p_missing=0.15, p_check=0.05)
    u = rng.random((n, 3))
    if offenders:  # a few investigated persons are registered by their RUC
        from stdnum.pe import ruc
        for i in np.flatnonzero((dt == 0) & (u[:, 2] < 0.02)).tolist():
            base = "10" + nums[i][:8]
            nums[i] = base + ruc.calc_check_digit(base)
            dt[i] = 5
    tipo = [("SIN DOCUMENTO" if t < 0 else ("CARNE EXTRANJERIA" if (t == 1 and x < 0.4) else MP_DOC[t]))
            for t, x in zip(dt.tolist(), u[:, 0].tolist())]
    nat, nat_lab = _nat(w, rng, persons, NATIONALITIES, 0.03)
    police = C["police"][case]
    in_pnp = A["in_pnp"][persons]
    cite = [a if (pol and (p or offenders)) else "" for a, pol, p in
            zip(C["atestado"][case].tolist(), police.tolist(), in_pnp.tolist())]
    cols = {
        "carpeta_fiscal": C["carpeta"][case].tolist(),
        "nro_atestado_policial": _refs(cite, rng, 0.92),
        "fecha_hecho": fmt_dates(*ymd(ev), "%Y-%m-%d"),
        "nombres": [g for g, _, _ in names],
        "apellido_paterno": [p for _, p, _ in names],
        "apellido_materno": [m or None for _, _, m in names],
        **({"alias": _mp_aliases(w, rng_for(seed, fid + "/aliases"), persons)} if offenders else {}),
        "sexo": ["F" if f else "M" for f in A["female"][persons].tolist()],
        "fecha_nacimiento": fmt_dates(by, bm, bd, "%Y-%m-%d", has_bd),
        "edad": ages,
        # SISTRA exports the identity document as one nested object
        "documento": [{"tipo": t, "numero": x} for t, x in zip(tipo, nums)],
        "pais_nacionalidad": nat_lab,
        "ubigeo_hecho": _blank(C["ub_inei"][case].tolist(), rng, 0.03),
    }
    if not offenders:
        cols["finalidad_explotacion"] = _expl_labels(w, rng, persons, MP_EXPL, 0.03, "SIN DATO")
    cols["articulo"] = _offences(w, rng, persons)
    fd = FeedData(SPECS[fid], cols, persons)
    fd.figures = {"rows": n}
    if offenders:
        det = A["detained"][persons]
        other = ["NO DETENIDO", "COMPARECENCIA", "LIBRE"]
        cols["situacion"] = ["DETENIDO" if d else other[int(x * 3) % 3] for d, x in zip(det.tolist(), u[:, 1].tolist())]
        fd.figures["detained"] = int(det.sum())
    else:
        female = np.array([s == "F" for s in cols["sexo"]])
        atest = C["atestado"][w.la_pampa_case]
        fd.figures.update(women=int(female.sum()), men=int((~female).sum()), children=int(child.sum()),
                          unknown_age=int((~known).sum()),
                          la_pampa=int(sum(1 for c in case.tolist() if c == w.la_pampa_case)),
                          la_pampa_citing=int(sum(1 for c, a in zip(case.tolist(), cols["nro_atestado_policial"])
                                                  if c == w.la_pampa_case and a is not None)))
        fd.victim_nat = nat
    return fd


def _mp_aliases(w: World, rng, persons) -> list:
    """SISTRA's list of other names: the nickname, and the name given to the police at arrest."""
    out = []
    for nick, p in zip(_nicknames(w, rng, persons, 0.6, 0.0), persons.tolist()):
        given = false_name(w, p)
        names = ([nick] if nick else []) + ([" ".join(x for x in given if x)] if given else [])
        out.append(names or None)
    return out


def build_mimp(w: World, seed: int) -> FeedData:
    rng = rng_for(seed, "mimp_child_victims")
    A, C = w.arrays, w.cases
    persons, ev = _rows(w, rng, A["in_mimp"], A["dup_mimp"], lambda p: _cap(A["d0"][p] + rng.integers(0, 21, len(p))))
    n = len(persons)
    case = A["case"][persons]
    (by, bm, bd, has_bd), ages, child, known = _ages(w, rng, persons, ev, 0.85)
    names = _names(w, rng, persons, var.NameStyle(strip=0.5, typo=0.05, no_maternal=0.05, short_given=0.3,
                                                  title_case=True))
    dt, nums = _documents(w, rng, persons, p_missing=0.2, p_check=0.03)
    nums = [s if t == 0 else None for t, s in zip(dt.tolist(), nums)]
    nat, nat_lab = _nat(w, rng, persons, NAT_DEMONYM, 0.02)
    cite = [a if (pol and p) else "" for a, pol, p in
            zip(C["atestado"][case].tolist(), C["police"][case].tolist(), A["in_pnp"][persons].tolist())]
    u = rng.random(n)
    cols = {
        "NRO_ATESTADO_REFERENCIA": _refs(cite, rng, 0.88),
        "FECHA_INGRESO": fmt_dates(*ymd(ev), "%d-%m-%Y"),
        "SERVICIO": [("CAR " if x < 0.3 else "UPE ") + d.title() for d, x in zip(C["dept_name"][case].tolist(), u.tolist())],
        "NOMBRES": [g for g, _, _ in names],
        "APELLIDOS": [_surnames(p, m) for _, p, m in names],
        "SEXO": ["2" if f else "1" for f in A["female"][persons].tolist()],
        "FECHA_NAC": fmt_dates(by, bm, bd, "%d-%m-%Y", has_bd),
        "EDAD": ages,
        "DNI": nums,
        "NACIONALIDAD": nat_lab,
        "UBIGEO": _blank(C["ub_reniec"][case].tolist(), rng, 0.03),
        "TIPO_CASO": _expl_labels(w, rng, persons, MIMP_EXPL, 0.0, "OTRO"),
    }
    # drawn last so the columns above stay as they were: some case files give only the province
    # (RENIEC "140100"), and where the child comes from (PROCEDENCIA, often not where it was exploited)
    u2 = rng.random((n, 2))
    elsewhere = C["ub_reniec"][rng.integers(0, len(C["ub_reniec"]), n)]
    cols["UBIGEO"] = [u[:4] + "00" if u and x < 0.06 else u for u, x in zip(cols["UBIGEO"], u2[:, 0].tolist())]
    cols["PROCEDENCIA"] = [home if x < 0.55 else (other if x < 0.8 else (other[:4] + "00" if x < 0.9 else None))
                           for home, other, x in zip(C["ub_reniec"][case].tolist(), elsewhere.tolist(), u2[:, 1].tolist())]
    fd = FeedData(SPECS["mimp_child_victims"], cols, persons)
    girls = sum(1 for s in cols["SEXO"] if s == "2")
    fd.figures = {"rows": n, "girls": girls, "boys": n - girls, "children": int(child.sum()),
                  "unknown_age": int((~known).sum())}
    fd.victim_nat = nat
    return fd


def build_sunafil(w: World, seed: int) -> FeedData:
    rng = rng_for(seed, "sunafil_findings")
    A, C = w.arrays, w.cases
    persons, ev = _rows(w, rng, A["in_sunafil"], np.zeros(w.n, bool), lambda p: A["d0"][p])
    n = len(persons)
    case = A["case"][persons]
    _, ages, child, known = _ages(w, rng, persons, ev, 0.0)
    names = _names(w, rng, persons, var.NameStyle(strip=0.6, typo=0.05, no_maternal=0.1, short_given=0.2))
    dt, nums = _documents(w, rng, persons, p_missing=0.1, p_check=0.0, cedula_style=False)
    # Excel ate the leading zeros of the type code and of the number
    tipo = [None if t < 0 else str(int(DOC_CODES[t])) for t in dt.tolist()]
    nums = [None if s is None else (s.lstrip("0") if s.isdigit() else s) for s in nums]
    nat, nat_lab = _nat(w, rng, persons, NAT_TITLE, 0.05)
    ub = [str(int(u)) for u in C["ub_inei"][case].tolist()]
    u = rng.random(n)
    orders = rng.integers(1000, 99999, n)
    cols = {
        "ORDEN_INSPECCION": [f"{o}-2018-SUNAFIL/IR-{d[:3]}" for o, d in zip(orders.tolist(), C["dept_name"][case].tolist())],
        "FECHA_INSPECCION": fmt_dates(*ymd(ev), "%d/%m/%Y"),
        "INTENDENCIA": [f"INTENDENCIA REGIONAL DE {d}" for d in C["dept_name"][case].tolist()],
        "NOMBRES_APELLIDOS": [f"{g} {_surnames(p, m)}" for g, p, m in names],
        "SEXO": ["M" if f else "H" for f in A["female"][persons].tolist()],
        "EDAD": ages,
        "TIPO_DOCUMENTO": tipo,
        "NRO_DOCUMENTO": nums,
        "NACIONALIDAD": nat_lab,
        "UBIGEO": ub,
        "SECTOR": ["TRABAJO DOMESTICO" if e == 2 else ["AGRICULTURA", "MINERIA", "TEXTIL", "OTRO"][int(x * 4) % 4]
                   for e, x in zip(A["expl"][persons].tolist(), u.tolist())],
        "DERIVADO_PNP": ["SI" if p else "NO" for p in A["in_pnp"][persons].tolist()],
    }
    fd = FeedData(SPECS["sunafil_findings"], cols, persons)
    fd.figures = {"rows": n, "domestic_work": sum(1 for s in cols["SECTOR"] if s == "TRABAJO DOMESTICO"),
                  "children": int(child.sum())}
    fd.victim_nat = nat
    return fd


def build_pj(w: World, seed: int) -> FeedData:
    rng = rng_for(seed, "pj_convictions")
    A, C = w.arrays, w.cases

    def sentence(p):
        d0 = A["d0"][p]
        old = C["old"][A["case"][p]]
        late = np.minimum(d0 + rng.integers(20, 300, len(p)), YEAR_END)
        return np.where(old, np.datetime64("2018-01-02") + rng.integers(0, 360, len(p)), late)

    persons, ev = _rows(w, rng, A["in_pj"], np.zeros(w.n, bool), sentence)
    n = len(persons)
    case = A["case"][persons]
    _, ages, child, known = _ages(w, rng, persons, ev, 0.0)
    names = _names(w, rng, persons, var.NameStyle(strip=0.7, typo=0.03, no_maternal=0.04, short_given=0.15))
    dt, nums = _documents(w, rng, persons, p_missing=0.05, p_check=0.0)
    nums = [s if t == 0 else None for t, s in zip(dt.tolist(), nums)]
    u = rng.random(n)
    court = rng.integers(1, 6, n)
    cols = {
        "EXPEDIENTE": [f"{i:05d}-{y}-0-{ub[:4]}-JR-PE-{c:02d}" for i, y, ub, c in
                       zip(rng.integers(1, 9999, n).tolist(),
                           (C["d0"][case].astype("datetime64[Y]").astype(int) + 1970).tolist(),
                           C["ub_inei"][case].tolist(), court.tolist())],
        "CARPETA_FISCAL": _refs(C["carpeta"][case].tolist(), rng, 0.95),
        "DISTRITO_JUDICIAL": C["dept_name"][case].tolist(),
        "FECHA_SENTENCIA": fmt_dates(*ymd(ev), "%Y-%m-%d"),
        "SENTENCIADO": [f"{_surnames(p, m)}, {g}" for g, p, m in names],
        "SEXO": ["F" if f else "M" for f in A["female"][persons].tolist()],
        "EDAD": ages,
        "DNI": nums,
        "DELITO": _offences(w, rng, persons),
    }
    # the court system types 00000000 when it has no DNI for the convicted person (drawn last)
    cols["DNI"] = [("00000000" if x < 0.5 else None) if d is None else d
                   for d, x in zip(cols["DNI"], rng.random(n).tolist())]
    fd = FeedData(SPECS["pj_convictions"], cols, persons)
    fd.figures = {"rows": n}
    return fd


BUILDERS = {
    "pnp_victims": lambda w, s: build_pnp(w, s, False),
    "pnp_detainees": lambda w, s: build_pnp(w, s, True),
    "mp_victims": lambda w, s: build_mp(w, s, False),
    "mp_investigated": lambda w, s: build_mp(w, s, True),
    "mimp_child_victims": build_mimp,
    "sunafil_findings": build_sunafil,
    "pj_convictions": build_pj,
}
