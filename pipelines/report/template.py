"""The page template of the steward's report (Jinja2, autoescaped).

Kept as a Python string so the wheel that Dataflow and the Flex Template image install carries it
without package-data rules. Inline CSS only, no script: the page must read the same with
JavaScript off, on paper and in a narrow window.
"""

PAGE = r'''<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Steward's report · run {{ run.run_id }} · Concilia</title>
<style>
:root { --ink:#1b1b1b; --muted:#5c5c5c; --line:#d4d4d4; --band:#f4f6f8; --accent:#2b5c8a; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--ink);
       line-height: 1.45; margin: 0 auto; max-width: 68rem; padding: 1rem 1.25rem 3rem; background: #fff; }
h1 { font-size: 1.6rem; margin: .5rem 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2.25rem 0 .5rem; padding-top: .5rem; border-top: 2px solid var(--accent); }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .4rem; }
p, li { max-width: 48rem; }
.sub { color: var(--muted); margin: 0; }
.meta { display: grid; grid-template-columns: repeat(auto-fit, minmax(13rem, 1fr)); gap: .25rem 1.5rem; margin: 1rem 0;
        padding: 0; }
.meta div { margin: 0; } .meta dt { font-size: .8rem; color: var(--muted); } .meta dd { margin: 0; overflow-wrap: anywhere; }
.glance { display: grid; grid-template-columns: repeat(auto-fit, minmax(10.5rem, 1fr)); gap: .6rem; margin: 1rem 0; padding: 0; }
.glance div { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .7rem; background: var(--band); }
.glance dt { font-size: .82rem; color: var(--muted); } .glance dd { margin: 0; font-size: 1.35rem; font-weight: 650; }
.glance dd small { font-size: .8rem; font-weight: 400; color: var(--muted); display: block; }
.actions li { list-style: none; border: 1px solid var(--line); border-radius: 6px; padding: .5rem .7rem; background: var(--band); }
.actions dl { margin: 0; } .actions a { display: block; color: inherit; text-decoration: none; } .actions .blocking { border-left: 4px solid #b3261e; }
.actions .action { border-left: 4px solid #b26a00; } .actions .done { opacity: .7; }
nav ol { columns: 2 14rem; padding-left: 1.2rem; margin: .5rem 0; }
a { color: #1d4f7c; }
.table-wrap { overflow-x: auto; margin: .5rem 0 1rem; max-width: 100%; }
table { border-collapse: collapse; font-size: .92rem; min-width: 16rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; caption-side: top; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .6rem; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); font-size: .85rem; }
tbody tr:nth-child(even) { background: var(--band); }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td, tr.total th { font-weight: 650; border-top: 2px solid var(--ink); }
.es { color: var(--muted); font-size: .85em; display: block; font-weight: 400; }
.id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .85em; overflow-wrap: anywhere; }
.figure { margin: .75rem 0 1.25rem; overflow-x: auto; }
svg.chart { width: 100%; height: auto; display: block; }
.na { border-left: 4px solid #8a8a8a; background: #f3f3f3; padding: .5rem .8rem; margin: .5rem 0; }
.na strong { display: block; }
.na.blocked { border-left-color: #8a1c1c; background: #fdecec; }
.status { display: inline-block; padding: 0 .45rem; border-radius: 3px; font-weight: 650; font-size: .85rem;
          border: 1px solid currentColor; white-space: nowrap; }
.status.pass { color: #14532d; background: #e7f5ec; } .status.warn { color: #7a4100; background: #fff3e0; }
.status.fail { color: #8a1c1c; background: #fdecec; }
.status.unknown, .status.na, .status.skipped { color: #444; background: #f0f0f0; }
.delta-up { color: #14532d; } .delta-down { color: #8a1c1c; }
.chips span { display: inline-block; border: 1px solid var(--line); border-radius: 3px; padding: 0 .3rem; margin: 0 .2rem .2rem 0;
              font-size: .82rem; }
.chips .agree { background: #e7f5ec; } .chips .disagree { background: #fdecec; } .chips .unknown { background: #f0f0f0; }
th.check { min-width: 14rem; max-width: 26rem; } td.obs { min-width: 8rem; max-width: 18rem; overflow-wrap: anywhere; font-size: .85rem; }
footer { margin-top: 3rem; font-size: .85rem; color: var(--muted); border-top: 1px solid var(--line); padding-top: .75rem; }
@media (max-width: 40rem) { body { padding: .75rem; } h1 { font-size: 1.3rem; } table { font-size: .85rem; }
  th, td { padding: .25rem .4rem; } }
@media print { nav, .skip { display: none; } body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid; } .figure, table, .na { break-inside: avoid; } .table-wrap, .figure { overflow: visible; }
  a { color: inherit; text-decoration: none; } }
</style>
</head>
<body>
{%- macro na(section) -%}
<div class="na" role="note"><strong>Not available in this run</strong>{{ section.reason }}.</div>
{%- endmacro -%}
{%- macro status(s) -%}<span class="status {{ s }}">{{ {"pass": "✓ pass", "warn": "! warning", "fail": "✗ fail"}.get(s, s) }}</span>{%- endmacro -%}
{%- macro delta(d) -%}{% if d is none %}—{% elif d > 0 %}<span class="delta-up">+{{ d | n }}</span>{% elif d < 0 %}<span class="delta-down">−{{ (-d) | n }}</span>{% else %}0{% endif %}{%- endmacro -%}
<header>
{% if run.status == "blocked" %}<div class="na blocked" role="alert"><strong>This run was not published</strong>A blocking validation failed
(see <a href="#validation">Feeds and validation</a>); <code>current.json</code> still names the previous published run.</div>{% endif %}
{% if run.demo %}<p class="na" role="note"><strong>Demo run</strong>Pseudonyms were made with the public demo key: sample data only, not for real data.</p>{% endif %}
<p class="sub">Concilia · steward's report <span lang="es">(informe para la revisión de datos)</span></p>
<h1>Run {{ run.run_id }}</h1>
<dl class="meta">
  <div><dt>Started</dt><dd>{{ run.started | when }}</dd></div>
  <div><dt>Finished</dt><dd>{{ run.finished | when }}</dd></div>
  <div><dt>Code · model version</dt><dd>{{ run.code_version }} · model {{ run.model_version }}</dd></div>
  <div><dt>Commit</dt><dd class="id">{{ run.git_commit or "unknown" }}</dd></div>
  <div><dt>Previous published run</dt><dd class="id">{{ run.previous or "none" }}</dd></div>
</dl>
</header>

<section aria-labelledby="actions-h">
<h2 id="actions-h">{{ strings.actions_title }}</h2>
{% if not actions | selectattr("count") | list %}<p>{{ strings.nothing_to_do }}</p>{% endif %}
<ul class="glance actions">
{% for a in actions %}<li class="{{ a.severity }}"><a href="{{ a.href }}"><dl><dt>{{ a.label }}</dt><dd>{{ a.count | n }}</dd></dl></a></li>
{% endfor %}</ul>
</section>

<section aria-labelledby="glance-h">
<h2 id="glance-h">At a glance</h2>
<dl class="glance">
  <div><dt>Feeds · files</dt><dd>{{ glance.feeds | n }} <small>{{ glance.files | n }} files delivered</small></dd></div>
  <div><dt>Rows read</dt><dd>{{ glance.rows_read | n }} <small>{{ glance.rows_harmonised | n }} harmonised</small></dd></div>
  <div><dt>Rows quarantined</dt><dd>{{ glance.rows_quarantined | n }} <small>{{ glance.files_rejected | n }} files rejected whole</small></dd></div>
  {% for r in headline.roles %}
  <div><dt>Unique {{ r.role }}</dt><dd>{{ r.unique | n }} <small>from {{ r.total_records | n }} records</small></dd></div>
  {% endfor %}
  <div><dt>Validation</dt><dd>{% if validation.available %}{{ status("fail" if validation.blocking_failed else ("warn" if validation.checks_failed or validation.suites_warned or validation.suites_failed else "pass")) }}{% else %}<span class="status na">not run</span>{% endif %}
    <small>{% if validation.available %}{{ validation.suites | length }} suites, {{ validation.checks | length }} checks{% else %}not available in this run{% endif %}</small></dd></div>
  <div><dt>Persons with conflicts</dt><dd>{{ glance.conflicts | n }} <small>attributes disagree between agencies</small></dd></div>
  <div><dt>Review queue</dt><dd>{% if review.available %}{{ review.total | n }} <small>pairs to review</small>{% else %}— <small>not available in this run</small>{% endif %}</dd></div>
  {% for r in mse.roles if r.estimate is defined and r.estimate is not none %}
  <div><dt>Estimated {{ r.role }} (MSE)</dt><dd>{{ r.estimate | n }} <small>{{ r.lower | n }} – {{ r.upper | n }}</small></dd></div>
  {% endfor %}
</dl>
</section>

<nav aria-labelledby="toc-h">
<h2 id="toc-h">Contents</h2>
<ol>
  <li><a href="#figures">Headline figures</a></li>
  <li><a href="#overlap">Overlap between agencies</a></li>
  <li><a href="#mse">Estimated total (MSE)</a></li>
  <li><a href="#validation">Feeds and validation</a></li>
  <li><a href="#quarantine">Quarantine</a></li>
  <li><a href="#conflicts">Conflicts between agencies</a></li>
  <li><a href="#review">Review queue</a></li>
  <li><a href="#judgements">{{ strings.judgements_title }}</a></li>
  <li><a href="#changes">Changes since the previous run</a></li>
  <li><a href="#outputs">Outputs of this run</a></li>
</ol>
</nav>

<main>
<section aria-labelledby="figures">
<h2 id="figures">Headline figures</h2>
<p>Each agency counts the records it holds; the same person often appears in several agencies' records (and
sometimes twice in one). <strong>Unique persons</strong> are the reconciled individuals behind those records.</p>
{% for r in headline.roles %}
<h3>{{ r.role | title }} <span lang="es" class="sub">({{ "víctimas" if r.role == "victims" else "presuntos autores" }})</span></h3>
<div class="figure">{{ r.chart | safe }}</div>
<div class="table-wrap"><table>
<caption>{{ r.role | title }}: records per agency and persons recorded by each agency</caption>
<thead><tr><th scope="col">Agency</th><th scope="col" class="n">Records</th><th scope="col" class="n">Persons</th></tr></thead>
<tbody>
{% for a in r.rows %}<tr><th scope="row">{{ a.agency }}<span class="es" lang="es">{{ a.agency_es or "" }}</span></th>
<td class="n">{{ a.records | n }}</td><td class="n">{{ a.persons | n }}</td></tr>
{% endfor %}
<tr class="total"><th scope="row">All agencies</th><td class="n">{{ r.total_records | n }}</td><td class="n">{{ r.unique | n }} unique</td></tr>
</tbody></table></div>
{% if r.duplicates is not none %}<p>{{ r.total_records | n }} records describe {{ r.unique | n }} unique {{ r.role }}:
{{ r.duplicates | n }} records are further sightings of a person already counted.</p>{% endif %}
{% endfor %}

<h3>Victims by attribute</h3>
<p>Records per agency as each agency recorded them, and unique persons (an attribute on which a person's records
disagree is counted as "in conflict").</p>
{% for d in headline.dimensions %}
{% if d.available %}
<div class="table-wrap"><table>
<caption>Victims by {{ d.title | lower }}</caption>
<thead><tr><th scope="col">{{ d.title }}</th>{% for a in d.agencies %}<th scope="col" class="n">{{ a }}</th>{% endfor %}
{% if d.persons_available %}<th scope="col" class="n">Unique persons</th>{% endif %}</tr></thead>
<tbody>
{% for row in d.rows %}<tr><th scope="row">{{ row.label }}{% if row.label_es %}<span class="es" lang="es">{{ row.label_es }}</span>{% endif %}</th>
{% for v in row.agencies %}<td class="n">{{ v | n }}</td>{% endfor %}
{% if d.persons_available %}<td class="n">{{ row.persons | n }}</td>{% endif %}</tr>
{% endfor %}
</tbody></table></div>
{% else %}{{ na(d) }}{% endif %}
{% endfor %}

{% if headline.offender_stages %}
<h3>Offenders by justice stage</h3>
<div class="table-wrap"><table>
<caption>Offender records per agency by the furthest stage each record attests</caption>
<thead><tr><th scope="col">Agency</th><th scope="col" class="n">Records</th><th scope="col" class="n">Detained</th><th scope="col">Stages</th></tr></thead>
<tbody>
{% for o in headline.offender_stages %}<tr><th scope="row">{{ o.agency }}</th><td class="n">{{ o.records | n }}</td><td class="n">{{ o.detained | n }}</td>
<td>{% for s in o.stages %}{{ s.stage }}: {{ s.count | n }}{% if not loop.last %}; {% endif %}{% endfor %}</td></tr>
{% endfor %}
</tbody></table></div>
{% endif %}
{% if headline.funnel.available %}
<h3>Offenders through the justice system</h3>
<div class="figure">{{ headline.funnel.chart | safe }}</div>
{% if headline.funnel.reaching %}
<div class="table-wrap"><table>
<caption>Distinct offenders at a stage who also reach a later stage</caption>
<thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col" class="n">Persons</th><th scope="col" class="n">Share</th></tr></thead>
<tbody>{% for r in headline.funnel.reaching %}<tr><td>{{ r.from }}</td><td>{{ r.to }}</td><td class="n">{{ r.persons | n }}</td>
<td class="n">{{ "%.0f%%" | format(100 * r.share) if r.share is not none else "—" }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endif %}
{% endif %}
</section>

<section aria-labelledby="overlap">
<h2 id="overlap">Overlap between agencies</h2>
{% if overlap.available %}
<p>How many unique persons each combination of agencies recorded (source: <code>{{ overlap.source }}</code>).
Each column counts the persons recorded by <em>exactly</em> the agencies marked with a dot below it.</p>
{% for r in overlap.roles %}
<h3>{{ r.role | title }}: {{ r.total | n }} unique, {{ r.multi | n }} recorded by more than one agency</h3>
<div class="figure">{{ r.chart | safe }}</div>
<div class="table-wrap"><table>
<caption>{{ r.role | title }} by exact combination of agencies</caption>
<thead><tr><th scope="col">Agencies</th><th scope="col" class="n">Persons</th></tr></thead>
<tbody>{% for i in r.intersections %}<tr><th scope="row">{{ i.agencies }}</th><td class="n">{{ i.persons | n }}</td></tr>{% endfor %}</tbody>
</table></div>
{% if r.years %}<p>By event year: {% for y, n in r.years %}{{ y }}: {{ n | n }}{% if not loop.last %}; {% endif %}{% endfor %}.</p>{% endif %}
{% endfor %}
{% else %}{{ na(overlap) }}{% endif %}
</section>

<section aria-labelledby="mse">
<h2 id="mse">Estimated total (multiple systems estimation)</h2>
{% if mse.available %}
<p>Persons seen by each agency, seen by any agency, and the estimated total including those no agency recorded.</p>
{% for r in mse.roles %}
<h3>{{ r.role | title }}</h3>
{% if r.refused is defined %}
<div class="na" role="note"><strong>No estimate for {{ r.role }} in this run</strong>{{ r.refused }}</div>
{% else %}
<div class="figure">{{ r.chart | safe }}</div>
<div class="table-wrap"><table>
<caption>{{ r.role | title }}: observed and estimated</caption>
<tbody>
{% for a, n in r.seen_by %}<tr><th scope="row">Seen by {{ a }}</th><td class="n">{{ n | n }}</td></tr>{% endfor %}
<tr><th scope="row">Seen by any agency</th><td class="n">{{ r.seen_any | n }}</td></tr>
<tr class="total"><th scope="row">Estimated total</th><td class="n">{{ r.estimate | n }} (interval {{ r.lower | n if r.lower is not none else "not found" }} – {{ r.upper | n if r.upper is not none else "not found" }})</td></tr>
<tr><th scope="row">Method · model</th><td>{{ r.method or "—" }} · {{ r.model or "—" }}{% if r.lists %} on lists {{ r.lists }}{% endif %}{% if r.interval_method %} ({{ r.interval_method }} interval){% endif %}</td></tr>
{% if r.stratified %}<tr><th scope="row">Stratified by {{ r.stratified.by }}</th><td class="n">{{ r.stratified.estimate | n }} (interval {{ r.stratified.lower | n }} – {{ r.stratified.upper | n if r.stratified.upper is not none else "not found" }}): {{ r.stratified.components | join("; ") }}</td></tr>{% endif %}
{% if r.stratified_refused %}<tr><th scope="row">Stratified</th><td>no estimate ({{ r.stratified_refused }})</td></tr>{% endif %}
{% if r.linkage %}<tr><th scope="row">Linkage band</th><td class="n">{{ r.linkage.lower | n }} – {{ r.linkage.upper | n }} (with and without the {{ r.linkage.pairs | n }} uncertain pairs linked)</td></tr>{% endif %}
{% if r.comparison %}<tr><th scope="row">Other method</th><td class="n">{{ r.comparison.method }}: {{ r.comparison.estimate | n }} (interval {{ r.comparison.lower | n }} – {{ r.comparison.upper | n if r.comparison.upper is not none else "not found" }})</td></tr>{% endif %}
</tbody></table></div>
{% if r.comparison and r.comparison.disagree %}<div class="na" role="note"><strong>The methods disagree beyond their intervals.</strong> The estimate depends on the model: read it with both figures.</div>{% endif %}
{% endif %}
{% endfor %}
{% else %}{{ na(mse) }}{% endif %}
</section>

<section aria-labelledby="validation">
<h2 id="validation">Feeds and validation</h2>
<div class="table-wrap"><table>
<caption>Every feed of this run: rows read = rows harmonised + rows quarantined</caption>
<thead><tr><th scope="col">Feed</th><th scope="col">Agency</th><th scope="col" class="n">Files</th><th scope="col" class="n">Read</th>
<th scope="col" class="n">Harmonised</th><th scope="col" class="n">Quarantined</th><th scope="col">Validation</th></tr></thead>
<tbody>
{% for f in feeds %}<tr><th scope="row">{{ f.feed_id }}<span class="es">contract {{ f.contract_version or "?" }}</span></th><td>{{ f.agency }}</td>
<td class="n">{{ f.files | n }}{% if f.files_rejected %} ({{ f.files_rejected }} rejected){% endif %}</td>
<td class="n">{{ f.rows_read | n }}</td><td class="n">{{ f.rows_harmonised | n }}</td><td class="n">{{ f.rows_quarantined | n }}</td>
<td>{% if not validation.available %}<span class="status na">not available</span>{% elif f.suites %}{% for s in f.suites %}{{ status(s.status) }}
{% if s.data_docs and s.data_docs.href %}<a href="{{ s.data_docs.href }}">Data Docs</a>{% endif %}{% if not loop.last %}<br>{% endif %}{% endfor %}{% else %}<span class="status na">no suite</span>{% endif %}
{% for a in f.assertion_failures %}<br><span class="status warn">! {{ a }}</span>{% endfor %}</td></tr>
{% endfor %}
</tbody></table></div>
{% set unmapped = feeds | selectattr("unmapped") | list %}
{% if unmapped %}
<h3>Code values no lookup knew</h3>
<div class="table-wrap"><table><caption>Unmapped code values (harmonised as null and counted here)</caption>
<thead><tr><th scope="col">Feed</th><th scope="col">Field</th><th scope="col">Value</th><th scope="col" class="n">Rows</th></tr></thead>
<tbody>{% for f in unmapped %}{% for u in f.unmapped %}<tr><td>{{ f.feed_id }}</td><td>{{ u.field }}</td><td>{{ u.value }}</td><td class="n">{{ u.count | n }}</td></tr>{% endfor %}{% endfor %}</tbody>
</table></div>
{% endif %}
{% if validation.available %}
<h3>Expectation suites</h3>
<p>{% if validation.blocking_failed %}{{ status("fail") }} A blocking expectation failed.{% else %}No blocking expectation failed.{% endif %}
{% if validation.data_docs_index %} <a href="{{ validation.data_docs_index.href }}">Open the Data Docs of this run</a>.{% endif %}</p>
<div class="table-wrap"><table><caption>Great Expectations suites run on this run's data</caption>
<thead><tr><th scope="col">Suite</th><th scope="col">Target</th><th scope="col">Status</th><th scope="col" class="n">Expectations</th>
<th scope="col" class="n">Blocking failed</th><th scope="col" class="n">Warnings</th><th scope="col">Data Docs</th></tr></thead>
<tbody>{% for s in validation.suites %}<tr><th scope="row">{{ s.name }}</th><td>{{ s.target }}</td><td>{{ status(s.status) }}</td>
<td class="n">{{ s.evaluated | n }}</td><td class="n">{{ s.failed_blocking | n }}</td><td class="n">{{ s.failed_warning | n }}</td>
<td>{% if s.data_docs and s.data_docs.href %}<a href="{{ s.data_docs.href }}">open</a>{% elif s.data_docs %}{{ s.data_docs.text }} (not found){% else %}—{% endif %}</td></tr>
{% endfor %}</tbody></table></div>
{% for s in validation.suites if s.failed %}
<div class="table-wrap"><table><caption>{{ s.name }}: failed expectations{% if s.failed_total > s.failed | length %} (first {{ s.failed | length }} of {{ s.failed_total }}){% endif %}</caption>
<thead><tr><th scope="col">Expectation</th><th scope="col">Column</th><th scope="col">Severity</th><th scope="col" class="n">Unexpected</th><th scope="col" class="n">Quarantined</th></tr></thead>
<tbody>{% for r in s.failed %}<tr><td>{{ r.name or r.expectation or r.expectation_type or r.type or "—" }}{% if r.name and r.expectation %}<span class="es id">{{ r.expectation }}</span>{% endif %}</td><td>{{ r.column or "—" }}</td><td>{{ r.severity or "—" }}</td><td class="n">{{ r.unexpected_count | n }}</td><td class="n">{{ r.quarantined | n }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endfor %}
<h3>Cross-feed checks</h3>
{% if validation.checks %}
<div class="table-wrap"><table><caption>Reconciliation checks between feeds ({{ validation.checks_failed }} failed)</caption>
<thead><tr><th scope="col">Check</th><th scope="col">Status</th><th scope="col">Observed</th><th scope="col">Expected</th><th scope="col" class="n">Findings</th></tr></thead>
<tbody>{% for c in validation.checks %}<tr><th scope="row" class="check">{{ c.name }}<span class="es">{{ c.severity or "" }}{% if c.detail %} · {{ c.detail }}{% endif %}</span></th>
<td>{{ status({"passed": "pass", "failed": "fail", "warning": "warn", "skipped": "skipped"}.get((c.status or "") | lower, (c.status or "unknown") | lower)) }}</td>
<td class="obs">{{ c.observed if c.observed is not none else "—" }}</td><td class="obs">{{ c.expected if c.expected is not none else "—" }}</td><td class="n">{{ c.findings | n }}</td></tr>{% endfor %}</tbody>
</table></div>
{% else %}<p>No cross-feed checks were recorded.</p>{% endif %}
{% else %}{{ na(validation) }}{% endif %}
</section>

<section aria-labelledby="quarantine">
<h2 id="quarantine">Quarantine</h2>
{% if quarantine.available %}
<p>{{ quarantine.total | n }} rows or files could not be harmonised. A quarantined row carries no source values: find it by
feed file and row number in <code>quarantine/</code>.</p>
<div class="table-wrap"><table><caption>Quarantined rows by reason</caption>
<thead><tr><th scope="col">Reason</th><th scope="col" class="n">Rows</th><th scope="col">By feed</th></tr></thead>
<tbody>{% for r in quarantine.reasons %}<tr><th scope="row">{{ r.label }} <span class="id">({{ r.code }})</span>{% if r.label_es %}<span class="es" lang="es">{{ r.label_es }}</span>{% endif %}</th>
<td class="n">{{ r.count | n }}</td><td>{{ r.feeds }}</td></tr>{% endfor %}</tbody>
</table></div>
{% if quarantine.files %}
<div class="table-wrap"><table><caption>Files rejected whole</caption>
<thead><tr><th scope="col">Feed</th><th scope="col">File</th><th scope="col">Reason</th><th scope="col">Detail</th></tr></thead>
<tbody>{% for f in quarantine.files %}<tr><td>{{ f.feed_id }}</td><td class="id">{{ f.file }}</td><td>{{ f.reason }}</td><td>{{ f.detail or "" }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endif %}
{% if quarantine.fields %}
<div class="table-wrap"><table><caption>Quarantined rows by reason and field</caption>
<thead><tr><th scope="col">Reason</th><th scope="col">Field</th><th scope="col" class="n">Rows</th></tr></thead>
<tbody>{% for f in quarantine.fields %}<tr><td>{{ f.reason }}</td><td>{{ f.field or "—" }}</td><td class="n">{{ f.count | n }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endif %}
{% else %}{{ na(quarantine) }}{% endif %}
</section>

<section aria-labelledby="conflicts">
<h2 id="conflicts">Conflicts between agencies</h2>
{% if conflicts.flagged %}<p>Persons whose records disagree on some attribute:
{% for role, n in conflicts.flagged.items() %}{{ n | n }} {{ role }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
{% if conflicts.available %}
<div class="table-wrap"><table><caption>{{ conflicts.total | n }} conflicts{% if conflicts.persons is not none %} on {{ conflicts.persons | n }} persons{% endif %}, by attribute</caption>
<thead><tr><th scope="col">Attribute</th><th scope="col" class="n">Conflicts</th></tr></thead>
<tbody>{% for a in conflicts.by_attribute %}<tr><th scope="row">{{ a.attribute }}</th><td class="n">{{ a.count | n }}</td></tr>{% endfor %}</tbody>
</table></div>
{% for key in ("contradictions", "gaps") if conflict_split.available and conflict_split[key].rows %}
{% set part = conflict_split[key] %}
<div class="table-wrap"><table><caption>{{ strings[key + "_caption"] }}: {{ part.total | n }} on {{ part.persons | n }} persons{% if part.rows | length < part.total %} (first {{ part.rows | length }}){% endif %}</caption>
<thead><tr><th scope="col">Person</th><th scope="col">Role</th><th scope="col">Attribute</th><th scope="col">Values per agency</th></tr></thead>
<tbody>{% for c in part.rows %}<tr><td class="id">{{ c.person_id }}</td><td>{{ c.role }}</td><td>{{ c.attribute }}</td><td>{{ c.agency_values }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endfor %}
{% else %}{{ na(conflicts) }}{% endif %}
</section>

<section aria-labelledby="review">
<h2 id="review">Review queue</h2>
{% if review.available %}
<p>{{ review.total | n }} pairs wait for a steward's decision: uncertain matches, merges the clustering guard refused,
and merges it made despite a conflicting document or birth date (<code>merged_despite_…</code>). Only pseudonymous ids
and which compared fields agree or disagree are shown here; the values themselves stay in the restricted zone.</p>
{% if review.by_role or review.by_reason %}<p>{% if review.by_role %}By role: {% for r, n in review.by_role %}{{ r }} {{ n | n }}{% if not loop.last %}, {% endif %}{% endfor %}.{% endif %}
{% if review.by_reason %} Why: {% for r, n in review.by_reason %}{{ r }} {{ n | n }}{% if not loop.last %}, {% endif %}{% endfor %}.{% endif %}</p>{% endif %}
{% if review.chart %}<div class="figure">{{ review.chart | safe }}</div>{% endif %}
{% if review.rows %}
<div class="table-wrap"><table><caption>Pairs to review (first {{ review.shown }} of {{ review.total | n }}, most probable first)</caption>
<thead><tr>{% for c in review.id_columns %}<th scope="col">{{ c }}</th>{% endfor %}{% if review.has_role %}<th scope="col">Role</th>{% endif %}{% if review.has_reason %}<th scope="col">Why</th>{% endif %}<th scope="col" class="n">Probability</th><th scope="col">Compared fields</th></tr></thead>
<tbody>{% for r in review.rows %}<tr>{% for i in r.ids %}<td class="id">{{ i }}</td>{% endfor %}{% if review.has_role %}<td>{{ r.role or "—" }}</td>{% endif %}{% if review.has_reason %}<td>{{ r.reason or "—" }}</td>{% endif %}
<td class="n">{{ "%.3f" | format(r.probability) if r.probability is not none else "—" }}</td>
<td class="chips">{% for f in r.agree %}<span class="agree">✓ {{ f }}</span>{% endfor %}{% for f in r.disagree %}<span class="disagree">✗ {{ f }}</span>{% endfor %}{% for f in r.unknown %}<span class="unknown">? {{ f }}</span>{% endfor %}</td></tr>{% endfor %}</tbody>
</table></div>
{% endif %}
{% else %}{{ na(review) }}{% endif %}
</section>

<section aria-labelledby="judgements">
<h2 id="judgements">{{ strings.judgements_title }}</h2>
<p>{{ strings.judgements_intro }}</p>
{% if judgements.total %}<p>{% for d, n in judgements.by_decision.items() %}{{ d }} {{ n | n }}{% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
{% if judgements.contradicted %}
<div class="table-wrap"><table><caption>{{ strings.contradicted_caption }} ({{ judgements.contradicted_total | n }})</caption>
<thead><tr><th scope="col">Record</th><th scope="col">Record</th><th scope="col">Role</th><th scope="col">Judgement</th><th scope="col" class="n">Probability</th><th scope="col">Evidence</th></tr></thead>
<tbody>{% for j in judgements.contradicted %}<tr><td class="id">{{ j.left_uid }}</td><td class="id">{{ j.right_uid }}</td><td>{{ j.role or "—" }}</td><td>{{ j.decision }}</td>
<td class="n">{{ "%.3f" | format(j.probability) if j.probability is not none else "—" }}</td><td>{{ j.evidence }}</td></tr>{% endfor %}</tbody>
</table></div>
{% endif %}
{% if continuity.available %}<h3>{{ strings.ids_title }}</h3>
<p>{% if continuity.changes %}{% for c, n in continuity.changes.items() %}{{ c }} {{ n | n }}{% if not loop.last %}, {% endif %}{% endfor %}: {{ strings.ids_changes }}.{% else %}{{ strings.ids_unchanged }}{% endif %}
{% for role, n in continuity.seen_before.items() %} {{ n | n }} {{ role }} {{ strings.seen_before }}.{% endfor %}</p>{% endif %}
</section>

<section aria-labelledby="changes">
<h2 id="changes">Changes since the previous published run</h2>
{% if changes.available %}
<p>Compared with run <span class="id">{{ changes.previous_run_id }}</span>{% if changes.previous_finished %} (finished {{ changes.previous_finished | when }}){% endif %}:
{{ changes.n_changed | n }} changes.</p>
{% if changes.files %}
<div class="table-wrap"><table><caption>Delivered files</caption>
<thead><tr><th scope="col">Feed</th><th scope="col">File</th><th scope="col">Change</th></tr></thead>
<tbody>{% for f in changes.files %}<tr><td>{{ f.feed_id }}</td><td class="id">{{ f.file }}</td><td>{{ f.change }}</td></tr>{% endfor %}</tbody></table></div>
{% else %}<p>The same files were delivered (same SHA-256).</p>{% endif %}
{% if changes.contracts %}<p>Contract versions changed: {% for c in changes.contracts %}{{ c.feed_id }} {{ c.before or "—" }} → {{ c.after or "—" }}{% if not loop.last %}; {% endif %}{% endfor %}.</p>{% endif %}
<div class="table-wrap"><table><caption>Figures</caption>
<thead><tr><th scope="col">Figure</th><th scope="col" class="n">Previous</th><th scope="col" class="n">This run</th><th scope="col" class="n">Change</th></tr></thead>
<tbody>{% for r in changes.figures + changes.feeds + changes.validation + changes.versions %}{% if r.changed or r in changes.figures %}<tr><th scope="row">{{ r.what }}</th>
<td class="n">{{ r.before | n }}</td><td class="n">{{ r.after | n }}</td><td class="n">{{ delta(r.delta) if r.delta is not none else ("changed" if r.changed else "same") }}</td></tr>{% endif %}{% endfor %}</tbody>
</table></div>
{% else %}{{ na(changes) }}{% endif %}
</section>

<section aria-labelledby="outputs">
<h2 id="outputs">Outputs of this run</h2>
<div class="table-wrap"><table><caption>Folders under the run (the restricted zone, with names, documents and birth dates, is access-controlled)</caption>
<thead><tr><th scope="col">Folder</th><th scope="col">Zone</th><th scope="col" class="n">Rows</th><th scope="col" class="n">Files</th></tr></thead>
<tbody>{% for o in outputs %}<tr><td class="id">{{ o.folder }}/</td><td>{{ o.zone }}</td><td class="n">{{ o.rows | n }}</td><td class="n">{{ o.files | n }}</td></tr>{% endfor %}</tbody>
</table></div>
</section>
</main>
<footer>
<p>Generated by Concilia {{ run.code_version }} at {{ generated | when }}. This page makes no network request and runs no script.
It shows counts, codes and pseudonymous ids only: no names, document numbers or birth dates.</p>
</footer>
</body>
</html>
'''
