"""Charts drawn on the server as inline SVG (no JavaScript, no CDN). Every text is escaped."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

BLUE = "#2f6fed"
GREY = "#e8ebf0"


def _svg(width: int, height: int, body: str, title: str) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="{}" style="font:11px sans-serif">{}</svg>',
        width,
        height,
        width,
        height,
        title,
        mark_safe(body),
    )


def bar_chart(
    values: Sequence[int | float],
    labels: Sequence[str],
    *,
    title: str,
    width: int = 480,
    height: int = 160,
    label_every: int = 1,
) -> SafeString:
    """Vertical bars with the value above each bar and every ``label_every``-th label below."""
    n = max(len(values), 1)
    top = max([float(v) for v in values] + [1.0])
    plot_h = height - 34
    slot = (width - 10) / n
    parts = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = plot_h * float(value) / top
        x = 5 + i * slot
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{14 + plot_h - h:.1f}" width="{max(slot - 2, 1):.1f}" height="{h:.1f}" '
            f'fill="{BLUE}"><title>{escape(label)}: {escape(str(value))}</title></rect>'
        )
        if value and slot >= 18:
            y = 10 + plot_h - h
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{y:.1f}" text-anchor="middle">{escape(str(value))}</text>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - 6}" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line x1="5" y1="{14 + plot_h}" x2="{width - 5}" y2="{14 + plot_h}" stroke="#999"/>')
    return _svg(width, height, "".join(parts), title)


def heat_map(matrix: Sequence[Sequence[int]], labels: Sequence[str], *, title: str, cell: int = 34) -> SafeString:
    """A square matrix as coloured cells (darker: more), rows and columns named by ``labels``."""
    n = len(labels)
    margin = 90
    size = margin + n * cell + 10
    width = max(size, 270)  # room for the caption, however few the classes
    top = max([v for row in matrix for v in row] + [1])
    parts = []
    for j, label in enumerate(labels):  # slanted, so long names of neighbouring columns do not run together
        x, y = margin + j * cell + cell / 2, margin - 6
        parts.append(
            f'<text x="{x:.1f}" y="{y}" transform="rotate(-40 {x:.1f} {y})" text-anchor="start">'
            f"{escape(label[:10])}</text>"
        )
    for i, row in enumerate(matrix):
        y = margin + i * cell
        parts.append(
            f'<text x="{margin - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end">{escape(labels[i][:14])}</text>'
        )
        for j, value in enumerate(row):
            shade = value / top
            fill = f"rgba(47,111,237,{0.08 + 0.92 * shade:.2f})" if value else "#f6f7f9"
            colour = "#fff" if shade > 0.5 else "#222"
            x = margin + j * cell
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}">'
                f"<title>gold {escape(labels[i])}, crowd {escape(labels[j])}: {value}</title></rect>"
                f'<text x="{x + cell / 2 - 1:.1f}" y="{y + cell / 2 + 3:.1f}" text-anchor="middle" '
                f'fill="{colour}">{value}</text>'
            )
    parts.append('<text x="4" y="14">columns: crowd majority · rows: gold answer</text>')
    return _svg(width, size, "".join(parts), title)


def progress_bar(done: int, total: int, *, width: int = 260) -> SafeString:
    share = done / total if total else 0.0
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="14" role="img" aria-label="{} of {}">'
        '<rect width="{}" height="14" rx="4" fill="{}"/><rect width="{}" height="14" rx="4" fill="{}"/></svg> '
        "{} of {} ({}%)",
        width,
        done,
        total,
        width,
        GREY,
        f"{width * share:.1f}",
        BLUE,
        done,
        total,
        int(100 * share),
    )
