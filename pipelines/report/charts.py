"""Static inline SVG charts for the steward's report: no script, no external resource.

Every chart is an ``<svg role="img">`` with a ``<title>`` and ``<desc>``, draws its numbers as
text (readable without hovering and on paper) and scales with its container through ``viewBox``.
The report puts a data table next to each chart, so the chart is never the only way to a figure.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from html import escape

from pipelines.i18n import _, number

FONT = 13
PRIMARY = "#2b5c8a"
SECONDARY = "#8fb3d9"
ACCENT = "#b3541e"
INK = "#1b1b1b"
MUTED = "#5c5c5c"
GRID = "#d4d4d4"
MIN_WIDTH = 400  # px: below this a chart scrolls inside its box rather than shrinking its text
_ids = itertools.count(1)


def _fmt(n) -> str:
    return number(n, 1 if isinstance(n, float) and not n.is_integer() else 0)


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> str:
    uid = next(_ids)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="chart{uid}-t chart{uid}-d" class="chart" font-family="system-ui, sans-serif" '
        f'font-size="{FONT}" style="max-width:{width}px;min-width:{min(width, MIN_WIDTH)}px">'
        f'<title id="chart{uid}-t">{escape(title)}</title><desc id="chart{uid}-d">{escape(desc)}</desc>'
        + "".join(body) + "</svg>"
    )


@dataclass(frozen=True)
class Bar:
    """One bar: label, value, optional second value (drawn as a lighter bar under the first) and interval."""

    label: str
    value: float
    second: float | None = None
    low: float | None = None
    high: float | None = None
    emphasis: bool = False


def bar_chart(bars: list[Bar], title: str, desc: str, *, legend: tuple[str, str] | None = None,
              label_width: int = 150, width: int = 520) -> str:
    """Horizontal bars with their values written at the end; optional paired bar and interval whisker."""
    if not bars:
        return ""
    needed = 8 + round(7.2 * max(len(b.label) for b in bars))  # a longer (translated) label widens the chart
    if needed > label_width:
        width, label_width = width + needed - label_width, needed
    top = 26 if legend else 6
    row = 34 if any(b.second is not None for b in bars) else 24
    height = top + row * len(bars) + 6
    plot = width - label_width - 70
    scale_max = max(max(b.value, b.second or 0, b.high or 0) for b in bars) or 1
    body = []
    if legend:
        body.append(f'<rect x="{label_width}" y="6" width="12" height="12" fill="{PRIMARY}"/>'
                    f'<text x="{label_width + 16}" y="16" fill="{INK}">{escape(legend[0])}</text>')
        if legend[1]:
            x2 = label_width + 30 + 7.5 * len(legend[0])
            body.append(f'<rect x="{x2:.0f}" y="6" width="12" height="12" fill="{SECONDARY}"/>'
                        f'<text x="{x2 + 16:.0f}" y="16" fill="{INK}">{escape(legend[1])}</text>')
    for i, b in enumerate(bars):
        y = top + i * row
        h = 14 if b.second is not None else 16
        w = plot * b.value / scale_max
        weight = ' font-weight="600"' if b.emphasis else ""
        body.append(f'<text x="{label_width - 8}" y="{y + 13}" text-anchor="end" fill="{INK}"{weight}>'
                    f'{escape(b.label)}</text>')
        body.append(f'<rect x="{label_width}" y="{y + 2}" width="{w:.1f}" height="{h}" '
                    f'fill="{ACCENT if b.emphasis else PRIMARY}"><title>{escape(b.label)}: {_fmt(b.value)}</title></rect>')
        end = w
        if b.low is not None and b.high is not None:
            lo, hi = plot * b.low / scale_max, plot * b.high / scale_max
            cy = y + 2 + h / 2
            body.append(f'<path d="M{label_width + lo:.1f} {cy - 6}v12M{label_width + lo:.1f} {cy}H{label_width + hi:.1f}'
                        f'M{label_width + hi:.1f} {cy - 6}v12" stroke="{INK}" stroke-width="1.5" fill="none"/>')
            end = max(end, hi)
        body.append(f'<text x="{label_width + end + 5:.1f}" y="{y + 14}" fill="{INK}"{weight}>{_fmt(b.value)}</text>')
        if b.second is not None:
            w2 = plot * b.second / scale_max
            body.append(f'<rect x="{label_width}" y="{y + 17}" width="{w2:.1f}" height="{h - 2}" fill="{SECONDARY}">'
                        f'<title>{escape(b.label)}: {_fmt(b.second)}</title></rect>')
            body.append(f'<text x="{label_width + w2 + 5:.1f}" y="{y + 28}" fill="{MUTED}">{_fmt(b.second)}</text>')
    return _svg(width, height, title, desc, body)


def upset(sets: list[tuple[str, int]], intersections: list[tuple[tuple[str, ...], int]], title: str, desc: str,
          *, max_columns: int = 16) -> str:
    """An UpSet chart: intersection sizes as columns over a dot matrix, set sizes as bars on the left.

    ``sets`` are (name, persons seen by that set) in display order; ``intersections`` are
    (exact combination of sets, persons) and are drawn largest first, at most ``max_columns``.
    """
    if not sets or not intersections:
        return ""
    cols = sorted(intersections, key=lambda kv: (-kv[1], len(kv[0]), kv[0]))[:max_columns]
    names = [s for s, _size in sets]
    label_w, setbar_w, col_w, row_h, bars_h = 70, 96, 30, 24, 130
    left = setbar_w + label_w
    width = left + col_w * len(cols) + 14
    height = bars_h + 20 + row_h * len(names) + 8
    top_max = max(c for _combo, c in cols) or 1
    set_max = max(c for _name, c in sets) or 1
    matrix_top = bars_h + 20
    body = []
    for j, (combo, count) in enumerate(cols):
        x = left + j * col_w
        h = (bars_h - 18) * count / top_max
        tip = _("only %(agencies)s: %(n)s") % {"agencies": " + ".join(combo), "n": _fmt(count)}
        body.append(f'<rect x="{x + 6}" y="{bars_h - h:.1f}" width="{col_w - 12}" height="{h:.1f}" fill="{PRIMARY}">'
                    f'<title>{escape(tip)}</title></rect>')
        body.append(f'<text x="{x + col_w / 2}" y="{bars_h - h - 4:.1f}" text-anchor="middle" font-size="11" '
                    f'fill="{INK}">{_fmt(count)}</text>')
    for i, (name, size) in enumerate(sets):
        cy = matrix_top + i * row_h + row_h / 2
        if i % 2 == 0:
            body.append(f'<rect x="0" y="{cy - row_h / 2}" width="{width}" height="{row_h}" fill="#f2f2f2"/>')
        w = (setbar_w - 40) * size / set_max
        body.append(f'<rect x="{setbar_w - w:.1f}" y="{cy - 7}" width="{w:.1f}" height="14" fill="{SECONDARY}">'
                    f'<title>{escape(name)}: {_fmt(size)}</title></rect>')
        body.append(f'<text x="{setbar_w - w - 4:.1f}" y="{cy + 4}" text-anchor="end" font-size="11" '
                    f'fill="{MUTED}">{_fmt(size)}</text>')
        body.append(f'<text x="{setbar_w + 6}" y="{cy + 4.5}" fill="{INK}" font-weight="600">{escape(name)}</text>')
    for j, (combo, _count) in enumerate(cols):
        cx = left + j * col_w + col_w / 2
        rows = [i for i, n in enumerate(names) if n in combo]
        if len(rows) > 1:
            y1 = matrix_top + rows[0] * row_h + row_h / 2
            y2 = matrix_top + rows[-1] * row_h + row_h / 2
            body.append(f'<line x1="{cx}" y1="{y1}" x2="{cx}" y2="{y2}" stroke="{INK}" stroke-width="2.5"/>')
        for i in range(len(names)):
            cy = matrix_top + i * row_h + row_h / 2
            on = i in rows
            body.append(f'<circle cx="{cx}" cy="{cy}" r="6" fill="{INK if on else GRID}"/>')
    return _svg(width, height, title, desc, body)
