"""The data steward's report: one self-contained HTML page per run (``reports/index.html``).

Public API: ``build_report(run_dir, previous_run_dir=None, manifest=None, lang=None) -> path``. SVG
chart helpers are in ``charts``; the sections' data in ``sections``; the page in
``templates/report.html``; see docs/steward-report.md and docs/i18n.md (English and Spanish).
"""

from pipelines.report.actions import UNKNOWN
from pipelines.report.build import REPORT_PATH, build_report, publish_report, report_context, report_output
from pipelines.report.sections import review_column_allowed

# UNKNOWN and review_column_allowed: the job sums the report's conflicts and review rows as the report reads them
__all__ = ["REPORT_PATH", "UNKNOWN", "build_report", "publish_report", "report_context", "report_output",
           "review_column_allowed"]
