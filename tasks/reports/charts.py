"""Server-rendered SVG charts (no JavaScript, no CDN): a line chart and a horizontal bar chart.

Labels are escaped here, so the returned markup can be marked safe by the template that shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import escape

FONT = 'font-family="sans-serif" font-size="11" fill="#444"'


def _scale(values: Sequence[Decimal]) -> tuple[Decimal, Decimal]:
    low = min([Decimal(0), *values])
    high = max([Decimal(0), *values])
    return low, (high if high != low else low + 1)


def line_chart(
    points: Sequence[tuple[str, Decimal]],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
    limit: Decimal | None = None,
) -> str:
    """A polyline through ``points`` (label, value); ``limit`` draws a dashed horizontal line (a cap)."""
    pad_left, pad_bottom, pad_top = 60, 28, 24
    inner_w, inner_h = width - pad_left - 12, height - pad_bottom - pad_top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{pad_left}" y="14" {FONT} font-weight="bold">{escape(title)}</text>',
    ]
    if not points:
        parts.append(f'<text x="{pad_left}" y="{height // 2}" {FONT}>No data yet.</text></svg>')
        return "".join(parts)
    values = [v for _, v in points] + ([limit] if limit is not None else [])
    low, high = _scale(values)

    def y(v: Decimal) -> float:
        return pad_top + inner_h - float((v - low) / (high - low)) * inner_h

    step = inner_w / max(len(points) - 1, 1)
    coords = " ".join(f"{pad_left + i * step:.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    parts.append(f'<line x1="{pad_left}" y1="{y(low):.1f}" x2="{pad_left + inner_w}" y2="{y(low):.1f}" stroke="#ccc"/>')
    parts.append(f'<polyline points="{coords}" fill="none" stroke="#2f6fed" stroke-width="2"/>')
    for i, (label, v) in enumerate(points):
        cx = pad_left + i * step
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{y(v):.1f}" r="2.5" fill="#2f6fed"><title>{escape(label)}: {v}</title></circle>'
        )
    if limit is not None:
        parts.append(
            f'<line x1="{pad_left}" y1="{y(limit):.1f}" x2="{pad_left + inner_w}" y2="{y(limit):.1f}" '
            f'stroke="#d33" stroke-dasharray="4 3"/>'
        )
    parts.append(f'<text x="4" y="{pad_top + 8}" {FONT}>{high.quantize(Decimal("0.01"))}</text>')
    parts.append(f'<text x="4" y="{y(low):.1f}" {FONT}>{low.quantize(Decimal("0.01"))}</text>')
    parts.append(f'<text x="{pad_left}" y="{height - 8}" {FONT}>{escape(points[0][0])}</text>')
    parts.append(
        f'<text x="{pad_left + inner_w}" y="{height - 8}" {FONT} text-anchor="end">{escape(points[-1][0])}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(bars: Sequence[tuple[str, Decimal]], *, title: str, width: int = 640, bar_height: int = 18) -> str:
    """Horizontal bars, one per (label, value)."""
    pad_left, pad_top = 180, 24
    height = pad_top + max(len(bars), 1) * (bar_height + 6) + 8
    inner_w = width - pad_left - 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="4" y="14" {FONT} font-weight="bold">{escape(title)}</text>',
    ]
    if not bars:
        parts.append(f'<text x="4" y="{pad_top + 12}" {FONT}>No data yet.</text></svg>')
        return "".join(parts)
    _, high = _scale([v for _, v in bars])
    for i, (label, v) in enumerate(bars):
        top = pad_top + i * (bar_height + 6)
        w = max(float(v / high) * inner_w, 0.0)
        parts.append(f'<text x="4" y="{top + bar_height - 5}" {FONT}>{escape(label[:28])}</text>')
        parts.append(f'<rect x="{pad_left}" y="{top}" width="{w:.1f}" height="{bar_height}" fill="#2f6fed"/>')
        parts.append(f'<text x="{pad_left + w + 4:.1f}" y="{top + bar_height - 5}" {FONT}>{v}</text>')
    parts.append("</svg>")
    return "".join(parts)
