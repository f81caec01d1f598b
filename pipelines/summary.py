"""The short run summary printed by ``concilia run``: counts only, never a source value.

In the active language (``pipelines.i18n``): headings through the catalog, numbers in its format.
"""

from __future__ import annotations

from pipelines.i18n import _, number
from pipelines.report.terms import role_text


def render(manifest: dict, run_dir: str, seconds: float) -> str:
    lines = [_("Concilia run %(run_id)s  (%(seconds)s s)") % {"run_id": manifest["run_id"], "seconds": number(seconds, 1)},
             _("  published: %(path)s") % {"path": run_dir}, ""]
    lines += _table((_("feed"), _("read"), _("harmonised"), _("quarantined")), (22, 8, 12, 13),
                    [(feed_id, feed["rows_read"], feed["rows_harmonised"], feed["rows_quarantined"])
                     for feed_id, feed in manifest["feeds"].items()])
    if manifest.get("files_rejected"):
        lines.append(_("  files rejected whole: %(n)s (see quarantine/)") % {"n": number(manifest["files_rejected"])})
    figures = manifest["figures"]
    lines.append("")
    lines += _table((_("agency"), _("victims"), _("children"), _("adults"), _("offenders")), (10, 9, 10, 8, 11),
                    [(agency, f.get("victims", 0), f.get("victims_by_child_adult", {}).get("CHILD", 0),
                      f.get("victims_by_child_adult", {}).get("ADULT", 0), f.get("offenders", 0))
                     for agency, f in figures["per_agency"].items()])
    lines.append("")
    for role, u in figures["reconciled_unique"].items():
        records = sum(f.get(role, 0) for f in figures["per_agency"].values())
        lines.append(_("  reconciled unique %(role)s: %(persons)s persons from %(records)s records") % {
            "role": role_text(role, "noun"), "persons": number(u["persons"]), "records": number(records)})
        for combo, count in list(u["by_agency_combination"].items())[:8]:
            lines.append(f"      {combo:<28}{number(count):>7}")
    lines += _mse_lines(manifest)
    funnel = figures.get("offender_funnel") or {}
    if funnel.get("persons_at_stage"):
        at, reach = funnel["persons_at_stage"], funnel["persons_reaching"]
        lines.append(_("  offenders through the justice system (distinct persons):"))
        lines.append("      " + "; ".join(f"{_stage(stage)} {number(n)}" for stage, n in at.items()))
        if "ARRESTED->CONVICTED" in reach:
            lines.append(_("      of those arrested, convicted: %(n)s") % {"n": number(reach["ARRESTED->CONVICTED"])})
    report = [f["path"] for f in manifest.get("outputs", {}).get("reports", {}).get("files", [])
              if f["path"].endswith("reports/index.html")]
    if report:  # last, so the steward finds it at the bottom of the terminal
        lines += ["", _("  steward's report: %(path)s") % {"path": f"{run_dir.rstrip('/')}/{report[0]}"}]
    return "\n".join(lines)


def _table(head: tuple[str, ...], widths: tuple[int, ...], rows: list[tuple]) -> list[str]:
    """A name column and right-aligned number columns, each at least as wide as its (translated) heading."""
    widths = tuple(max(w, len(h) + 1) for w, h in zip(widths, head))
    line = "  {:<%d}" % widths[0] + "".join("{:>%d}" % w for w in widths[1:])
    return [line.format(*head)] + [line.format(name, *(number(n) for n in figures)) for name, *figures in rows]


def _stage(code: str) -> str:
    from pipelines.codelists import load

    return (load("justice_stages").label(code) or code).lower()


def _mse_lines(manifest: dict) -> list[str]:
    """Seen by each agency, seen by any agency, and the multiple systems estimate of the total."""
    from pipelines.codelists import load

    order = {a: i for i, a in enumerate(load("agencies").codes_in_order)}
    lines = []
    for role, est in (manifest.get("mse") or {}).items():
        combos = manifest["figures"]["reconciled_unique"].get(role, {}).get("by_agency_combination", {})
        seen: dict[str, int] = {}
        for combo, n in combos.items():
            for agency in combo.split("+"):
                seen[agency] = seen.get(agency, 0) + n
        lines += ["", _("  %(role)s: seen by each agency, by any agency, and estimated in total (MSE)") % {"role": role_text(role, "noun")},
                  _("      seen by %(agencies)s") % {"agencies": ", ".join(
                      f"{a} {number(n)}" for a, n in sorted(seen.items(), key=lambda kv: order.get(kv[0], 99)))},
                  _("      seen by any agency (unique): %(n)s") % {"n": number(sum(combos.values()))}]
        if "refused" in est:
            lines.append(_("      estimated total: no estimate (%(reason)s)") % {"reason": est["refused"]})
            continue
        lower, upper = (_("not found") if est.get(k) is None else number(est[k]) for k in ("lower", "upper"))
        lines.append(_("      estimated total: %(estimate)s (95%% interval %(lower)s to %(upper)s)") % {
            "estimate": number(est["estimate"]), "lower": lower, "upper": upper})
        averaged = est.get("method") == "model_average"  # no single model: the heaviest one is shown
        sampled = est.get("interval_method") == "posterior quantiles"  # latent classes: no log-linear terms
        figures = {"model": "latent_class" if sampled else " + ".join([_("main effects"), *est.get("model", [])]),
                   "lists": ", ".join(est.get("lists", [])), "method": est["method"],
                   "interval": est.get("interval_method")}
        lines.append((_("      heaviest model of the average: %(model)s on lists %(lists)s (%(method)s, "
                        "model-averaged %(interval)s interval)") if averaged else
                      _("      model: %(model)s on lists %(lists)s (%(method)s, %(interval)s interval)")) % figures)
        lines += _mse_rests_on_lines(est)
    return lines + [""] if lines else lines


def _fmt(x) -> str:
    return _("not found") if x is None else number(x)


def _mse_rests_on_lines(est: dict) -> list[str]:
    """The stratified estimate, the linkage band and the other method (docs/mse.md)."""
    lines = []
    st = est.get("stratified") or {}
    if st.get("estimate") is not None:
        lines.append(_("      stratified (%(stratum)s): %(estimate)s (95%% interval %(lower)s to %(upper)s)") % {
            "stratum": st.get("stratum"), "estimate": _fmt(st["estimate"]), "lower": _fmt(st.get("lower")),
            "upper": _fmt(st.get("upper"))})
    if est.get("linkage_lower") is not None:
        lines.append(_("      linkage band: %(lower)s to %(upper)s (%(pairs)s uncertain pairs unlinked / linked)") % {
            "lower": _fmt(est["linkage_lower"]), "upper": _fmt(est["linkage_upper"]), "pairs": est.get("uncertain_pairs")})
    if est.get("comparison_estimate") is not None:
        lines.append(_("      %(method)s: %(estimate)s (interval %(lower)s to %(upper)s)") % {
            "method": est["comparison_method"], "estimate": _fmt(est["comparison_estimate"]),
            "lower": _fmt(est.get("comparison_lower")), "upper": _fmt(est.get("comparison_upper"))}
            + (_("  WARNING: the methods disagree beyond their intervals") if est.get("methods_disagree") else ""))
    return lines
