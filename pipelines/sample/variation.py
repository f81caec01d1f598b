"""How an agency garbles a person when it writes them down.

Each function takes the canonical value and pre-drawn uniforms (numpy, one row per record) so the
per-record Python work is a few string operations; all randomness comes from the caller's stream.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .names import ADD_ACCENT

_STRIP = str.maketrans("ÁÉÍÓÚÜÝáéíóúüý", "AEIOUUYaeiouuy")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"


def strip_accents(s: str) -> str:
    return s.translate(_STRIP)


@dataclass(frozen=True)
class NameStyle:
    strip: float = 0.8        # accents dropped (typed without them)
    add: float = 0.03         # accent added to a name usually written without
    typo: float = 0.04        # one edit in one name part
    no_maternal: float = 0.06
    short_given: float = 0.25  # compound given names shortened to the first
    swap_surnames: float = 0.02
    title_case: bool = False


N_NAME_U = 9


def typo(s: str, u_op: float, u_pos: float, u_ch: float) -> str:
    """One edit (substitution, deletion, insertion or transposition) on a letter of s."""
    n = len(s)
    if n < 3:
        return s
    pos = min(int(u_pos * n), n - 1)
    if s[pos] == " ":
        pos = pos - 1 if pos > 0 else pos + 1
    op = int(u_op * 4)
    ch = LETTERS[int(u_ch * 26) % 26]
    if op == 1 and n > 4 and (pos == 0 or s[pos - 1] != " " or pos == n - 1 or s[pos + 1] != " "):
        return s[:pos] + s[pos + 1:]
    if op == 2:
        return s[:pos] + ch + s[pos:]
    if op == 3 and pos < n - 1 and s[pos + 1] != " " and s[pos] != s[pos + 1]:
        return s[:pos] + s[pos + 1] + s[pos] + s[pos + 2:]
    if ch == s[pos]:
        ch = LETTERS[(LETTERS.find(ch) + 1) % 26]
    return s[:pos] + ch + s[pos + 1:]


def garble_name(given: list[str], pat: str, mat: str, u: np.ndarray, st: NameStyle) -> tuple[str, str, str]:
    """Return (given names, paternal, maternal) as one agency writes them. u: N_NAME_U uniforms."""
    if len(given) > 1 and u[0] < st.short_given:
        given = given[:1]
    g = " ".join(given)
    if mat and u[1] < st.no_maternal:
        mat = ""
    if mat and u[2] < st.swap_surnames:
        pat, mat = mat, pat
    if u[3] < st.typo:
        part = int(u[4] * 3)
        if part == 0:
            g = typo(g, u[5], u[6], u[7])
        elif part == 1 or not mat:
            pat = typo(pat, u[5], u[6], u[7])
        else:
            mat = typo(mat, u[5], u[6], u[7])
    if u[8] < st.strip:
        g, pat, mat = strip_accents(g), strip_accents(pat), strip_accents(mat)
    elif u[8] > 1 - st.add:
        g = " ".join(ADD_ACCENT.get(x, x) for x in g.split(" "))
        pat = ADD_ACCENT.get(pat, pat)
        mat = ADD_ACCENT.get(mat, mat)
    if st.title_case:
        g, pat, mat = g.title(), pat.title(), mat.title()
    return g, pat, mat


def digit_typo(s: str, u_pos: float, u_d: float) -> str:
    """Change one digit of a document number."""
    pos = [i for i, c in enumerate(s) if c.isdigit()]
    if not pos:
        return s
    i = pos[min(int(u_pos * len(pos)), len(pos) - 1)]
    d = DIGITS[int(u_d * 9) % 9]
    if d >= s[i]:
        d = DIGITS[(int(d) + 1) % 10]
    return s[:i] + d + s[i + 1:]


def dni_check_chars(dni: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised DNI/CUI check character (digit form, letter form) as in stdnum.pe.cui."""
    digits = (dni[:, None] // (10 ** np.arange(7, -1, -1))) % 10
    c = (digits * np.array([3, 2, 7, 6, 5, 4, 3, 2])).sum(axis=1) % 11
    return np.array(list("65432110987"))[c], np.array(list("KJIHGFEDCBA"))[c]


def venezuelan_cedula(num: str, u: float) -> str:
    """Venezuelan cédula as written: V-12.345.678, V12345678 or plain digits."""
    if not num.isdigit():
        return num
    if u < 0.4:
        n = int(num)
        return "V-" + f"{n:,}".replace(",", ".")
    if u < 0.55:
        return "V" + num
    return num


def reference_variant(ref: str, u: float) -> str:
    """A copy of a police report / case file number as another agency writes it."""
    if not ref:
        return ref
    if u < 0.60:
        return ref
    if u < 0.75:
        return "N° " + ref
    if u < 0.82:
        return "N°" + ref
    if u < 0.94:
        return ref.replace("-", " - ", 2)
    return ref.lower()


def offence_variant(article: str, u: float) -> str:
    """'153-A', 'ART. 153-A', 'Art. 153 A', 'ART 153-A'."""
    if u < 0.40:
        return article
    if u < 0.70:
        return "ART. " + article
    if u < 0.88:
        return "Art. " + article.replace("-", " ")
    return "ART " + article
