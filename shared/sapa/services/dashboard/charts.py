"""The dashboard's charts as inline SVG: presentation attributes only (no style sheet, no
script, no external resource), so fpdf2 draws them too."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from sapa.domain.sla import format_duration
from sapa.services.dashboard.figures import Dashboard
from sapa.services.dashboard.tabular import fmt_share

GREEN, AMBER, RED, GREY, INK, LIGHT = (
    "#0b5d3b",
    "#c98a00",
    "#a4262c",
    "#8a9099",
    "#1b1b1b",
    "#cfe8da",
)
FONT = 'font-family="Helvetica, Arial, sans-serif"'


def _svg(width: int, height: int, title: str, desc: str, body: list[str], ident: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{ident}-t {ident}-d" '
        f'id="{ident}">'
        f'<title id="{ident}-t">{escape(title)}</title><desc id="{ident}-d">{escape(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _text(
    x: float, y: float, s: str, *, size: int = 11, anchor: str = "start", fill: str = INK
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" {FONT} text-anchor="{anchor}" '
        f'fill="{fill}">{escape(s)}</text>'
    )


def _bar(
    x: float, y: float, w: float, h: float, fill: str, cls: str, value: float, tip: str
) -> str:
    return (
        f'<rect class="bar {cls}" x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" '
        f'height="{max(h, 0):.1f}" fill="{fill}" data-value="{value:.3f}">'
        f"<title>{escape(tip)}</title></rect>"
    )


def steps_chart(d: Dashboard, width: int = 720) -> str:
    """Per step: median and 90th percentile of handling time as a share of the mutu baku, with
    the 100 % line (the standard). Bar lengths are proportional to the ratio."""
    rows = [s for s in d.steps if s.handled]
    left, right, row_h, top = 210, 70, 34, 28
    height = top + row_h * max(len(rows), 1) + 30
    ratios = [
        (v or 0.0) / s.mutu_baku_seconds
        for s in rows
        for v in (s.median_handling, s.p90_handling)
        if s.mutu_baku_seconds
    ]
    scale_max = max([1.25, *ratios])
    plot = width - left - right

    def x_of(r: float) -> float:
        return left + plot * min(r, scale_max) / scale_max

    body = [
        _text(left, 16, "Waktu penanganan sebagai % mutu baku", size=12),
    ]
    for i, s in enumerate(rows):
        y = top + i * row_h
        label = f"{s.number}. {s.kegiatan}"
        body.append(
            _text(left - 6, y + 15, label[:34] + ("…" if len(label) > 34 else ""), anchor="end")
        )
        for j, (value, cls, fill, name) in enumerate(
            (
                (s.median_handling, "bar-median", GREEN, "median"),
                (s.p90_handling, "bar-p90", AMBER, "persentil 90"),
            )
        ):
            ratio = (value or 0.0) / s.mutu_baku_seconds if s.mutu_baku_seconds else 0.0
            tip = (
                f"Langkah {s.number} {name}: {format_duration(value)} "
                f"({fmt_share(ratio)} dari mutu baku {format_duration(s.mutu_baku_seconds)}; "
                f"n={s.handled})"
            )
            by = y + 3 + j * 13
            body.append(_bar(left, by, x_of(ratio) - left, 11, fill, cls, ratio, tip))
            body.append(_text(x_of(ratio) + 4, by + 10, fmt_share(ratio), size=10))
    x100 = x_of(1.0)
    bottom = top + row_h * max(len(rows), 1)
    body.append(
        f'<line class="standard" x1="{x100:.1f}" y1="{top - 4}" x2="{x100:.1f}" y2="{bottom}" '
        f'stroke="{RED}" stroke-width="1.5" stroke-dasharray="4 3"/>'
    )
    body.append(_text(x100, bottom + 14, "100 % = mutu baku", size=10, anchor="middle", fill=RED))
    body.append(f'<rect x="{left}" y="{bottom + 20}" width="10" height="8" fill="{GREEN}"/>')
    body.append(_text(left + 14, bottom + 28, "median", size=10))
    body.append(f'<rect x="{left + 70}" y="{bottom + 20}" width="10" height="8" fill="{AMBER}"/>')
    body.append(_text(left + 84, bottom + 28, "persentil 90", size=10))
    desc = "; ".join(
        f"langkah {s.number}: median {format_duration(s.median_handling)}, persentil 90 "
        f"{format_duration(s.p90_handling)}, mutu baku {format_duration(s.mutu_baku_seconds)}"
        for s in rows
    )
    return _svg(
        width,
        height + 14,
        "Waktu penanganan per langkah dibanding mutu baku",
        desc,
        body,
        "chart-steps",
    )


def weeks_chart(d: Dashboard, width: int = 720, height: int = 240) -> str:
    """Per ISO week: volume (bars, left scale) and compliance (line, 0-100 %, right scale)."""
    left, right, top, bottom = 50, 50, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(d.weeks), 1)
    slot = plot_w / n
    vmax = max([1, *(w.volume for w in d.weeks)])
    body = [_text(left, 14, "Volume (batang) dan kepatuhan (garis) per minggu", size=12)]
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#dde1e6"/>'
        )
        body.append(_text(left - 4, y + 4, f"{round(vmax * frac)}", size=10, anchor="end"))
        body.append(_text(width - right + 4, y + 4, f"{round(frac * 100)} %", size=10))
    points = []
    for i, w in enumerate(d.weeks):
        x = left + i * slot
        h = plot_h * w.volume / vmax
        tip = f"{w.week}: {w.volume} permohonan, kepatuhan {fmt_share(w.compliance)}"
        body.append(
            _bar(x + slot * 0.15, top + plot_h - h, slot * 0.7, h, LIGHT, "bar-week", w.volume, tip)
        )
        body.append(
            _text(x + slot / 2, height - bottom + 14, w.week[-3:], size=10, anchor="middle")
        )
        if w.compliance is not None:
            points.append((x + slot / 2, top + plot_h * (1 - w.compliance), w))
    if points:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        body.append(
            f'<polyline class="trend" points="{coords}" fill="none" stroke="{GREEN}" '
            'stroke-width="2"/>'
        )
        for x, y, w in points:
            body.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{GREEN}" '
                f'data-value="{w.compliance or 0:.4f}"><title>{escape(w.week)}: '
                f"{fmt_share(w.compliance)}</title></circle>"
            )
    body.append(_text(left, height - 6, "Minggu ISO", size=10))
    desc = "; ".join(
        f"{w.week}: {w.volume} permohonan, kepatuhan {fmt_share(w.compliance)}" for w in d.weeks
    )
    return _svg(width, height, "Tren mingguan: volume dan kepatuhan", desc, body, "chart-weeks")


def kecamatan_chart(d: Dashboard, width: int = 720) -> str:
    """Per kecamatan: volume (light bar) with the part still open (backlog, dark)."""
    rows = list(d.kecamatan)
    left, right, row_h, top = 150, 80, 20, 24
    height = top + row_h * max(len(rows), 1) + 26
    vmax = max([1, *(g.volume for g in rows)])
    plot = width - left - right
    body = [_text(left, 14, "Permohonan per kecamatan (gelap: masih terbuka)", size=12)]
    for i, g in enumerate(rows):
        y = top + i * row_h
        body.append(_text(left - 6, y + 13, g.name, anchor="end"))
        w = plot * g.volume / vmax
        b = plot * g.backlog / vmax
        body.append(
            _bar(
                left,
                y + 2,
                w,
                14,
                LIGHT,
                "bar-volume",
                g.volume,
                f"{g.name}: {g.volume} permohonan",
            )
        )
        body.append(
            _bar(
                left,
                y + 2,
                b,
                14,
                GREEN,
                "bar-backlog",
                g.backlog,
                f"{g.name}: {g.backlog} masih terbuka",
            )
        )
        body.append(_text(left + w + 4, y + 13, f"{g.volume} / {g.backlog}", size=10))
    desc = "; ".join(f"{g.name}: {g.volume} permohonan, {g.backlog} masih terbuka" for g in rows)
    return _svg(width, height, "Volume dan tunggakan per kecamatan", desc, body, "chart-kecamatan")


Renderer = Callable[[Dashboard], str]
CHARTS: dict[str, Renderer] = {
    "steps": steps_chart,
    "weeks": weeks_chart,
    "kecamatan": kecamatan_chart,
}
