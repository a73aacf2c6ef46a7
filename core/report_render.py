"""Report output: JSON, CSV, and one self-contained HTML page (inline CSS and SVG, nothing fetched).

The HTML is also what the PDF is printed from (gui/report_pdf.py): Qt's rich-text engine cannot draw
inline SVG, so `render_html(..., inline_svg=False)` puts `<img src="chart:NAME">` where the charts
go and `chart_svgs()` gives the SVG for each NAME, for the printer to rasterise.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from html import escape

from core.clock import iso_utc
from core.report import Figures, Outage, Report

# The product's palette (gui/palette.py, light theme): grey is quiet, colour is for trouble.
_OK = "#7a8794"
_DOWN = "#c62828"
_MAINT = "#ad1457"
_DEGRADED = "#ef8f00"
_NOT_MONITORED = "#d5d9de"
_MAX_CHART_ROWS = 60
# Printed, both charts share the page width and must fit one page's height.
PRINT_CHART_ROWS = 24
_PRINT_SCALE = 0.76


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"


def _duration(seconds: float | None, units: tuple[str, str, str, str], sep: str) -> str:
    """Two units at most, the larger first: the one rule both duration styles share."""
    if seconds is None:
        return "—"
    sec, mins, hours, days = units
    s = max(0.0, seconds)
    if s < 60:
        return f"{s:.1f}{sec}" if s % 1 else f"{s:.0f}{sec}"
    if s < 3600:
        return f"{int(s // 60)}{mins}{sep}{int(s % 60):02d}{sec}"
    if s < 86_400:
        return f"{int(s // 3600)}{hours}{sep}{int(s % 3600 // 60):02d}{mins}"
    return f"{int(s // 86_400)}{days}{sep}{int(s % 86_400 // 3600):02d}{hours}"


def fmt_duration(seconds: float | None) -> str:
    """1 h 02 min, 4 min 05 s, 12.5 s; an em dash for none."""
    return _duration(seconds, (" s", " min", " h", " d"), " ")


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} %"


_FIGURE_COLUMNS = ("availability_pct", "up_pct", "monitored_s", "healthy_s", "degraded_s", "maintenance_s", "downtime_s",
                   "outages", "longest_outage_s", "ttd_s", "ttr_s", "mtbf_s", "restarts", "restarts_ok",
                   "restarts_gave_up", "failovers", "breaker_open_s", "reboots")


def render_csv(report: Report) -> str:
    """Two tables in one file, a blank line between: figures (fleet, groups, services), then outages."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["# period", iso_utc(report.since), iso_utc(report.until)])
    w.writerow(["level", "id", "group", *_FIGURE_COLUMNS])

    def row(level: str, ident: str, group: str, f: Figures) -> None:
        values = f.to_json()
        w.writerow([level, ident, group, *("" if values[c] is None else values[c] for c in _FIGURE_COLUMNS)])

    row("fleet", "", "", report.fleet)
    for g in report.groups:
        row("group", g.name, g.name, g.figures)
    for s in report.services:
        row("service", s.id, s.group, s.figures)
    w.writerow([])
    w.writerow(["service", "group", "start", "end", "duration_s", "failure_type", "error", "detected", "ttd_s",
                "ttr_s", "clipped_start", "clipped_end", "end_reason", "steps"])
    for o in report.outages:
        j = o.to_json()
        w.writerow([o.service, o.group, j["start"], j["end"], j["duration_s"], o.failure_type, o.error,
                    j["detected"] or "", "" if o.ttd_s is None else j["ttd_s"], "" if o.ttr_s is None else j["ttr_s"],
                    o.clipped_start, o.clipped_end, o.end_reason, "; ".join(s.text() for s in o.steps)])
    return out.getvalue()


# ---------------------------------------------------------------- HTML


def chart_svgs(report: Report, rows: int = _MAX_CHART_ROWS) -> dict[str, str]:
    """The report's charts as SVG documents (at most `rows` devices each, worst first), keyed by the
    name `render_html` uses for them."""
    return {"chart:availability": _availability_svg(report, rows), "chart:timeline": _timeline_svg(report, rows)}


def _chart_rows(report: Report, rows: int) -> list[str]:
    """Services shown in the charts: worst availability first, at most `rows`."""
    ranked = sorted(report.services, key=lambda s: (s.figures.availability_pct is None,
                                                   s.figures.availability_pct or 0.0, s.id))
    return [s.id for s in ranked[:rows]]


def _availability_svg(report: Report, rows: int) -> str:
    ids = _chart_rows(report, rows)
    figures = {s.id: s.figures for s in report.services}
    label_w, bar_w, row_h = 150, 380, 18
    height = max(1, len(ids)) * row_h + 24
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" height="{height}" '
             f'font-family="sans-serif" font-size="11">']
    for i, sid in enumerate(ids):
        f = figures[sid]
        y = i * row_h + 4
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{escape(sid[:28])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{bar_w}" height="{row_h - 6}" fill="{_NOT_MONITORED}"/>')
        base = f.monitored_s
        if base > 0:
            x = float(label_w)
            for value, colour in ((f.healthy_s, _OK), (f.degraded_s, _DEGRADED), (f.downtime_s, _DOWN),
                                  (f.maintenance_s, _MAINT)):
                w = bar_w * value / base
                if w > 0:
                    parts.append(f'<rect x="{x:.2f}" y="{y + 2}" width="{w:.2f}" height="{row_h - 6}" fill="{colour}"/>')
                x += w
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 12}">{escape(fmt_pct(f.availability_pct))}</text>')
    if not ids:
        parts.append('<text x="10" y="16">no services in this period</text>')
    y = len(ids) * row_h + 18
    x = label_w
    for name, colour in (("healthy", _OK), ("degraded", _DEGRADED), ("down", _DOWN), ("maintenance", _MAINT),
                         ("not monitored", _NOT_MONITORED)):
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="{y}">{name}</text>')
        x += 14 + 7 * len(name) + 14
    parts.append("</svg>")
    return "".join(parts)


def _timeline_svg(report: Report, rows: int) -> str:
    """One row per device (those with outages first): outages in red over the period, engine gaps grey."""
    with_outages = sorted({o.service for o in report.outages})
    ids = (with_outages + [s for s in _chart_rows(report, rows) if s not in with_outages])[:rows]
    label_w, width, row_h = 150, 480, 16
    span = report.until - report.since
    height = max(1, len(ids)) * row_h + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + width + 20}" height="{height}" '
             f'font-family="sans-serif" font-size="11">']

    def x_of(t: float) -> float:
        return label_w + width * (min(max(t, report.since), report.until) - report.since) / span

    by_service: dict[str, list[Outage]] = {}
    for o in report.outages:
        by_service.setdefault(o.service, []).append(o)
    for i, sid in enumerate(ids):
        y = i * row_h + 4
        parts.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end">{escape(sid[:28])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{width}" height="{row_h - 5}" fill="#eef0f2"/>')
        for a, b in report.gaps:
            parts.append(f'<rect x="{x_of(a):.2f}" y="{y + 2}" width="{max(0.5, x_of(b) - x_of(a)):.2f}" '
                         f'height="{row_h - 5}" fill="{_NOT_MONITORED}"/>')
        for o in by_service.get(sid, []):
            parts.append(f'<rect x="{x_of(o.start):.2f}" y="{y + 2}" width="{max(1.5, x_of(o.end) - x_of(o.start)):.2f}" '
                         f'height="{row_h - 5}" fill="{_DOWN}"><title>{escape(o.cause)}</title></rect>')
    y = len(ids) * row_h + 18
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        t = report.since + span * frac
        anchor = "start" if frac == 0 else ("end" if frac == 1 else "middle")
        label = iso_utc(t)[5:16].replace("T", " ")
        parts.append(f'<text x="{label_w + width * frac:.1f}" y="{y}" text-anchor="{anchor}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body { font-family: sans-serif; font-size: 10pt; color: #1d2329; margin: 24px; }
h1 { font-size: 16pt; margin: 0 0 4px 0; }
h2 { font-size: 12pt; margin: 18px 0 6px 0; border-bottom: 1px solid #c8cdd2; }
.sub { color: #55606b; margin: 0 0 10px 0; }
table { border-collapse: collapse; margin: 4px 0 8px 0; font-size: 8pt; }
th, td { border: 1px solid #c8cdd2; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background-color: #eef0f2; }
td.n { text-align: right; white-space: nowrap; }
td.bad { color: #c62828; font-weight: bold; }
td.k { white-space: nowrap; }
.note { color: #55606b; font-size: 9pt; }
"""


def _cells(values: Sequence[str], numeric_from: int = 1, bad: frozenset[int] = frozenset(),
           keep_whole: bool = False) -> str:
    """One table row; `keep_whole`: text cells never wrap (ids, in tables of many narrow columns)."""
    out = []
    for i, v in enumerate(values):
        cls = "n" if i >= numeric_from else ("k" if keep_whole else "")
        if i in bad:
            cls += " bad"
        out.append(f'<td class="{cls.strip()}">{escape(v)}</td>' if cls else f"<td>{escape(v)}</td>")
    return "<tr>" + "".join(out) + "</tr>"


def fmt_short(seconds: float | None) -> str:
    """Compact durations for wide tables: 45s, 3m20s, 1h09m, 2d04h."""
    return _duration(seconds, ("s", "m", "h", "d"), "")


def _figure_cells(f: Figures) -> list[str]:
    restarts = f"{f.restarts_ok}/{f.restarts}" if f.restarts else "0"
    if f.restarts_gave_up:
        restarts += f" ({f.restarts_gave_up} gave up)"
    return [fmt_pct(f.availability_pct), fmt_pct(f.up_pct), fmt_short(f.downtime_s), str(f.outages), fmt_short(f.longest_outage_s),
            fmt_short(f.ttd_s), fmt_short(f.ttr_s), fmt_short(f.mtbf_s), restarts, str(f.failovers),
            fmt_short(f.breaker_open_s), str(f.reboots), fmt_short(f.degraded_s), fmt_short(f.maintenance_s)]


_FIGURE_HEAD = ("availability", "up (incl. degraded)", "downtime", "outages", "longest", "TTD", "TTR", "MTBF", "restarts ok/all",
                "failovers", "breaker open", "reboots", "degraded", "maintenance")


def _charts_inline(charts: dict[str, str], more: str) -> list[str]:
    return [f"<h2>Availability by device{more}</h2>", charts["chart:availability"],
            f"<h2>Outage timeline{more}</h2>", charts["chart:timeline"]]


def _charts_for_print(charts: dict[str, str], more: str) -> list[str]:
    """Side by side and scaled down, so the summary and both charts fit the first page."""
    cells = []
    for name in ("chart:availability", "chart:timeline"):
        w = re.search(r'width="(\d+)"', charts[name])
        h = re.search(r'height="(\d+)"', charts[name])
        size = (f" width={int(int(w.group(1)) * _PRINT_SCALE)} height={int(int(h.group(1)) * _PRINT_SCALE)}"
                if w and h else "")
        cells.append(f'<td style="border: none; padding: 0"><img src="{name}"{size}></td>')
    return [f"<h2>Availability by device and outage timeline{more}</h2>",
            "<table><tr>" + "".join(cells) + "</tr></table>"]


def render_html(report: Report, *, inline_svg: bool = True, title: str = "Faultwatch report") -> str:
    """One self-contained page. inline_svg=False: charts as <img src="chart:NAME"> (see chart_svgs)."""
    rows = _MAX_CHART_ROWS if inline_svg else PRINT_CHART_ROWS
    charts = chart_svgs(report, rows)
    shown = min(rows, len(report.services))
    more = f" (the {shown} worst of {len(report.services)})" if shown < len(report.services) else ""

    f = report.fleet
    not_monitored = sum(b - a for a, b in report.gaps)
    scope = f" · {escape(report.scope)}" if report.scope else ""
    h: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{iso_utc(report.since)} → {iso_utc(report.until)} '
        f"({fmt_duration(report.until - report.since)}){scope} · {len(report.services)} services</p>",
        "<h2>Summary</h2><table width=100%>",
        "<thead><tr><th>availability</th><th>up (incl. degraded)</th><th>outages</th><th>downtime</th><th>longest</th><th>mean time to detect</th>"
        "<th>mean time to recover</th><th>MTBF</th><th>restarts ok / all</th><th>breaker open</th>"
        "<th>reboots seen</th><th>engine not running</th></tr></thead>",
        _cells([fmt_pct(f.availability_pct), fmt_pct(f.up_pct), str(f.outages), fmt_duration(f.downtime_s),
                fmt_duration(f.longest_outage_s), fmt_duration(f.ttd_s), fmt_duration(f.ttr_s),
                fmt_duration(f.mtbf_s), f"{f.restarts_ok} / {f.restarts}", fmt_duration(f.breaker_open_s),
                str(f.reboots), fmt_duration(not_monitored)], numeric_from=0),
        "</table>",
        '<p class="note">Availability = healthy time / (monitored time − maintenance); "up" also counts degraded time. Degraded (slow, or failed '
        "checks short of the failure threshold) and maintenance are shown apart; time the engine was not "
        "running is not downtime. TTD: failure verdict − last good check; TTR: healthy again − failure "
        "verdict.</p>",
        *(_charts_inline(charts, more) if inline_svg else _charts_for_print(charts, more)),
    ]
    # Printed, the tables start on page 2: page 1 is the summary and the charts, the handover sheet.
    new_page = "" if inline_svg else ' style="page-break-before: always"'
    has_groups = len(report.groups) > 1 or bool(report.groups and report.groups[0].name)
    if has_groups:
        h.append(f"<h2{new_page}>Groups</h2><table width=100%><thead><tr><th>group</th><th>services</th>"
                 + "".join(f"<th>{c}</th>" for c in _FIGURE_HEAD) + "</tr></thead>")
        for g in report.groups:
            h.append(_cells([g.name or "(none)", str(g.services), *_figure_cells(g.figures)], keep_whole=True))
        h.append("</table>")
    h.append(f"<h2{'' if has_groups else new_page}>Devices</h2><table width=100%><thead><tr><th>device</th><th>group</th>"
             + "".join(f"<th>{c}</th>" for c in _FIGURE_HEAD) + "</tr></thead>")
    for s in report.services:
        pct = s.figures.availability_pct
        bad = frozenset({2}) if pct is not None and pct < 99.0 else frozenset()
        h.append(_cells([s.id, s.group, *_figure_cells(s.figures)], numeric_from=2, bad=bad, keep_whole=True))
    h.append("</table>")
    h.append(f"<h2>Outages ({len(report.outages)})</h2>")
    if report.outages:
        h.append("<table width=100%><thead><tr><th>device</th><th>start (UTC)</th><th>end (UTC)</th><th>duration</th><th>cause</th>"
                 "<th>TTD</th><th>TTR</th><th>recovery steps</th></tr></thead>")
        for o in report.outages:
            start = iso_utc(o.start)[:19].replace("T", " ") + (" (before)" if o.clipped_start else "")
            end = iso_utc(o.end)[:19].replace("T", " ") + ("" if o.end_reason == "recovered" else f" ({o.end_reason.replace('_', ' ')})")
            steps = "<br>".join(escape(s.text()) for s in o.steps) or "—"
            h.append(f"<tr><td>{escape(o.service)}</td><td>{escape(start)}</td><td>{escape(end)}</td>"
                     f'<td class="n">{fmt_duration(o.duration_s)}</td><td>{escape(o.cause)}</td>'
                     f'<td class="n">{fmt_duration(o.ttd_s)}</td><td class="n">{fmt_duration(o.ttr_s)}</td>'
                     f"<td>{steps}</td></tr>")
        h.append("</table>")
    else:
        h.append("<p>No outages in this period.</p>")
    if report.gaps:
        h.append("<h2>Engine not running</h2><table width=100%><thead><tr><th>from (UTC)</th><th>to (UTC)</th><th>duration</th></tr></thead>")
        for a, b in report.gaps:
            h.append(_cells([iso_utc(a)[:19].replace("T", " "), iso_utc(b)[:19].replace("T", " "),
                             fmt_duration(b - a)], numeric_from=2))
        h.append("</table>")
    h.append("</body></html>\n")
    return "\n".join(h)
