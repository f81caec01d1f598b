"""Onboarding a new feed: ``concilia contract draft`` and ``concilia contract check``.

``draft FILE --agency A --role R`` sniffs how the file is written (format, encoding, delimiter,
header), profiles every column and every path inside nested JSON (fill rate, distinct values, what
the values look like: names, dates and their format, documents, UBIGEO and its list, ages, codes)
and writes a draft contract in which every code value that needs a lookup is listed, mapped to
null with a TODO. ``check CONTRACT [FILE...]`` validates a contract against the schema and, given
deliveries, reads and harmonises them in memory (no Beam, no outputs) to report unmapped columns,
unknown code values and what would be quarantined, and why.

Personal values never appear in the output: only the shapes of names, dates, documents and ids,
and the values of low-cardinality code columns that look like codes (short, few digits).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from pipelines.contracts import ContractError, contract_schema, load_contract, path_root
from pipelines.read import FileRejected, ParsedFile, parse_csv, parse_json, parse_jsonl, parse_xlsx

EXIT_OK, EXIT_USAGE, EXIT_INPUT, EXIT_FINDINGS = 0, 2, 3, 1
FORMAT_OF_SUFFIX = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                    ".json": "json", ".xlsx": "xlsx"}
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y", "%Y%m%d")
MOSTLY = 0.9           # share of the filled values a column's kind must fit
MAX_CODES = 40         # distinct values up to which a column may be a code (a lookup)
# SUNAT document types as agencies spell them
DOCUMENT_TYPE_WORDS = {"DNI": "01", "1": "01", "01": "01", "LE": "01", "CE": "04", "4": "04", "04": "04",
                       "CARNE EXTRANJERIA": "04", "CARNET DE EXTRANJERIA": "04", "RUC": "06", "6": "06", "06": "06",
                       "PAS": "07", "PASAPORTE": "07", "7": "07", "07": "07", "PTP": "23", "23": "23",
                       "CEDULA": "24", "24": "24", "CPP": "26", "26": "26", "SIN DOCUMENTO": None}
YES_NO = {"SI": True, "S": True, "NO": False, "N": False}
SEX_WORDS = {"F": "FEMALE", "FEMENINO": "FEMALE", "MUJER": "FEMALE", "M": None, "MASCULINO": "MALE", "HOMBRE": "MALE",
             "VARON": "MALE", "H": "MALE"}  # M is ambiguous (masculino / mujer): left for the steward


# ---------------------------------------------------------------------------------------------- sniffing


@dataclass
class Sniffed:
    format: str
    encoding: str
    delimiter: str = ","
    parsed: ParsedFile | None = None


def sniff(path: Path) -> Sniffed:
    data = path.read_bytes()
    fmt = FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        fmt = "jsonl" if data.lstrip()[:1] == b"{" else "json" if data.lstrip()[:1] == b"[" else "csv"
    if fmt == "xlsx":
        return Sniffed("xlsx", "utf-8", parsed=parse_xlsx(data))
    if data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    else:
        try:
            data.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "latin-1"  # Windows exports: every byte decodes, accents as cp1252/latin-1 write them
    if fmt == "jsonl":
        return Sniffed(fmt, encoding, parsed=parse_jsonl(data, encoding))
    if fmt == "json":
        return Sniffed(fmt, encoding, parsed=parse_json(data, encoding))
    head = data[:65536].decode(encoding, errors="replace")
    try:
        delimiter = csv.Sniffer().sniff(head.split("\n", 20)[0], delimiters=",;|\t").delimiter
    except csv.Error:
        delimiter = ","
    return Sniffed("csv", encoding, delimiter, parse_csv(data, encoding, delimiter))


# ---------------------------------------------------------------------------------------------- profiling


@dataclass
class Profile:
    column: str
    rows: int
    values: list[str] = field(repr=False, default_factory=list)
    filled_rows: int = 0
    kind: str = "text"
    detail: str = ""
    date_formats: list[str] = field(default_factory=list)
    ubigeo_lists: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)   # only for code columns, never personal values

    @property
    def distinct(self) -> int:
        return len(set(self.values))

    def describe(self) -> str:
        fill = f"{self.filled_rows / self.rows:.0%}" if self.rows else "-"
        text = f"{self.column}: {self.kind}; filled {fill}, {self.distinct} distinct"
        if self.detail:
            text += f"; {self.detail}"
        if self.codes:
            text += "; values " + ", ".join(self.codes)
        return text


def _leaves(value, prefix: str, out: dict[str, list]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _leaves(v, f"{prefix}.{k}", out)
    elif isinstance(value, list):
        for v in value:
            _leaves(v, prefix if prefix.endswith("[]") else prefix + "[]", out)
    elif value is not None and str(value).strip():
        out.setdefault(prefix, []).append(str(value).strip())


def columns_of(parsed: ParsedFile) -> tuple[dict[str, list[str]], Counter]:
    """(column or path into nested JSON -> its filled values in file order, rows holding each).
    A column whose every cell is nested JSON is left out: its paths stand for it."""
    out: dict[str, list[str]] = {h: [] for h in parsed.header}
    rows_with: Counter = Counter()
    nested: set[str] = set()
    for row in parsed.rows:
        seen: dict[str, list[str]] = {}
        for name, cell in zip(parsed.header, row):
            if cell is None or not str(cell).strip():
                continue
            cell = str(cell).strip()
            if cell[:1] in "[{":
                try:
                    _leaves(json.loads(cell), name, seen)
                    nested.add(name)
                    continue
                except json.JSONDecodeError:
                    pass
            seen.setdefault(name, []).append(cell)
        for name, values in seen.items():
            out.setdefault(name, []).extend(values)
            rows_with[name] += 1
    return {k: v for k, v in out.items() if v or k not in nested}, rows_with


def _share(values: list[str], test) -> float:
    return sum(1 for v in values if test(v)) / len(values) if values else 0.0


def _parses(fmt: str):
    def test(v: str) -> bool:
        try:
            datetime.strptime(v, fmt)
            return True
        except ValueError:
            return False
    return test


def _looks_like_code(value: str) -> bool:
    return len(value) <= 40 and sum(c.isdigit() for c in value) < 5


_NAME = re.compile(r"^[^\W\d_]+(?:[\s,.'-]+[^\W\d_]+)*$")
_DOC = re.compile(r"^[VE]?-?[0-9.\- ]{6,13}[0-9K]?$|^[A-Z]{0,3}[0-9]{6,12}$", re.IGNORECASE)


def _ubigeo_lists(values: list[str]) -> tuple[list[str], str]:
    from pipelines.harmonise.places import _places_of, _restore_zeros

    found = []
    for name in ("INEI", "RENIEC"):
        known = _places_of(name)
        share = _share(values, lambda v: v in known or _restore_zeros(v) in known)
        if share >= MOSTLY:
            found.append(name)
    def level(code: str) -> str:
        code = _restore_zeros(code)
        return "department" if len(code) == 2 or code.endswith("0000") else \
            "province" if len(code) == 4 or code.endswith("00") else "district"

    levels = Counter(level(v) for v in values)
    zeros = _share(values, lambda v: len(v) in (1, 3, 5))
    detail = "levels " + ", ".join(f"{k} {n}" for k, n in levels.most_common())
    if zeros:
        detail += f"; {zeros:.0%} lost a leading zero"
    return found, detail


DOCUMENT_HINTS = ("DNI", "DOC", "NUMERO", "NRO_DOC", "PASAPORTE", "CEDULA")
ALIAS_HINTS = ("ALIAS", "APODO", "CHAPA")  # other names an offender goes by
NAME_HINTS = ("NOMBRE", "APELLIDO", "SENTENCIADO", "AGRAVIAD", "IMPUTAD", "INVESTIGAD") + ALIAS_HINTS


def profile(name: str, values: list[str], rows: int, filled_rows: int, name_words: set[str]) -> Profile:
    p = Profile(name, rows, values, filled_rows)
    if not values:
        p.kind = "empty"
        return p
    if any(h in name.upper().rsplit(".", 1)[-1] for h in NAME_HINTS):
        p.kind = "name"
        p.detail = "surnames first, comma before the given names" if _share(values, lambda v: "," in v) >= MOSTLY \
            else f"{sum(len(v.split()) for v in values) / len(values):.1f} words on average"
        return p
    distinct = p.distinct
    p.date_formats = [f for f in DATE_FORMATS if _share(values, _parses(f)) >= MOSTLY]
    digits = _share(values, str.isdigit)
    if p.date_formats:
        p.kind, p.detail = "date", "format " + " or ".join(p.date_formats)
    elif digits >= MOSTLY and _share(values, lambda v: len(v) in (4, 5, 6)) >= MOSTLY and \
            _ubigeo_lists(values)[0]:
        p.ubigeo_lists, levels = _ubigeo_lists(values)
        p.kind, p.detail = "ubigeo", f"codes of {' or '.join(p.ubigeo_lists)}; {levels}"
    elif _share(values, lambda v: bool(_DOC.match(v))) >= MOSTLY and distinct >= max(5, len(values) // 2) and \
            (any(h in name.upper() for h in DOCUMENT_HINTS) or _share(values, lambda v: len(v) >= 7) >= MOSTLY):
        lengths = Counter(len(re.sub(r"\D", "", v)) for v in values)
        p.kind = "document number"
        p.detail = "digits " + ", ".join(f"{k}: {n}" for k, n in sorted(lengths.items()))
        if any(5 <= k <= 7 for k in lengths):  # DNI has 8, CE/PTP/CPP 9: shorter numbers lost zeros
            p.detail += "; some look like they lost zeros"
    elif digits >= MOSTLY and _share(values, lambda v: v.isdigit() and int(v) <= 110) >= MOSTLY and \
            max(len(v) for v in values) <= 3 and distinct > 5 and \
            ("EDAD" in name.upper() or distinct < len(values)):  # a short unique number is a row number
        p.kind = "age"
    elif distinct == len(values) == rows > 1:
        p.kind, p.detail = "identifier", "unique on every row"
    elif distinct <= MAX_CODES and distinct <= max(2, len(values) // 2):
        p.kind = "code"
        counts = Counter(values)
        p.codes = [v if _looks_like_code(v) and not set(v.upper().split()) & name_words else "(withheld)"
                   for v, _ in counts.most_common()]
    elif _share(values, lambda v: bool(_NAME.match(v))) >= MOSTLY:
        words = sum(len(v.replace(",", " ").split()) for v in values) / len(values)
        p.kind = "name"
        p.detail = f"{words:.1f} words on average" + ("; surnames first, comma before the given names"
                                                      if _share(values, lambda v: "," in v) >= MOSTLY else "")
    elif _share(values, lambda v: any(c.isdigit() for c in v) and bool(re.search(r"[-/ ]", v))) >= MOSTLY:
        p.kind = "reference"
    return p


# ---------------------------------------------------------------------------------------------- drafting


def _pick(profiles: list[Profile], kind: str, *words: str, exclude: tuple[str, ...] = ()) -> Profile | None:
    candidates = [p for p in profiles if p.kind == kind and not any(x in p.column.upper() for x in exclude)]
    for w in words:
        for p in candidates:
            if w in p.column.upper():
                return p
    return candidates[0] if candidates and not words else None


def _yaml_key(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _c(column: str) -> str:
    """A column for a flow mapping: quoted when it holds YAML indicators (a path's [] and the like)."""
    return _yaml_key(column) if re.search(r"[\[\]{},:#&*!|>'\"%@`]", column) else column


def draft_contract(path: Path, agency: str, role: str, feed: str | None = None) -> tuple[str, list[Profile], Sniffed]:
    sniffed = sniff(path)
    parsed = sniffed.parsed
    rows = parsed.row_count
    columns, rows_with = columns_of(parsed)
    # words of the name columns: a code value made of them is withheld, never printed
    name_words = {w.upper() for c, values in columns.items() if any(h in c.upper() for h in NAME_HINTS)
                  for v in values for w in v.replace(",", " ").split()}
    profiles = [profile(name, values, rows, rows_with[name], name_words) for name, values in columns.items()]
    used: set[str] = set()
    fields: list[str] = []
    lookups: list[str] = []

    def use(*columns: str) -> None:
        used.update(columns)

    record_id = _pick(profiles, "identifier", "ID", "REGISTRO", "CODIGO", "NRO") or _pick(profiles, "identifier")
    if record_id:
        use(record_id.column)
    event = _pick(profiles, "date", "HECHO", "INGRESO", "DETENCION", "SENTENCIA", "INSPECCION", "FECHA",
                  exclude=("NAC",))
    birth = _pick(profiles, "date", "NAC")
    for target, p in (("event_date", event), ("birth_date", birth)):
        if p:
            fields.append(f"  {target}: {{column: {_c(p.column)}, parse: date, formats: {json.dumps(p.date_formats[:1])}}}")
            use(p.column)
    names = [p for p in profiles if p.kind == "name" and p.column not in used]
    aliases = [p for p in names if any(h in p.column.upper().rsplit(".", 1)[-1] for h in ALIAS_HINTS)]
    names = [p for p in names if p not in aliases]
    upper = {p.column.upper(): p.column for p in names}
    paternal = next((c for u, c in upper.items() if "PATERNO" in u), None)
    maternal = next((c for u, c in upper.items() if "MATERNO" in u), None)
    given = next((c for u, c in upper.items() if "NOMBRE" in u and "APELLIDO" not in u), None)
    surnames = next((c for u, c in upper.items() if "APELLIDOS" in u and "NOMBRE" not in u), None)
    if given and paternal:
        fields.append(f"  name: {{parse: name, style: parts, given_names: {_c(given)}, paternal_surname: {_c(paternal)}"
                      + (f", maternal_surname: {_c(maternal)}}}" if maternal else "}"))
        use(given, paternal, *([maternal] if maternal else []))
    elif given and surnames:
        fields.append(f"  name: {{parse: name, style: given_and_surnames, given_names: {_c(given)}, surnames: {_c(surnames)}}}")
        use(given, surnames)
    elif names:
        full = names[0]
        style = "surnames_comma_given" if "comma" in full.detail else "given_then_surnames"
        fields.append(f"  name: {{parse: name, style: {style}, column: {_c(full.column)}}}  # check the order of the parts")
        use(full.column)
    if aliases and role == "offender":  # the model keeps aliases for offenders; a victim's are ignored
        fields.append(f"  aliases: {{parse: aliases, column: {_c(aliases[0].column)}}}  # a list, or one text separated by ; or |")
        use(aliases[0].column)
    number = next((p for p in profiles if p.kind == "document number" and p.column not in used), None)
    if number:
        doc_type = next((p for p in profiles if p.kind == "code" and "TIPO" in p.column.upper()
                         and path_root(p.column) == path_root(number.column)), None) or \
            next((p for p in profiles if p.kind == "code" and "DOC" in p.column.upper() and "TIPO" in p.column.upper()),
                 None)
        short = "lost zeros" in number.detail
        zeros = ", restore_leading_zeros: true" if short else ""
        note = "some numbers lost their leading zeros" if short else ""
        if doc_type:
            fields.append(f"  document: {{parse: document, type_column: {_c(doc_type.column)}, "
                          f"number_column: {_c(number.column)}, type_lookup: document_type{zeros}}}"
                          + (f"  # {note}" if note else ""))
            lookups.append(_lookup_block("document_type", doc_type, DOCUMENT_TYPE_WORDS, "SUNAT document type code"))
            use(doc_type.column)
        else:
            fields.append(f"  document: {{parse: document, number_column: {_c(number.column)}, type: \"01\"{zeros}}}"
                          "  # TODO: the type, if not every number is a DNI" + (f"; {note}" if note else ""))
        use(number.column)
    sex = next((p for p in profiles if p.kind == "code" and p.column.upper().split(".")[-1] in ("SEXO", "GENERO", "SEX")),
               None)
    if sex:
        fields.append(f"  sex: {{column: {_c(sex.column)}, lookup: sex}}")
        lookups.append(_lookup_block("sex", sex, SEX_WORDS, "FEMALE or MALE"))
        use(sex.column)
    age = _pick(profiles, "age", "EDAD")
    if age:
        fields.append(f"  age: {{column: {_c(age.column)}, parse: age}}")
        use(age.column)
    nationality = next((p for p in profiles if p.column not in used and
                        any(w in p.column.upper() for w in ("NACIONALIDAD", "PAIS"))), None)
    if nationality:
        fields.append(f"  nationality: {{column: {_c(nationality.column)}, parse: country}}")
        use(nationality.column)
    places = [p for p in profiles if p.kind == "ubigeo" and p.column not in used]
    for p in places:
        target = "place_of_origin" if any(w in p.column.upper() for w in ("PROCEDENCIA", "ORIGEN", "NACIMIENTO")) \
            else "ubigeo"
        if target == "ubigeo" and any("ubigeo:" in f for f in fields):
            continue
        lists = p.ubigeo_lists if len(p.ubigeo_lists) > 1 else p.ubigeo_lists[0]
        zeros = ", restore_leading_zeros: true" if "lost a leading zero" in p.detail else ""
        fields.append(f"  {target}: {{column: {_c(p.column)}, parse: ubigeo, list: {json.dumps(lists)}{zeros}}}"
                      + ("  # the list is ambiguous: keep the one the agency uses" if len(p.ubigeo_lists) > 1 else ""))
        use(p.column)
    case = next((p for p in profiles if p.kind in ("reference", "identifier") and p.column not in used
                 and any(w in p.column.upper() for w in ("CASO", "ATESTADO", "CARPETA", "EXPEDIENTE", "ORDEN"))), None)
    if case:
        fields.append(f"  case_ref: {{column: {_c(case.column)}}}")
        fields.append(f"  # police_report_ref / prosecutor_case_ref: {{column: {_c(case.column)}, parse: reference, "
                      "patterns: [...]} if it cites another agency's case")
        use(case.column)
    undecided = [p for p in profiles if p.column not in used and path_root(p.column) not in used | {""}]
    for p in undecided:
        if p.kind == "code":
            name = re.sub(r"\W+", "_", p.column.lower()).strip("_")
            yes_no = {c.upper() for c in p.codes} <= set(YES_NO)
            example = "referred_to_police" if yes_no else "exploitation_type"
            fields.append(f"  # TODO {_c(p.column)}: map to a model field (e.g. {example}: "
                          f"{{column: {_c(p.column)}, lookup: {name}}}) or list it in ignore_columns")
            lookups.append(_lookup_block(name, p, YES_NO if yes_no else {},
                                         "true or false" if yes_no else "codes of the field's code list"))
    contract = [
        f"feed: {feed or re.sub(r'[^a-z0-9]+', '_', f'{agency}_{path.stem}'.lower()).strip('_')}",
        f"agency: {agency}",
        f"title: {_yaml_key(agency + ' — TODO, what the feed is')}",
        f"role: {role}",
        'version: "0.1.0"',
        "source:",
        f"  files: {_yaml_key(path.parent.name + '/' + re.sub(r'[0-9]{4}', '*', path.name))}  # TODO: check the pattern",
        f"  format: {sniffed.format}",
        f"  encoding: {sniffed.encoding}",
        *([f"  delimiter: {_yaml_key(sniffed.delimiter)}"] if sniffed.format == "csv" else []),
        f"record_id: {_c(record_id.column) if record_id else 'TODO'}",
        "fields:",
        *fields,
    ]
    if lookups:
        contract += ["lookups:", *lookups]
    ignored = sorted({path_root(p.column) for p in undecided if p.kind != "code"} - used)
    if ignored:
        contract.append(f"ignore_columns: {json.dumps(ignored, ensure_ascii=False)}  # TODO: map or keep ignored")
    contract += ["assertions:", "  min_rows: 1"]
    return "\n".join(contract) + "\n", profiles, sniffed


def _lookup_block(name: str, p: Profile, known: dict, meaning: str) -> str:
    lines = [f"  {name}:  # {meaning}"]
    for value in p.codes:
        if value == "(withheld)":
            lines.append("    # a value that may be personal was withheld: add it by hand")
            continue
        target = known.get(value.upper())
        lines.append(f"    {_yaml_key(value)}: {'null' if target is None else json.dumps(target)}"
                     + ("  # TODO" if target is None else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- checking


def check_contract(contract_path: Path, files: list[Path]) -> tuple[list[str], bool]:
    """Lines of the report, and whether it found something the steward must act on."""
    from pipelines.harmonise.engine import harmonise
    from pipelines.read import read_delivery

    contract = load_contract(contract_path)
    lines = [f"{contract_path}: valid contract for feed {contract.feed} ({contract.role}, {len(contract.fields)} fields)"]
    todo = sorted(f"{name}.{key}" for name, table in contract.lookups.items() for key, value in table.items()
                  if value is None and "SIN" not in key.upper())
    if todo:
        lines.append(f"  lookup values still mapped to null (TODO or deliberate): {', '.join(todo)}")
    findings = False
    for path in files:
        result = read_delivery(contract, path.read_bytes(), path.name)
        stats = result.stats
        if stats["file_rejected"]:
            lines.append(f"{path}: the file would be rejected: {stats['file_rejected']['detail']}")
            findings = True
            continue
        outs = [harmonise(contract, chunk) for chunk in result.chunks]
        harmonised = sum(o.records.num_rows for o in outs)
        reasons: Counter = Counter()
        for table in (result.quarantined, *(o.quarantined for o in outs)):
            reasons.update(zip(table.column("reason_code").to_pylist(), table.column("field").to_pylist()))
        quarantined = sum(reasons.values())
        lines.append(f"{path}: {stats['rows_read']} rows read, {harmonised} would be harmonised, "
                     f"{quarantined} quarantined")
        if stats["missing_columns"]:
            lines.append("  columns the contract maps but the file lacks: " + ", ".join(stats["missing_columns"]))
        if stats["unmapped_columns"]:
            lines.append("  columns neither mapped nor ignored: " + ", ".join(stats["unmapped_columns"]))
        for (reason, fld), n in sorted(reasons.items(), key=lambda x: (-x[1], str(x[0]))):
            lines.append(f"  quarantined {n}: {reason}" + (f" ({fld})" if fld else ""))
        unmapped: dict[str, Counter] = {}
        warnings: Counter = Counter()
        for o in outs:
            for fld, values in o.unmapped_values.items():
                unmapped.setdefault(fld, Counter()).update(values)
            warnings.update(o.warnings)
        for fld, values in sorted(unmapped.items()):
            shown = [f"{v if _looks_like_code(v) else '(withheld)'} ({n})" for v, n in values.most_common(15)]
            lines.append(f"  {fld}: values no lookup or code list knows: " + ", ".join(shown))
        for (fld, reason), n in sorted(warnings.items()):
            lines.append(f"  kept despite required: warn {n}: {reason} ({fld})")
        findings |= bool(quarantined or unmapped or stats["missing_columns"] or stats["unmapped_columns"])
    return lines, findings


# ---------------------------------------------------------------------------------------------- command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit status 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="concilia contract", description="Draft and check feed contracts.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    d = sub.add_parser("draft", help="profile a delivered file and write a draft contract")
    d.add_argument("file", type=Path)
    d.add_argument("--agency", required=True)
    d.add_argument("--role", required=True, choices=contract_schema()["properties"]["role"]["enum"])
    d.add_argument("--feed", default=None, help="feed id (default: agency and file name)")
    d.add_argument("--out", type=Path, default=None, help="write the draft here (default: print it)")
    c = sub.add_parser("check", help="validate a contract and, given deliveries, report what they would give")
    c.add_argument("contract", type=Path)
    c.add_argument("files", type=Path, nargs="*")
    return p


def contract_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.action == "draft":
            text, profiles, sniffed = draft_contract(args.file, args.agency, args.role, args.feed)
            report = [f"{args.file}: {sniffed.format}, {sniffed.encoding}"
                      + (f", delimiter {sniffed.delimiter!r}" if sniffed.format == "csv" else "")
                      + f", {sniffed.parsed.row_count} rows"] + ["  " + p.describe() for p in profiles]
            print("\n".join(report), file=sys.stderr, flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(text, encoding="utf-8")
                print(f"draft written to {args.out}; fill the TODOs, then: concilia contract check {args.out} "
                      f"{args.file}", file=sys.stderr)
            else:
                sys.stdout.write(text)
            return EXIT_OK
        if args.action == "check":
            lines, findings = check_contract(args.contract, args.files)
            print("\n".join(lines))
            return EXIT_FINDINGS if findings else EXIT_OK
    except ContractError as exc:
        print(f"concilia contract: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except (OSError, FileRejected, yaml.YAMLError) as exc:
        print(f"concilia contract: {getattr(exc, 'detail', None) or exc.__class__.__name__}", file=sys.stderr)
        return EXIT_INPUT
    build_parser().print_help()
    return EXIT_USAGE
