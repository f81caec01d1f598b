"""The short run summary printed by ``concilia run``: counts only, never a source value."""

from __future__ import annotations


def render(manifest: dict, run_dir: str, seconds: float) -> str:
    lines = [f"Concilia run {manifest['run_id']}  ({seconds:.1f} s)", f"  published: {run_dir}", ""]
    lines.append(f"  {'feed':<22}{'read':>8}{'harmonised':>12}{'quarantined':>13}")
    for feed_id, feed in manifest["feeds"].items():
        lines.append(f"  {feed_id:<22}{feed['rows_read']:>8}{feed['rows_harmonised']:>12}{feed['rows_quarantined']:>13}")
    if manifest.get("files_rejected"):
        lines.append(f"  files rejected whole: {manifest['files_rejected']} (see quarantine/)")
    figures = manifest["figures"]
    lines += ["", f"  {'agency':<10}{'victims':>9}{'children':>10}{'adults':>8}{'offenders':>11}"]
    for agency, f in figures["per_agency"].items():
        ca = f.get("victims_by_child_adult", {})
        lines.append(
            f"  {agency:<10}{f.get('victims', 0):>9}{ca.get('CHILD', 0):>10}{ca.get('ADULT', 0):>8}{f.get('offenders', 0):>11}"
        )
    lines.append("")
    for role, u in figures["reconciled_unique"].items():
        records = sum(f.get(role, 0) for f in figures["per_agency"].values())
        lines.append(f"  reconciled unique {role}: {u['persons']} persons from {records} records")
        for combo, count in list(u["by_agency_combination"].items())[:8]:
            lines.append(f"      {combo:<28}{count:>7}")
    lines += _mse_lines(manifest)
    funnel = figures.get("offender_funnel") or {}
    if funnel.get("persons_at_stage"):
        at, reach = funnel["persons_at_stage"], funnel["persons_reaching"]
        lines.append("  offenders through the justice system (distinct persons):")
        lines.append("      " + ", ".join(f"{stage.lower()} {n}" for stage, n in at.items()))
        if "ARRESTED->CONVICTED" in reach:
            lines.append(f"      of those arrested, convicted: {reach['ARRESTED->CONVICTED']}")
    report = [f["path"] for f in manifest.get("outputs", {}).get("reports", {}).get("files", [])
              if f["path"].endswith("reports/index.html")]
    if report:  # last, so the steward finds it at the bottom of the terminal
        lines += ["", f"  steward's report: {run_dir.rstrip('/')}/{report[0]}"]
    return "\n".join(lines)


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
        lines += ["", f"  {role}: seen by each agency, by any agency, and estimated in total (MSE)",
                  "      seen by " + ", ".join(f"{a} {n}" for a, n in sorted(seen.items(), key=lambda kv: order.get(kv[0], 99))),
                  f"      seen by any agency (unique): {sum(combos.values())}"]
        if "refused" in est:
            lines.append(f"      estimated total: no estimate ({est['refused']})")
            continue
        lower, upper = (("not found" if est.get(k) is None else f"{est[k]:,.0f}") for k in ("lower", "upper"))
        lines.append(f"      estimated total: {est['estimate']:,.0f} (95% interval {lower} to {upper})")
        averaged = est.get("method") == "model_average"  # no single model: the heaviest one is shown
        lines.append(f"      {'heaviest model of the average' if averaged else 'model'}: "
                     f"{' + '.join(['main effects', *est.get('model', [])])} on lists "
                     f"{', '.join(est.get('lists', []))} ({est['method']}, "
                     f"{'model-averaged ' if averaged else ''}{est.get('interval_method')} interval)")
        lines += _mse_rests_on_lines(est)
    return lines + [""] if lines else lines


def _fmt(x) -> str:
    return "not found" if x is None else f"{x:,.0f}"


def _mse_rests_on_lines(est: dict) -> list[str]:
    """The stratified estimate, the linkage band and the other method (docs/mse.md)."""
    lines = []
    st = est.get("stratified") or {}
    if st.get("estimate") is not None:
        lines.append(f"      stratified ({st.get('stratum')}): {_fmt(st['estimate'])} "
                     f"(95% interval {_fmt(st.get('lower'))} to {_fmt(st.get('upper'))})")
    if est.get("linkage_lower") is not None:
        lines.append(f"      linkage band: {_fmt(est['linkage_lower'])} to {_fmt(est['linkage_upper'])} "
                     f"({est.get('uncertain_pairs')} uncertain pairs unlinked / linked)")
    if est.get("comparison_estimate") is not None:
        lines.append(f"      {est['comparison_method']}: {_fmt(est['comparison_estimate'])} (interval "
                     f"{_fmt(est.get('comparison_lower'))} to {_fmt(est.get('comparison_upper'))})"
                     + ("  WARNING: the methods disagree beyond their intervals" if est.get("methods_disagree") else ""))
    return lines
