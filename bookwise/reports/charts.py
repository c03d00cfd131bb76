"""Bar charts as SVG, drawn on the server: no script, no CDN, readable without colour.

Pure: plain data in, markup out (every label escaped).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 640,
    bar_height: int = 22,
    label_width: int = 170,
    unit: str = "",
) -> str:
    """Horizontal bars, one per (label, value), with the value written at the end of each."""
    top = 8
    height = top * 2 + max(1, len(bars)) * (bar_height + 6)
    peak = max((value for _, value in bars), default=0) or 1
    span = width - label_width - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, value) in enumerate(bars):
        y = top + index * (bar_height + 6)
        length = max(1.0, span * value / peak) if value else 0
        shown = _number(value) + unit
        parts.append(
            f'<text x="{label_width - 8}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">'
            f"{escape(_shorten(label))}</text>"
        )
        parts.append(
            f'<rect class="bar" x="{label_width}" y="{y}" width="{length:.1f}" '
            f'height="{bar_height}"><title>{escape(label)}: {escape(shown)}</title></rect>'
        )
        parts.append(
            f'<text x="{label_width + length + 6:.1f}" y="{y + bar_height * 0.7:.1f}">'
            f"{escape(shown)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(
    columns: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 720,
    height: int = 200,
    every: int = 1,
) -> str:
    """Vertical columns (bookings per day), a label every ``every`` columns."""
    bottom = 24
    count = max(1, len(columns))
    step = (width - 10) / count
    peak = max((value for _, value in columns), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="#999" stroke-width="1"/>',
    ]
    usable = height - bottom - 16
    for index, (label, value) in enumerate(columns):
        x = 5 + index * step
        tall = usable * value / peak if value else 0
        y = height - bottom - tall
        parts.append(
            f'<rect class="bar" x="{x + step * 0.15:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
            f'height="{tall:.1f}"><title>{escape(label)}: {_number(value)}</title></rect>'
        )
        if value:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">'
                f"{_number(value)}</text>"
            )
        if index % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 8}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _shorten(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
